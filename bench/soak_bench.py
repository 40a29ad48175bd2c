"""Soak benchmark: many star lists in a row through one installation, then an audit.

Starts ``skysolve serve`` as a fresh installation (SQLite and the data in a
temporary directory, the default embedded worker; its temporary files go to a
directory of their own through TMPDIR) and sends ``--submissions`` synthetic
star lists one after another through ``url_upload``, each polled until its job
finishes, as a client script would.  Every ``--sample-every`` submissions it
reads the resident memory (VmRSS) and open file descriptors of the web
processes (gunicorn's master and workers) and of the solve worker from /proc.

Then it checks, and prints PASS or FAIL for each:

* every job succeeded;
* memory and file descriptors stay flat: from the sample at 10 % of the run
  to the last, RSS grows by at most ``--rss-tolerance-mb`` and fds by at most
  ``--fd-tolerance`` in each group (first, last, max and the slope are printed);
* the database holds exactly one Submission, UserImage and Job per submission;
* the data directory holds one results directory per job (named by its id,
  not empty) and nothing else unexpected: no stored uploads (star lists have
  none), no temporary or partial files anywhere, an empty upload spool, and the
  server left nothing in its TMPDIR.

Exits 1 on any FAIL.

    .venv/bin/python bench/soak_bench.py                    # 1000 submissions
    .venv/bin/python bench/soak_bench.py --submissions 10 --sample-every 5
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
from _common import (
    CLI,
    REPO,
    answers,
    children,
    command_line,
    descendants,
    free_port,
    machine_load,
    percentile,
    sample,
    service_env,
    slope,
    star_lists,
    wait_until,
)

#: What a fresh installation's data directory may hold at its top level.
EXPECTED_TOP = {
    "skysolve.sqlite3",
    "skysolve.sqlite3-wal",
    "skysolve.sqlite3-shm",
    "static",
    "jobs",
    "uploads",
    "tmp",
    "wake",  # the pipe that wakes idle workers (skysolve/queue/wakeup.py)
}
#: Names that are never a finished result: partial writes and temporary files.
TEMPORARY_SUFFIXES = (".part", ".tmp", ".temp", "~")
TEMPORARY_PREFIXES = ("tmp", ".tmp", "fetch-")


@dataclass
class Sample:
    submissions: int
    web_rss_mb: float
    web_fds: int
    worker_rss_mb: float
    worker_fds: int


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def processes(serve_pid: int) -> tuple[list[int], list[int]]:
    """(web, worker) pids: gunicorn's master and workers; the embedded workers."""
    web = [serve_pid]
    workers: list[int] = []
    for child in children(serve_pid):
        if "skysolve.queue" in command_line(child):
            workers += descendants(child)
        else:
            web += descendants(child)
    return web, workers


def take_sample(serve_pid: int, submitted: int) -> Sample:
    web, workers = processes(serve_pid)
    w = sample(web)
    s = sample(workers)
    return Sample(submitted, w.rss_mb, w.fds, s.rss_mb, s.fds)


def submit_and_wait(http: requests.Session, url: str, payload: dict[str, Any]) -> tuple[str, int]:
    """Post one star list and poll until its job finished: (status, job id)."""
    answer = http.post(f"{url}/api/url_upload", data={"request-json": json.dumps(payload)})
    body = answer.json()
    if body.get("status") != "success":
        raise RuntimeError(f"url_upload answered {answer.status_code}: {body}")
    subid = body["subid"]
    give_up = time.monotonic() + 300
    job: int | None = None
    while time.monotonic() < give_up:
        if job is None:
            jobs = http.get(f"{url}/api/submissions/{subid}").json().get("jobs") or [None]
            job = jobs[0]
        if job is not None:
            status = http.get(f"{url}/api/jobs/{job}").json()["status"]
            if status in ("success", "failure"):
                return status, int(job)
        time.sleep(0.05)
    return "timeout", int(job or 0)


def flatness(name: str, values: list[tuple[int, float]], tolerance: float, unit: str) -> Check:
    """Growth from the sample at 10 % of the run to the last, within ``tolerance``."""
    last_n = values[-1][0]
    steady = [(n, v) for n, v in values if n >= last_n * 0.1] or values
    first, last = steady[0][1], values[-1][1]
    per_100 = slope([float(n) for n, _ in steady], [v for _, v in steady]) * 100
    growth = last - first
    detail = (
        f"first {values[0][1]:.1f}, at {steady[0][0]} submissions {first:.1f}, last {last:.1f},"
        f" max {max(v for _, v in values):.1f} {unit}; growth {growth:+.1f} {unit}"
        f" (allowed {tolerance:g}); slope {per_100:+.2f} {unit} per 100 submissions"
    )
    return Check(name, growth <= tolerance, detail)


