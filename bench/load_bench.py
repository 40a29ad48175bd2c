"""Load benchmark: many clients polling the status API while star lists are solved.

Starts the production set-up on a fresh PostgreSQL database
(``skysolve_load_<pid>``, created and dropped here; ``skysolve serve`` applies
the migrations): ``skysolve serve --workers 0`` (gunicorn, ``--gunicorn-workers``
processes) and ``--solve-workers`` embedded ``skysolve worker`` processes.  It
then posts ``--submissions`` synthetic star lists through ``url_upload`` (x/y
lists, as astroquery's ``solve_from_source_list`` sends them; they really
solve) while ``--clients`` clients, each on its own keep-alive connection,
follow them (client i watches submission i mod N) by polling in a loop, one
request every ``--interval`` seconds as astroquery does (1 s):
``/api/submissions/<id>``, ``/api/jobs/<id>`` and, once the job succeeded,
``/api/jobs/<id>/calibration`` and ``/api/jobs/<id>/info`` in turn.  Polling
lasts ``--duration`` seconds, longer if the solves are not all done by then.

Prints requests per second, latency percentiles (per endpoint too), errors
(any answer other than 200, or a failed connection), the time from the first
submission until all succeeded, and the machine's load average.  Exits 1 when
a request failed or a submission did not succeed.  ``--interval 0`` makes the
clients poll back to back, which measures the most requests per second the
server answers (latency is then only queueing).

    .venv/bin/python bench/load_bench.py                        # 200 clients, 50 star lists
    .venv/bin/python bench/load_bench.py --clients 5 --submissions 3 --duration 5

Needs PostgreSQL on 127.0.0.1 (``--pg`` names the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from _common import (
    CLI,
    REPO,
    answers,
    command_line,
    cpu_seconds,
    descendants,
    free_port,
    machine_cpu_seconds,
    machine_load,
    percentile,
    service_env,
    star_lists,
    wait_until,
)

#: How the PostgreSQL server's main process is started (its CPU is counted).
POSTMASTER = "/usr/lib/postgresql/"

#: The niceness of solve workers in deploy/ and of SKYSOLVE_WORKER_NICE.
DEFAULT_WORKER_NICE = 10

#: The p99 latency the service should stay under with 200 clients on 2 cores.
TARGET_P99_MS = 100.0


@dataclass
class Tally:
    """What the clients saw."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    #: (time.time() at the answer, seconds) of every answered request.
    timeline: list[tuple[float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Job id -> when a client first saw it succeed (time.time()).
    solved_seen: dict[int, float] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)

    def record(self, endpoint: str, seconds: float) -> None:
        self.latencies.setdefault(endpoint, []).append(seconds)
        self.timeline.append((time.time(), seconds))


@dataclass
class Followed:
    """A submission the clients follow, and its job once known."""

    subid: int
    job: int | None = None
    status: str = ""


class Run:
    def __init__(
        self, url: str, args: argparse.Namespace, cpu: Callable[[], dict[str, float]]
    ) -> None:
        self.url = url
        self.cpu = cpu
        self.args = args
        self.tally = Tally()
        self.followed: list[Followed] = []
        self.stop = asyncio.Event()

    async def submit(self, session_key: str, lists: list[dict[str, Any]]) -> float:
        """Post the star lists one after another; return when the first was sent."""
        started = time.time()
        async with aiohttp.ClientSession() as http:
            for payload in lists:
                form = {"request-json": json.dumps({"session": session_key, **payload})}
                async with http.post(f"{self.url}/api/url_upload", data=form) as response:
                    body = await response.json(content_type=None)
                if response.status != 200 or body.get("status") != "success":
                    raise RuntimeError(f"url_upload answered {response.status}: {body}")
                self.followed.append(Followed(subid=int(body["subid"])))
        return started

    async def client(self, number: int) -> None:
        """Poll one submission's status URLs in turn until told to stop."""
        while len(self.followed) <= number % self.args.submissions:
            await asyncio.sleep(0.02)  # its submission is not posted yet
        target = self.followed[number % self.args.submissions]
        await asyncio.sleep(random.uniform(0, self.args.interval))  # no lock-step
        turn = 0
        connector = aiohttp.TCPConnector(limit=1)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            while not self.stop.is_set():
                paths = [("submission", f"/api/submissions/{target.subid}")]
                if target.job is not None:
                    paths.append(("job", f"/api/jobs/{target.job}"))
                if target.status == "success":
                    paths.append(("calibration", f"/api/jobs/{target.job}/calibration"))
                    paths.append(("info", f"/api/jobs/{target.job}/info"))
                endpoint, path = paths[turn % len(paths)]
                turn += 1
                await self.get(http, endpoint, path, target)
                if self.args.interval:
                    await asyncio.sleep(self.args.interval)

    async def get(
        self, http: aiohttp.ClientSession, endpoint: str, path: str, target: Followed
    ) -> None:
        t0 = time.perf_counter()
        try:
            async with http.get(self.url + path) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.tally.errors.append(f"{path}: {type(exc).__name__}: {exc}")
            return
        self.tally.record(endpoint, time.perf_counter() - t0)
        if status != 200:
            self.tally.errors.append(f"{path}: HTTP {status}: {raw[:200]!r}")
            return
        data = json.loads(raw)
        if endpoint == "submission" and data.get("jobs") and data["jobs"][0] is not None:
            target.job = int(data["jobs"][0])
        elif endpoint == "job":
            target.status = str(data.get("status", ""))
            if target.job is not None and target.status == "success":
                self.tally.solved_seen.setdefault(target.job, time.time())
            elif target.job is not None and target.status == "failure":
                self.tally.failed.add(target.job)

    def all_finished(self) -> bool:
        return len(self.followed) == self.args.submissions and all(
            f.status in ("success", "failure") for f in self.followed
        )

    async def main(self, session_key: str, lists: list[dict[str, Any]]) -> dict[str, Any]:
        clients = [asyncio.create_task(self.client(i)) for i in range(self.args.clients)]
        t0 = time.monotonic()
        cpu0 = self.cpu()
        submitted_at = await self.submit(session_key, lists)
        patience = self.args.duration + self.args.patience
        while time.monotonic() - t0 < self.args.duration or not self.all_finished():
            if time.monotonic() - t0 > patience:
                break
            await asyncio.sleep(0.1)
        self.stop.set()
        await asyncio.gather(*clients)
        elapsed = time.monotonic() - t0
        cpu1 = self.cpu()
        cpu = {name: cpu1[name] - cpu0[name] for name in cpu0}
        return {"elapsed": elapsed, "submitted_at": submitted_at, "cpu": cpu}


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50_ms": percentile(values, 50) * 1000,
        "p95_ms": percentile(values, 95) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": max(values) * 1000,
    }


