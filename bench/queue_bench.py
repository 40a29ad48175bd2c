"""Queue benchmark: star-list submissions through the API, real engine.

Runs the service as an operator would (``skysolve serve`` on PostgreSQL, plus
``skysolve worker`` processes in Celery mode) and submits synthetic star
lists (``url_upload`` with x/y lists and a scale hint) in two ways:

* a burst: ``--jobs`` submissions as fast as one client can, then it waits
  for all of them;
* one at a time (``--single``): a submission, then the client polls its job
  every 10 ms until it sees ``success``, then the next one.  This is the
  latency one user sees on an idle service.

Set-ups with the same solving capacity (two solve processes):

* ``embedded``: ``skysolve serve`` with two embedded workers;
* ``celery``: ``skysolve serve`` with the dispatcher (2 slots) and two
  ``skysolve worker --concurrency 1`` processes, each with its own empty data
  directory (results travel back through Redis), once per ``--broker``.

Prints a Markdown table: jobs per minute, median and p99 time from submission
to success, CPU seconds used by the service's processes (and the share of the
machine's cores), and the per-job overhead beyond the engine's own solve time
(``timings["total"]``): time from a worker claiming the job to its result being
recorded, minus the engine's time; then the one-at-a-time latencies.  The
checkout's fast-path database (``make setup`` builds it into ./var) is used
when present.

    .venv/bin/python bench/queue_bench.py                       # 200 jobs, redis
    .venv/bin/python bench/queue_bench.py --broker redis,rabbitmq
    .venv/bin/python bench/queue_bench.py --jobs 5 --single 3   # a smoke test

Needs PostgreSQL and Redis on 127.0.0.1 (RabbitMQ with ``--broker rabbitmq``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _common import HEIGHT, WIDTH, machine_load, percentile, star_lists  # noqa: E402

from tests.queue.cluster import Cluster, celery_env  # noqa: E402
from tests.services import RABBITMQ_URL, REDIS_URL  # noqa: E402

#: How often the one-at-a-time client polls its job (as fast as a tight client would).
CLIENT_POLL = 0.01


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
    #: One at a time: (seen by the client, engine total, claim-to-record overhead).
    single: list[tuple[float, float, float]] = field(default_factory=list)
    load: str = ""


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


JOB_ROWS = (
    "SELECT s.id, s.created, j.started_at, j.finished_at, j.status,"
    " (j.result->'timings'->>'total')::float"
    " FROM submissions_job j JOIN submissions_userimage u ON j.user_image_id = u.id"
    " JOIN submissions_submission s ON u.submission_id = s.id"
)


def start(mode: str, broker: str, tmp: Path) -> Cluster:
    engine = {
        "SKYSOLVE_SOLVER": "skysolve.engine.pipeline.solve",
        "LOG_LEVEL": "WARNING",
        # One bench user submits far more than a person would.
        "SKYSOLVE_RATE_LIMIT_USER_PER_HOUR": "0",
        "SKYSOLVE_RATE_LIMIT_IP_PER_HOUR": "0",
    }
    from skysolve.engine.solving.fastpath import default_db_path

    # The shared database (make setup), else one an older checkout built in ./var.
    fastpath = default_db_path({**os.environ, "SKYSOLVE_DATA_DIR": str(REPO / "var")})
    if fastpath.is_file():
        engine["SKYSOLVE_FASTPATH_DB"] = str(fastpath)
    if mode == "embedded":
        return Cluster(tmp, **engine)
    url = REDIS_URL if broker == "redis" else RABBITMQ_URL
    env = {**celery_env(url), "SKYSOLVE_DISPATCH_SLOTS": "2"}
    env["SKYSOLVE_CELERY_RESEND_SECONDS"] = "60"
    return Cluster(tmp, **env, **engine)


def solve_one(client: requests.Session, cluster: Cluster, session: str, payload: Any) -> float:
    """Submit one star list; seconds until the client sees its job succeed."""
    started = time.monotonic()
    response = client.post(
        f"{cluster.url}/api/url_upload",
        data={"request-json": json.dumps({"session": session, **payload})},
        timeout=30,
    )
    subid = response.json()["subid"]
    job_id = None
    while True:
        if job_id is None:
            jobs = client.get(f"{cluster.url}/api/submissions/{subid}", timeout=30).json()["jobs"]
            job_id = next((j for j in jobs if j is not None), None)
        if job_id is not None:
            status = client.get(f"{cluster.url}/api/jobs/{job_id}", timeout=30).json()["status"]
            if status == "success":
                return time.monotonic() - started
            if status == "failure":
                raise RuntimeError(f"job {job_id} failed")
        time.sleep(CLIENT_POLL)


def run(mode: str, lists: list[dict[str, Any]], single: int, broker: str, tmp: Path) -> Outcome:
    cluster = start(mode, broker, tmp)
    load_before = machine_load()
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
        rows = cluster.query(JOB_ROWS)
        seen: list[float] = []
        with requests.Session() as client:
            for payload in lists[:single]:
                seen.append(solve_one(client, cluster, session, payload))
        single_rows = [r for r in cluster.query(JOB_ROWS + " ORDER BY s.created") if r not in rows]
    finally:
        cluster.close()
    done = [r for r in rows if r[4] == "success"]
    last = max(r[3] for r in rows).timestamp()
    return Outcome(
        mode=mode if mode == "embedded" else f"celery ({broker})",
        jobs=len(rows),
        succeeded=len(done),
        wall=last - started,
        latencies=[(r[3] - r[1]).total_seconds() for r in done],
        overheads=[(r[3] - r[2]).total_seconds() - r[5] for r in done if r[5] is not None],
        engine=[r[5] for r in done if r[5] is not None],
        cpu_seconds=cpu_used,
        single=[
            (s, r[5], (r[3] - r[2]).total_seconds() - r[5])
            for s, r in zip(seen, single_rows, strict=True)
        ],
        load=f"{load_before} → {machine_load()}",
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


def single_table(outcomes: list[Outcome]) -> str:
    lines = [
        "| set-up | jobs | client sees success, median | max | engine median "
        "| beyond the engine, median | overhead/job (claim→record) median |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        if not o.single:
            continue
        seen = [s for s, _, _ in o.single]
        engine = [e for _, e, _ in o.single]
        beyond = [s - e for s, e, _ in o.single]
        overhead = [h for _, _, h in o.single]
        lines.append(
            f"| {o.mode} | {len(seen)} | {statistics.median(seen) * 1000:.0f} ms "
            f"| {max(seen) * 1000:.0f} ms | {statistics.median(engine) * 1000:.0f} ms "
            f"| {statistics.median(beyond) * 1000:.0f} ms "
            f"| {statistics.median(overhead) * 1000:.0f} ms |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--jobs", type=int, default=200, help="submissions in the burst")
    parser.add_argument("--single", type=int, default=20, help="submissions one at a time")
    parser.add_argument("--modes", default="embedded,celery")
    parser.add_argument(
        "--broker", default="redis", help="celery brokers, comma-separated: redis,rabbitmq"
    )
    args = parser.parse_args()
    lists = star_lists(args.jobs)
    runs = []
    for mode in args.modes.split(","):
        brokers = args.broker.split(",") if mode == "celery" else ["-"]
        runs += [(mode, broker) for broker in brokers]
    outcomes = []
    for mode, broker in runs:
        with tempfile.TemporaryDirectory(prefix=f"queue-bench-{mode}-") as tmp:
            print(f"{mode} {broker}: {args.jobs} submissions, then {args.single} one at a time...")
            outcome = run(mode, lists, min(args.single, len(lists)), broker, Path(tmp))
            print(f"  {outcome.load}", flush=True)
            outcomes.append(outcome)
    print()
    print(f"Burst of {args.jobs} star lists ({WIDTH}x{HEIGHT}, scale hint), 2 solve processes:")
    print(table(outcomes))
    print()
    print(f"One at a time, the client polling every {CLIENT_POLL * 1000:.0f} ms:")
    print(single_table(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