def audit_database(db: Path, expected: int) -> list[Check]:
    with closing(sqlite3.connect(db)) as conn:
        counts = {
            table: int(conn.execute(f"SELECT count(*) FROM submissions_{table}").fetchone()[0])
            for table in ("submission", "userimage", "job")
        }
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM submissions_job GROUP BY status").fetchall()
        )
    rows = Check(
        "database rows",
        all(n == expected for n in counts.values()),
        ", ".join(f"{table} {n}" for table, n in counts.items()) + f" (expected {expected} each)",
    )
    jobs = Check(
        "jobs succeeded (database)",
        statuses.get("success", 0) == expected and len(statuses) == 1,
        ", ".join(f"{status} {n}" for status, n in sorted(statuses.items())),
    )
    return [rows, jobs]


def audit_files(data_dir: Path, job_ids: set[int], server_tmp: Path) -> list[Check]:
    checks = []
    top = {p.name for p in data_dir.iterdir()}
    unexpected = sorted(top - EXPECTED_TOP)
    checks.append(
        Check(
            "data directory holds nothing unexpected", not unexpected, f"top level: {sorted(top)}"
        )
    )
    jobs_dir = data_dir / "jobs"
    # jobs/<id> links to the attempt that recorded the result, in jobs/.attempts/.
    entries = [p for p in jobs_dir.iterdir() if p.name != ".attempts"] if jobs_dir.is_dir() else []
    attempts = list((jobs_dir / ".attempts").iterdir()) if (jobs_dir / ".attempts").is_dir() else []
    linked = {p.resolve() for p in entries}
    unlinked = sorted(p.name for p in attempts if p.resolve() not in linked)
    checks.append(
        Check(
            "no attempt directory left beside the published ones",
            not unlinked,
            f"{len(attempts)} attempt directories; not published {unlinked[:5]}",
        )
    )
    names = {p.name for p in entries}
    stray = sorted(names - {str(j) for j in job_ids})
    missing = sorted({str(j) for j in job_ids} - names)
    empty = sorted(p.name for p in entries if p.is_dir() and not any(p.iterdir()))
    not_dirs = sorted(p.name for p in entries if not p.is_dir())
    checks.append(
        Check(
            "one results directory per job",
            not (stray or missing or empty or not_dirs),
            f"{len(entries)} entries for {len(job_ids)} jobs; stray {stray[:5]}, missing "
            f"{missing[:5]}, empty {empty[:5]}, not directories {not_dirs[:5]}",
        )
    )
    uploads = [p for p in (data_dir / "uploads").rglob("*") if p.is_file()]
    spool = [p for p in (data_dir / "tmp").rglob("*")] if (data_dir / "tmp").exists() else []
    checks.append(
        Check(
            "no stored uploads, empty upload spool",
            not uploads and not spool,
            f"uploads {[str(p) for p in uploads[:5]]}, spool {[str(p) for p in spool[:5]]}",
        )
    )
    temporary = [
        p
        for p in data_dir.rglob("*")
        if p.name.endswith(TEMPORARY_SUFFIXES) or p.name.startswith(TEMPORARY_PREFIXES)
    ]
    checks.append(
        Check(
            "no temporary or partial files in the data directory",
            not temporary,
            f"{len(temporary)} found {[str(p.relative_to(data_dir)) for p in temporary[:5]]}",
        )
    )
    left = sorted(p.name for p in server_tmp.iterdir())
    checks.append(
        Check("nothing left in the server's TMPDIR", not left, f"{len(left)} entries {left[:5]}")
    )
    return checks


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    data_dir = tmp / "var"
    server_tmp = tmp / "server-tmp"
    server_tmp.mkdir()
    env = service_env(data_dir, TMPDIR=str(server_tmp))
    # Made while the service starts (loading the catalogue takes seconds).
    making = ThreadPoolExecutor(1)
    pending_lists = making.submit(star_lists, min(args.submissions, 5))
    key = subprocess.run(
        [*CLI, "apikey", "create", "soakbench"],
        env=env, cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve_args = [*CLI, "serve", "--port", str(port)]
    if args.web_processes:
        serve_args += ["--web-processes", str(args.web_processes)]
    load_before = machine_load()
    with (tmp / "serve.log").open("ab") as log:
        server = subprocess.Popen(
            serve_args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
    samples: list[Sample] = []
    outcomes: list[tuple[str, int]] = []
    seconds: list[float] = []
    started = time.monotonic()
    try:
        wait_until(lambda: answers(url + "/health"), "skysolve serve to answer")
        # The worker loads its catalogues after start-up: sample a settled service.
        wait_until(lambda: len(processes(server.pid)[1]) > 0, "the solve worker to start")
        lists = pending_lists.result()
        with requests.Session() as http:
            login = {"request-json": json.dumps({"apikey": key})}
            session_key = http.post(f"{url}/api/login", data=login).json()["session"]
            samples.append(take_sample(server.pid, 0))
            for i in range(args.submissions):
                payload = {"session": session_key, **lists[i % len(lists)]}
                t0 = time.monotonic()
                outcomes.append(submit_and_wait(http, url, payload))
                seconds.append(time.monotonic() - t0)
                done = i + 1
                if done % args.sample_every == 0 or done == args.submissions:
                    samples.append(take_sample(server.pid, done))
                    if not args.json:
                        s = samples[-1]
                        print(
                            f"  {done:>5} submissions: web {s.web_rss_mb:.1f} MB "
                            f"{s.web_fds} fds, worker {s.worker_rss_mb:.1f} MB "
                            f"{s.worker_fds} fds ({time.monotonic() - started:.0f} s)",
                            flush=True,
                        )
    finally:
        making.shutdown()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    elapsed = time.monotonic() - started
    succeeded = sum(1 for status, _ in outcomes if status == "success")
    checks = [
        Check(
            "jobs succeeded (API)",
            succeeded == args.submissions,
            f"{succeeded}/{args.submissions}; "
            + ", ".join(f"{s} {n}" for s, n in _count(o[0] for o in outcomes).items()),
        )
    ]
    checks += audit_database(data_dir / "skysolve.sqlite3", args.submissions)
    points = [(s.submissions, s) for s in samples]
    checks.append(
        flatness(
            "web RSS flat", [(n, s.web_rss_mb) for n, s in points], args.rss_tolerance_mb, "MB"
        )
    )
    checks.append(
        flatness(
            "worker RSS flat",
            [(n, s.worker_rss_mb) for n, s in points],
            args.rss_tolerance_mb,
            "MB",
        )
    )
    checks.append(
        flatness(
            "web fds flat", [(n, float(s.web_fds)) for n, s in points], args.fd_tolerance, "fds"
        )
    )
    checks.append(
        flatness(
            "worker fds flat",
            [(n, float(s.worker_fds)) for n, s in points],
            args.fd_tolerance,
            "fds",
        )
    )
    checks += audit_files(data_dir, {job for _, job in outcomes}, server_tmp)
    return {
        "submissions": args.submissions,
        "elapsed_s": elapsed,
        "submission_to_finish_s": {
            "median": percentile(seconds, 50) if seconds else None,
            "p99": percentile(seconds, 99) if seconds else None,
            "max": max(seconds) if seconds else None,
        },
        "samples": [asdict(s) for s in samples],
        "checks": [asdict(c) for c in checks],
        "passed": all(c.ok for c in checks),
        "load_before": load_before,
        "load_after": machine_load(),
    }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def report(r: dict[str, Any]) -> str:
    t = r["submission_to_finish_s"]
    lines = [
        f"{r['submissions']} star lists in a row in {r['elapsed_s']:.0f} s"
        + (
            f"; submission to finished: median {t['median']:.2f} s, p99 {t['p99']:.2f} s,"
            f" max {t['max']:.2f} s"
            if t["median"] is not None
            else ""
        ),
        f"machine before: {r['load_before']}; after: {r['load_after']}",
    ]
    for c in r["checks"]:
        lines.append(f"  {'PASS' if c['ok'] else 'FAIL'}  {c['name']}: {c['detail']}")
    lines.append("PASS" if r["passed"] else "FAIL")
    return "\n".join(lines)


def main() -> int:
    doc = __doc__ or ""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--submissions", type=int, default=1000)
    ap.add_argument("--sample-every", type=int, default=50, metavar="N")
    ap.add_argument("--web-processes", type=int, default=0, help="default: serve's")
    ap.add_argument("--rss-tolerance-mb", type=float, default=32.0)
    ap.add_argument("--fd-tolerance", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args()
    if args.submissions < 1 or args.sample_every < 1:
        ap.error("--submissions and --sample-every must be at least 1")
    with tempfile.TemporaryDirectory(prefix="skysolve-soak-") as tmp:
        try:
            result = run(args, Path(tmp))
        except Exception:
            log = Path(tmp) / "serve.log"
            if log.exists():
                print(f"--- serve.log\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            raise
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
