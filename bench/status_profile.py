"""CPU and queries per request of the four polled status endpoints, in-process.

Builds one solved x/y submission (a 2000-star list, a result with
annotations and machine tags, as a real solve leaves) in the database named by
DATABASE_URL, then answers ``--requests`` GETs of each of
``/api/submissions/N``, ``/api/jobs/N``, ``/api/jobs/N/calibration`` and
``/api/jobs/N/info`` through django.test.Client (the whole middleware stack,
no network) and prints CPU ms per request and queries per request.
``--profile`` adds the top functions of cProfile per endpoint.

    psql -h 127.0.0.1 -U postgres -c 'create database skysolve_prof'
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/skysolve_prof \\
        .venv/bin/python bench/status_profile.py
    psql -h 127.0.0.1 -U postgres -c 'drop database skysolve_prof'
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import time
from typing import Any

import django


def solved_submission() -> tuple[int, int]:
    from skysolve.accounts.models import ApiSession
    from skysolve.submissions import services
    from skysolve.submissions.models import Job

    rng = random.Random(1)
    viewer = services.Viewer.of_session(ApiSession.start(None))
    args = {
        "x": [rng.uniform(0, 2000) for _ in range(2000)],
        "y": [rng.uniform(0, 1500) for _ in range(2000)],
        "image_width": 2000,
        "image_height": 1500,
    }
    submission = services.submit_xy(viewer, args)
    job = Job.objects.get(user_image__submission=submission)
    names = [f"NGC {n}" for n in range(40)]
    result = {
        "solved": True,
        "objects_in_field": names,
        "annotations": [
            {"type": "ngc", "names": [n], "pixelx": 10.0 * i, "pixely": 5.0 * i, "radius": 3.0}
            for i, n in enumerate(names)
        ],
        "timings": {"solve": 1.0},
        "command": ["solve-field"] * 20,
    }
    calibration = dict(ra=83.8, dec=-5.4, radius=1.2, pixscale=2.5, orientation=90.0, parity=1.0)
    calibration.update(width_arcsec=5000.0, height_arcsec=3750.0)
    Job.objects.filter(pk=job.pk).update(status=Job.SUCCESS, result=result, **calibration)
    services.add_machine_tags(job.user_image, names[:10])
    return submission.id, job.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skysolve.web.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    subid, jobid = solved_submission()
    client = Client()
    paths = {
        "submission": f"/api/submissions/{subid}",
        "job": f"/api/jobs/{jobid}",
        "calibration": f"/api/jobs/{jobid}/calibration",
        "info": f"/api/jobs/{jobid}/info",
    }
    for name, path in paths.items():
        for _ in range(50):  # warm caches and the connection
            assert client.get(path).status_code == 200
        queries: list[str] = []

        def count(run: Any, sql: str, *rest: Any, seen: list[str] = queries) -> Any:
            seen.append(sql)
            return run(sql, *rest)

        with connection.execute_wrapper(count):
            client.get(path)
        cpu0 = time.process_time()
        for _ in range(args.requests):
            client.get(path)
        cpu_ms = (time.process_time() - cpu0) * 1000 / args.requests
        print(f"{name:12s} {cpu_ms:6.2f} ms CPU/request  {len(queries)} queries", flush=True)
        if args.profile:  # a second run: the profiler's overhead is not in the numbers above
            profiler = cProfile.Profile()
            for _ in range(args.requests):
                profiler.runcall(client.get, path)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
