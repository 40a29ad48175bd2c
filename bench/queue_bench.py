"""Queue benchmark: a burst of star-list submissions through the API, real engine.

Runs the service as an operator would (``skysolve serve`` on PostgreSQL, plus
``skysolve worker`` processes in Celery mode) and submits a burst of synthetic
star lists (``url_upload`` with x/y lists and a scale hint, ~0.5-1 s solves)
as fast as one client can, then waits for all of them.  Two set-ups with the
same solving capacity are compared:

* ``embedded``: ``skysolve serve`` with two embedded workers;
* ``celery``: ``skysolve serve`` with the dispatcher (2 slots) and two
  ``skysolve worker --concurrency 1`` processes, each with its own empty data
  directory (results travel back through Redis).

Prints a Markdown table: jobs per minute, median and p99 time from submission
to success, CPU seconds used by the service's processes (and the share of the
machine's cores), and the per-job overhead beyond the engine's own solve time
(``timings["total"]``): time from a worker claiming the job to its result being
recorded, minus the engine's time.

    .venv/bin/python bench/queue_bench.py                 # 200 jobs each mode
    .venv/bin/python bench/queue_bench.py --jobs 5        # a smoke test

Needs PostgreSQL and Redis on 127.0.0.1 (RabbitMQ with ``--broker rabbitmq``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.queue.cluster import Cluster, celery_env  # noqa: E402
from tests.services import RABBITMQ_URL, REDIS_URL  # noqa: E402

PIXSCALE = 30.0
WIDTH, HEIGHT = 800, 600
#: Field centres of the synthetic star lists (cycled; each with its own seed).
CENTRES = [(200.0, -30.0), (40.0, 20.0), (300.0, 60.0), (120.0, -10.0), (83.8, -5.4)]


@dataclass
class Outcome:
    mode: str
    jobs: int
    succeeded: int
    wall: float
    latencies: list[float]
    overheads: list[float]
    engine: list[float]
    cpu_seconds: float


def star_lists(count: int) -> list[dict[str, Any]]:
    from skysolve.engine.synthetic import FieldSpec, make_field

    distinct = []
    for seed, (ra, dec) in enumerate(CENTRES):
        spec = FieldSpec(ra=ra, dec=dec, pixscale=PIXSCALE, width=WIDTH, height=HEIGHT, seed=seed)
        sources = make_field(spec, render=False).sources
        distinct.append(
            {
                "x": [round(float(v), 3) for v in sources.x],
                "y": [round(float(v), 3) for v in sources.y],
                "image_width": WIDTH,
                "image_height": HEIGHT,
                "scale_units": "arcsecperpix",
                "scale_lower": PIXSCALE * 0.9,
                "scale_upper": PIXSCALE * 1.1,
            }
        )
    return [distinct[i % len(distinct)] for i in range(count)]


def cpu_seconds(sessions: list[int]) -> float:
    """CPU time (user + system, children included) of every process in these sessions."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # After the command: state ppid pgrp session ... utime(11) stime(12) cutime cstime
        if int(fields[3]) in sessions:
            total += sum(int(v) for v in fields[11:15])
    return total / tick


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run(mode: str, lists: list[dict[str, Any]], broker: str, tmp: Path) -> Outcome:
    engine = {"SKYSOLVE_SOLVER": "skysolve.engine.pipeline.solve", "LOG_LEVEL": "WARNING"}
    if mode == "embedded":
        cluster = Cluster(tmp, **engine)
    else:
        url = REDIS_URL if broker == "redis" else RABBITMQ_URL
        env = {**celery_env(url), "SKYSOLVE_DISPATCH_SLOTS": "2"}
        env["SKYSOLVE_CELERY_RESEND_SECONDS"] = "60"
        cluster = Cluster(tmp, **env, **engine)
    try:
        web = cluster.start_web(workers=2 if mode == "embedded" else 1)
        processes = [web]
        if mode == "celery":
            for i in range(2):
                processes.append(
                    cluster.start(
                        f"worker{i}",
                        "worker",
                        "--concurrency",
                        "1",
                        "--loglevel",
                        "INFO",
                        SKYSOLVE_DATA_DIR=str(tmp / f"worker{i}"),
                    )  # fmt: skip
                )
            cluster.wait_for(
                lambda: all(" ready." in cluster.log(f"worker{i}") for i in range(2)), "workers"
            )
        session = cluster.session()
        sessions = [p.pid for p in processes]
        cpu_before = cpu_seconds(sessions)
        started = time.time()
        for payload in lists:
            cluster.api("url_upload", {"session": session, **payload})
        cluster.wait_finished(len(lists))
        cpu_used = cpu_seconds(sessions) - cpu_before
        rows = cluster.query(
            "SELECT s.created, j.started_at, j.finished_at, j.status,"
            " (j.result->'timings'->>'total')::float"
            " FROM submissions_job j JOIN submissions_userimage u ON j.user_image_id = u.id"
            " JOIN submissions_submission s ON u.submission_id = s.id"
        )
    finally:
        cluster.close()
    done = [r for r in rows if r[3] == "success"]
    last = max(r[2] for r in rows).timestamp()
    return Outcome(
        mode=mode if mode == "embedded" else f"celery ({broker})",
        jobs=len(rows),
        succeeded=len(done),
        wall=last - started,
        latencies=[(r[2] - r[0]).total_seconds() for r in done],
        overheads=[(r[2] - r[1]).total_seconds() - r[4] for r in done if r[4] is not None],
        engine=[r[4] for r in done if r[4] is not None],
        cpu_seconds=cpu_used,
    )


def table(outcomes: list[Outcome]) -> str:
    cores = os.cpu_count() or 1
    lines = [
        "| set-up | solved | jobs/min | submit→success median | p99 | engine median "
        "| overhead/job median | p99 | service CPU s (per job) | CPU use |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        if not o.latencies:
            lines.append(f"| {o.mode} | 0/{o.jobs} | – | – | – | – | – | – | – | – |")
            continue
        lines.append(
            f"| {o.mode} | {o.succeeded}/{o.jobs} | {o.jobs / o.wall * 60:.0f} "
            f"| {statistics.median(o.latencies):.1f} s | {percentile(o.latencies, 99):.1f} s "
            f"| {statistics.median(o.engine):.2f} s "
            f"| {statistics.median(o.overheads) * 1000:.0f} ms "
            f"| {percentile(o.overheads, 99) * 1000:.0f} ms "
            f"| {o.cpu_seconds:.0f} ({o.cpu_seconds / o.jobs:.2f}) "
            f"| {o.cpu_seconds / o.wall / cores * 100:.0f}% of {cores} cores |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--modes", default="embedded,celery")
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis")
    args = parser.parse_args()
    lists = star_lists(args.jobs)
    outcomes = []
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory(prefix=f"queue-bench-{mode}-") as tmp:
            print(f"{mode}: {args.jobs} submissions...", flush=True)
            outcomes.append(run(mode, lists, args.broker, Path(tmp)))
    print()
    print(f"Burst of {args.jobs} star lists ({WIDTH}x{HEIGHT}, scale hint), 2 solve processes:")
    print(table(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