def admin(pg: str, sql: str) -> None:
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def jobs_in(database_url: str) -> list[tuple[int, str, float | None, str]]:
    """(id, status, finished_at as epoch seconds, solver or error) of every job."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, status, extract(epoch FROM finished_at),"
            " coalesce(result->>'solver', ''), error_code, error_message FROM submissions_job"
        ).fetchall()
    return [
        (
            int(r[0]),
            str(r[1]),
            None if r[2] is None else float(r[2]),
            str(r[3]) if r[1] == "success" else f"{r[4]}: {r[5]}",
        )
        for r in rows
    ]


def start(
    name: str, args: list[str], env: dict[str, str], logs: Path, *, nice: int = 0
) -> subprocess.Popen[bytes]:
    with (logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            [*CLI, *args],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.nice(nice)) if nice > 0 else None,
        )


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    # Made while the service starts (loading the catalogue takes seconds).
    making = ThreadPoolExecutor(1)
    pending_lists = making.submit(star_lists, args.submissions)
    db_name = f"skysolve_load_{os.getpid()}"
    database_url = f"{args.pg}/{db_name}"
    admin(args.pg, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    admin(args.pg, f"CREATE DATABASE {db_name}")
    settings = dict(item.split("=", 1) for item in args.set)
    env = service_env(tmp / "var", DATABASE_URL=database_url, **settings)
    processes: list[subprocess.Popen[bytes]] = []
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    load_before = machine_load()
    try:
        serve_args = ["serve", "--port", str(port), "--workers", "0"]
        serve_args += ["--web-processes", str(args.gunicorn_workers)]
        if args.gunicorn_threads:
            serve_args += ["--web-threads", str(args.gunicorn_threads)]
        processes.append(start("serve", serve_args, env, tmp))
        wait_until(lambda: answers(url + "/health"), "skysolve serve to answer")
        key = subprocess.run(
            [*CLI, "apikey", "create", "loadbench"],
            env=env, cwd=REPO, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        # At the priority deploy/skysolve-worker@.service gives them (Nice=), the
        # same as the workers `skysolve serve` starts (SKYSOLVE_WORKER_NICE).
        nice = int(settings.get("SKYSOLVE_WORKER_NICE", DEFAULT_WORKER_NICE))
        for i in range(args.solve_workers):
            processes.append(start(f"worker{i}", ["worker"], env, tmp, nice=nice))
        session_key = _login(url, key)
        postgres = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                    if command_line(pid).startswith(POSTMASTER)]  # fmt: skip

        def cpu() -> dict[str, float]:
            busy, total = machine_cpu_seconds()
            return {
                "web": cpu_seconds(descendants(processes[0].pid)),
                "solve workers": cpu_seconds(
                    [d for p in processes[1:] for d in descendants(p.pid)]
                ),
                "postgres (all databases)": cpu_seconds(
                    [d for p in postgres for d in descendants(p)]
                ),
                "this client": cpu_seconds([os.getpid()]),
                "machine busy": busy,
                "machine total": total,
            }

        loop = Run(url, args, cpu)
        timing = asyncio.run(loop.main(session_key, pending_lists.result()))
        jobs = jobs_in(database_url)
    finally:
        making.shutdown()
        stop(processes)
        admin(args.pg, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    tally = loop.tally
    every = [v for values in tally.latencies.values() for v in values]
    succeeded = [j for j in jobs if j[1] == "success"]
    finished = [j[2] for j in jobs if j[2] is not None]
    all_ok = len(succeeded) == args.submissions == len(jobs)
    solving_until = max(finished) if finished else float("inf")
    return {
        "clients": args.clients,
        "submissions": args.submissions,
        "gunicorn_workers": args.gunicorn_workers,
        "solve_workers": args.solve_workers,
        "interval_s": args.interval,
        "settings": settings,
        "elapsed_s": timing["elapsed"],
        "requests": len(every) + len(tally.errors),
        "requests_per_second": (len(every) + len(tally.errors)) / timing["elapsed"],
        "latency": summary(every),
        "latency_by_endpoint": {k: summary(v) for k, v in sorted(tally.latencies.items())},
        "latency_while_solving": summary([s for t, s in tally.timeline if t <= solving_until]),
        "latency_after_solving": summary([s for t, s in tally.timeline if t > solving_until]),
        "errors": len(tally.errors),
        "error_samples": tally.errors[:10],
        "succeeded": len(succeeded),
        "jobs": len(jobs),
        "solvers": sorted({j[3] for j in succeeded}),
        "failures": sorted({f"job {j[0]} {j[1]} {j[3]}" for j in jobs if j[1] != "success"})[:10],
        "all_succeeded_s": (max(finished) - timing["submitted_at"]) if all_ok else None,
        "cpu_s": timing["cpu"],
        "load_before": load_before,
        "load_after": machine_load(),
        "target_p99_ms": TARGET_P99_MS,
    }


def _login(url: str, key: str) -> str:
    import requests

    answer = requests.post(
        url + "/api/login", data={"request-json": json.dumps({"apikey": key})}, timeout=30
    ).json()
    return str(answer["session"])


def report(r: dict[str, Any]) -> str:
    lat = r["latency"]
    lines = [
        f"{r['clients']} clients polling every {r['interval_s']:g} s, {r['submissions']} star "
        f"lists, gunicorn {r['gunicorn_workers']} processes, {r['solve_workers']} solve workers "
        f"({', '.join(r['solvers']) or 'no solve'}), {r['elapsed_s']:.1f} s"
        + "".join(f", {k}={v}" for k, v in r["settings"].items()),
        f"  requests: {r['requests']} ({r['requests_per_second']:.0f}/s), errors: {r['errors']}",
    ]
    if lat["count"]:
        lines.append(
            f"  latency: p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, "
            f"p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms "
            f"(target p99 < {r['target_p99_ms']:.0f} ms: "
            f"{'met' if lat['p99_ms'] < r['target_p99_ms'] else 'MISSED'})"
        )
    phases = [("while solving", r["latency_while_solving"])]
    phases.append(("after solving", r["latency_after_solving"]))
    for name, s in [*r["latency_by_endpoint"].items(), *phases]:
        if not s["count"]:
            continue
        lines.append(
            f"    {name:<13} {s['count']:>6} requests, p50 {s['p50_ms']:.1f} ms, "
            f"p99 {s['p99_ms']:.1f} ms, max {s['max_ms']:.1f} ms"
        )
    done = r["all_succeeded_s"]
    lines.append(
        f"  solved: {r['succeeded']}/{r['submissions']} succeeded"
        + (f", all within {done:.1f} s of the first submission" if done is not None else "")
    )
    cpu = dict(r["cpu_s"])
    total = cpu.pop("machine total")
    busy = cpu.pop("machine busy")
    lines.append(
        "  CPU s: "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())
        + f"; machine {busy:.1f} of {total:.1f} ({busy / total * 100:.0f}% busy)"
    )
    answered = r["latency"]["count"] or 1
    lines.append(
        f"  web CPU per request: {cpu['web'] / answered * 1000:.1f} ms"
        f" (PostgreSQL, all databases: {cpu['postgres (all databases)'] / answered * 1000:.1f} ms)"
    )
    lines.append(f"  machine before: {r['load_before']}; after: {r['load_after']}")
    lines += [f"  error: {e}" for e in r["error_samples"]]
    lines += [f"  not solved: {e}" for e in r["failures"]]
    return "\n".join(lines)


def main() -> int:
    doc = __doc__ or ""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--submissions", type=int, default=50)
    ap.add_argument("--gunicorn-workers", type=int, default=2, help="web processes")
    ap.add_argument("--gunicorn-threads", type=int, default=0, help="default: serve's")
    ap.add_argument("--solve-workers", type=int, default=2)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of polling (at least)")
    ap.add_argument("--patience", type=float, default=600.0, help="longest wait for the solves")
    ap.add_argument("--interval", type=float, default=1.0, help="pause between polls, s")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting (environment variable) of the service, e.g. DB_CONN_MAX_AGE=0",
    )
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args()
    if any("=" not in item for item in args.set):
        ap.error("--set takes NAME=VALUE")
    if args.clients < 1 or args.submissions < 1:
        ap.error("--clients and --submissions must be at least 1")
    with tempfile.TemporaryDirectory(prefix="skysolve-load-") as tmp:
        try:
            result = run(args, Path(tmp))
        except Exception:
            for log in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            raise
    print(json.dumps(result, indent=2) if args.json else report(result))
    ok = result["errors"] == 0 and result["succeeded"] == args.submissions
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
