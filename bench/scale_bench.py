"""Scale benchmark: every page and API list at nova's size (issue 21).

Two steps, each against a PostgreSQL database of its own:

``seed``
    creates the database (``--db``), applies the migrations of the code in
    ``--code`` (default: this checkout) up to the schema before the scale
    work, fills it by raw SQL, then applies the code's later migrations to the
    filled database (``--no-migrate``: not)
    (``bench/scale_seed.sql``: N submissions with one image and job each, 97 %
    solved all over the sky, 2 % failed, ``--queued`` queued, three users and
    anonymous uploads, public and private, 300 tags, an image with 300 tags and
    600 comments).  1,000,000 submissions take a few minutes.
``measure``
    starts ``skysolve serve --workers 0`` of the code in ``--code`` on that
    database, requests each URL ``--repeat`` times one after another and
    prints p50/p95 per URL; then, in a process of that code, runs each URL
    once through Django's test client and prints its query count and its
    slowest statement with PostgreSQL's plan (``EXPLAIN ANALYZE``); then times
    the queue's claim (the embedded worker's, rolled back) with the queued jobs.

Before/after: measure main's code (``--code`` a checkout of main, whose
migrations made the database), then this code (``--migrate`` applies this
checkout's migrations to the populated database first, timing them)::

    .venv/bin/python bench/scale_bench.py seed --db scale1m --submissions 1000000 --code ../main
    flock -x /tmp/skysolve-bench.lock .venv/bin/python bench/scale_bench.py measure \
        --db scale1m --code ../main --label before
    flock -x /tmp/skysolve-bench.lock .venv/bin/python bench/scale_bench.py measure \
        --db scale1m --migrate --label after

Needs PostgreSQL on 127.0.0.1 (trust, user postgres) and ``psql``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import requests
from _common import REPO, answers, free_port, percentile

SEED_SQL = Path(__file__).resolve().parent / "scale_seed.sql"
PG = "postgresql://postgres@127.0.0.1:5432"
SECRET = "skysolve-scale-bench"
#: The schema the seed SQL fills: the migrations before the scale work.
PRE_SCALE = [("submissions", "0005_job_submission_last_polled"), ("queue", "0002_workerheartbeat")]


def code_env(code: Path, db: str, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{PG}/{db}",
        SKYSOLVE_DATA_DIR=str(data_dir),
        PYTHONPATH=str(code),
        SECRET_KEY=SECRET,
        LOG_LEVEL="WARNING",
        SKYSOLVE_RATE_LIMIT_USER_PER_HOUR="0",
        SKYSOLVE_RATE_LIMIT_IP_PER_HOUR="0",
        SKYSOLVE_RATE_LIMIT_ANONYMOUS_PER_HOUR="0",
    )
    return env


def skysolve(code: Path, env: dict[str, str], *args: str, **kw: Any) -> Any:
    command = [sys.executable, "-c", "import sys; from skysolve.cli import main; sys.exit(main())"]
    return subprocess.run([*command, *args], env=env, cwd=code, check=True, **kw)


def seed(args: argparse.Namespace) -> int:
    code = Path(args.code).resolve()
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.db], check=True)
    with tempfile.TemporaryDirectory() as data:
        env = code_env(code, args.db, Path(data))
        # The seed SQL writes the tables as they were before the scale
        # migrations; the code's later migrations then run on the filled database.
        for app, name in PRE_SCALE:
            skysolve(code, env, "manage", "migrate", app, name, "-v0")
        for app in ("contenttypes", "auth", "accounts", "admin", "sessions"):
            skysolve(code, env, "manage", "migrate", app, "-v0")
        start = time.monotonic()
        subprocess.run(
            ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", args.db]
            + ["-v", f"n={args.submissions}", "-v", f"queued={args.queued}", "-f", str(SEED_SQL)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"seeded {args.submissions} submissions in {time.monotonic() - start:.0f} s")
        if not args.no_migrate:
            start = time.monotonic()
            skysolve(code, env, "manage", "migrate", "-v0")
            with psycopg.connect(f"{PG}/{args.db}", autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            print(
                f"then the code's migrations and VACUUM ANALYZE: {time.monotonic() - start:.0f} s"
            )
    return 0


def targets(db: str) -> list[tuple[str, str, str]]:
    """(label, method, path) of every URL measured, with ids read from the database."""
    with psycopg.connect(f"{PG}/{db}") as conn:

        def one(sql: str) -> Any:
            row = conn.execute(sql).fetchone()
            assert row is not None, sql
            return row[0]

        n = one("SELECT max(id) FROM submissions_job")
        solved = one(
            "SELECT j.id FROM submissions_job j"
            " JOIN submissions_userimage i ON i.id = j.user_image_id"
            " JOIN submissions_submission s ON s.id = i.submission_id WHERE j.status = 'success'"
            f" AND i.publicly_visible = 'y' AND s.publicly_visible = 'y' AND j.id > {n // 2}"
            " AND j.radius > 10 ORDER BY j.id LIMIT 1"
        )
        narrow = one(
            "SELECT j.id FROM submissions_job j"
            " JOIN submissions_userimage i ON i.id = j.user_image_id"
            f" WHERE j.status = 'success' AND i.publicly_visible = 'y' AND j.id > {n // 3}"
            " AND j.radius < 1 AND i.id % 10 <> 7 ORDER BY j.id LIMIT 1"
        )
        queued_sub = one("SELECT max(id) FROM submissions_submission")
        # A row far down each listing, for the deep pages (``before`` names the last row seen).
        deep_gallery = one(
            "SELECT id FROM submissions_job WHERE status = 'success'"
            f" ORDER BY finished_at DESC, id DESC OFFSET {n // 4} LIMIT 1"
        )
        deep_tag = one(
            "SELECT user_image_id FROM submissions_taggeduserimage WHERE tag_id = 1"
            f" ORDER BY id DESC OFFSET {n // 10} LIMIT 1"
        )
        # A solved public image carrying the tag on the most images.
        largest_tag = one(
            "SELECT j.id FROM submissions_job j"
            " JOIN submissions_taggeduserimage t ON t.user_image_id = j.user_image_id"
            " WHERE t.tag_id = (SELECT id FROM submissions_tag ORDER BY public_count DESC LIMIT 1)"
            f" AND j.status = 'success' AND j.id > {n // 2} ORDER BY j.id LIMIT 1"
        )
    return [
        ("api job status", "GET", f"/api/jobs/{solved}"),
        ("api calibration", "GET", f"/api/jobs/{solved}/calibration"),
        ("api info", "GET", f"/api/jobs/{solved}/info"),
        ("api submission", "GET", f"/api/submissions/{solved}"),
        ("api login", "LOGIN", "/api/login"),
        ("status page (queued)", "GET", f"/status/{queued_sub}"),
        ("front page", "GET", "/"),
        ("gallery p1", "GET", "/gallery"),
        ("gallery deep", "GET", f"/gallery?page=10000&before={deep_gallery}"),
        ("user page (330k jobs)", "GET", "/users/big"),
        ("tag list", "GET", "/tags"),
        ("tag page (150k) p1", "GET", "/tags/1"),
        ("tag page (150k) deep", "GET", f"/tags/1?page=4000&before={deep_tag}"),
        ("search 1 deg", "GET", "/search?ra=150&dec=20&radius=1"),
        ("search 10 deg", "GET", "/search?ra=150&dec=20&radius=10"),
        ("search 1 deg centred within", "GET", "/search?ra=150&dec=20&radius=1&mode=within"),
        ("search 10 deg centred within", "GET", "/search?ra=150&dec=20&radius=10&mode=within"),
        ("search containing the point", "GET", "/search?ra=150&dec=20&mode=contains"),
        ("search object", "GET", "/search?object=Whirlpool"),
        ("search object on 15 %", "GET", "/search?object=Milky"),
        ("results (narrow field)", "GET", f"/results/{narrow}"),
        ("results (300 tags, 600 comments)", "GET", "/results/1"),
        ("results (image with the largest tag)", "GET", f"/results/{largest_tag}"),
        ("albums", "GET", "/albums"),
        ("album (20k images)", "GET", "/albums/1"),
        ("my images (330k)", "USER", "/my/images"),
        ("my submissions (330k)", "USER", "/my/submissions"),
        ("api myjobs (330k)", "MYJOBS", "/api/myjobs"),
        ("api jobs_by_tag (150k)", "GET", "/api/jobs_by_tag?query=Milky%20Way&exact=yes"),
        # Last: before this work it took minutes, and the server went on after the timeout.
        ("results (wide field)", "GET", f"/results/{solved}"),
    ]


class Requester:
    def __init__(self, base: str, web_session: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.web_session = web_session
        self.api_session = ""

    def login(self) -> requests.Response:
        body = {"request-json": json.dumps({"apikey": "scalebenchbigkey"})}
        answer = self.http.post(self.base + "/api/login", data=body, timeout=TIMEOUT)
        self.api_session = answer.json().get("session", "")
        return answer

    def __call__(self, method: str, path: str) -> requests.Response:
        if method == "LOGIN":
            return self.login()
        if method == "MYJOBS":
            if not self.api_session:
                self.login()
            body = {"request-json": json.dumps({"session": self.api_session})}
            return self.http.post(self.base + path, data=body, timeout=TIMEOUT)
        cookies = {"sessionid": self.web_session} if method == "USER" else None
        return self.http.get(self.base + path, cookies=cookies, timeout=TIMEOUT)


PROFILE = r"""
import json, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skysolve.web.settings")
import django
django.setup()
from django.conf import settings
settings.ALLOWED_HOSTS = ["*"]
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
targets = json.loads(sys.argv[1])
user = Client()
user.force_login(User.objects.get(username="big"))
if sys.argv[2] == "session":
    print(user.cookies["sessionid"].value)
    sys.exit(0)
api = Client()
session = json.loads(api.post("/api/login", {"request-json": json.dumps(
    {"apikey": "scalebenchbigkey"})}).content)["session"]
out = {}
for label, method, path in targets:
    client = user if method == "USER" else api if method == "MYJOBS" else Client()
    connection.queries_log.clear()  # it keeps 9,000 queries; a page of more fills it
    with CaptureQueriesContext(connection) as queries:
        if method == "LOGIN":
            client.post(path, {"request-json": json.dumps({"apikey": "scalebenchbigkey"})})
        elif method == "MYJOBS":
            client.post(path, {"request-json": json.dumps({"session": session})})
        else:
            client.get(path)
    slowest = max(queries.captured_queries, key=lambda q: float(q["time"]), default=None)
    plan = ""
    if slowest is not None and slowest["sql"].lstrip().upper().startswith("SELECT"):
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + slowest["sql"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
    n = len(queries.captured_queries)
    out[label] = {
        "queries": n if n < connection.queries_log.maxlen else f"{n} or more",
        "slowest_ms": 1000 * float(slowest["time"]) if slowest else 0.0,
        "slowest_sql": slowest["sql"] if slowest else "",
        "plan": plan,
    }
print(json.dumps(out))
"""

CLAIM = r"""
import os, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skysolve.web.settings")
import django
django.setup()
from django.db import transaction
from skysolve.queue.worker import Worker
from skysolve.submissions.models import Job
worker = Worker(heartbeat_thread=False)
if hasattr(worker, "_resync_due"):
    with transaction.atomic():
        start = time.perf_counter()
        worker.claim()
        print(f"first claim of a worker: {1000 * (time.perf_counter() - start):.1f} ms")
        transaction.set_rollback(True)
times = []
for _ in range(20):
    with transaction.atomic():
        start = time.perf_counter()
        job = worker.claim()
        times.append(time.perf_counter() - start)
        transaction.set_rollback(True)
times.sort()
queued = Job.objects.filter(status="queued").count()
print(f"claim with {queued} queued: p50 {1000 * times[10]:.1f} ms, p95 {1000 * times[18]:.1f} ms"
      " (a worker's first claim, which also marks the waiting submitters, not counted)"
      if hasattr(worker, "_resync_due") else
      f"claim with {queued} queued: p50 {1000 * times[10]:.1f} ms, p95 {1000 * times[18]:.1f} ms")
from skysolve.submissions.learned_hints import learned_hints_for
job = Job.objects.filter(status="queued", owner_key="user:1").select_related(
    "user_image__submission").first()
owned = Job.objects.filter(owner_key="user:1").count()
hints = []
for _ in range(20):
    start = time.perf_counter()
    learned_hints_for(job)
    hints.append(time.perf_counter() - start)
hints.sort()
print(f"learned hints of an owner with {owned} jobs: p50 {1000 * hints[10]:.1f} ms,"
      f" p95 {1000 * hints[18]:.1f} ms")
"""


#: Seconds a request may take before it counts as unanswered.
TIMEOUT = 60.0


def chosen(only: str, label: str) -> bool:
    """Whether ``label`` is among the comma-separated parts of ``--only`` (all when empty)."""
    return not only or any(part.strip() in label for part in only.split(","))


def measure(args: argparse.Namespace) -> int:
    code = Path(args.code).resolve()
    data_dir = Path(tempfile.mkdtemp(prefix="skysolve-scale-"))
    env = code_env(code, args.db, data_dir)
    if args.migrate:
        start = time.monotonic()
        skysolve(code, env, "manage", "migrate", "-v0")
        print(f"migrations applied to the populated database in {time.monotonic() - start:.0f} s")
        # What autovacuum does after the migration's rewrite of every solved job's row.
        with psycopg.connect(f"{PG}/{args.db}", autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    urls = targets(args.db)
    python = [sys.executable, "-c"]
    web_session = subprocess.run(
        [*python, PROFILE, json.dumps(urls), "session"],
        env=env,
        cwd=code,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if args.profile_only:
        return profile_only(args, urls, env, code)
    command = [sys.executable, "-c", "import sys; from skysolve.cli import main; sys.exit(main())"]
    server = subprocess.Popen(
        [*command, "serve", "--workers", "0", "--port", str(port)],
        env=env,
        cwd=code,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows: list[tuple[str, int | str, int, float, float]] = []
    try:
        give_up = time.monotonic() + 120
        while not answers(base + "/api/openapi.json"):
            if time.monotonic() > give_up or server.poll() is not None:
                raise RuntimeError("skysolve serve did not start")
            time.sleep(0.5)
        request = Requester(base, web_session)
        for label, method, path in urls:
            if not chosen(args.only, label):
                continue
            try:
                first = request(method, path)  # warms caches; its status is reported
            except requests.Timeout:
                rows.append((label, "timeout", 0, TIMEOUT, TIMEOUT))
                print(f"{label:36s} no answer within {TIMEOUT:.0f} s", flush=True)
                continue
            times = []
            size = len(first.content)
            began = time.perf_counter()
            for _ in range(args.repeat):
                start = time.perf_counter()
                try:
                    request(method, path)
                except requests.Timeout:
                    times.append(TIMEOUT)
                    break
                times.append(time.perf_counter() - start)
                if time.perf_counter() - began > 60 and len(times) >= 3:
                    break  # a minute per URL says enough; the percentiles cover what ran
            rows.append(
                (label, first.status_code, size, percentile(times, 50), percentile(times, 95))
            )
            print(
                f"{label:36s} {first.status_code} {size / 1024:8.0f} kB"
                f"  p50 {1000 * rows[-1][3]:8.1f} ms  p95 {1000 * rows[-1][4]:8.1f} ms",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(30)
    measured = [
        u
        for u in urls
        if chosen(args.only, u[0]) and u[0] in {r[0] for r in rows if r[1] != "timeout"}
    ]
    profile = subprocess.run(
        [*python, PROFILE, json.dumps(measured), "profile"],
        env=env,
        cwd=code,
        check=True,
        capture_output=True,
        text=True,
    )
    counts = json.loads(profile.stdout.strip().splitlines()[-1])
    print(f"\n## {args.label}: {args.db}, p50/p95 of {args.repeat} requests each\n")
    print("| request | p50 ms | p95 ms | queries | slowest statement ms |")
    print("|---|---|---|---|---|")
    for label, status, _size, p50, p95 in rows:
        c = counts.get(label, {})
        if status == "timeout":
            print(f"| {label} | > {1000 * TIMEOUT:.0f} | > {1000 * TIMEOUT:.0f} | ? | ? |")
            continue
        print(
            f"| {label} | {1000 * p50:.1f} | {1000 * p95:.1f} | {c.get('queries', '?')}"
            f" | {c.get('slowest_ms', 0.0):.1f} |"
        )
    worst = max(counts.items(), key=lambda item: item[1]["slowest_ms"])
    print(f"\nslowest statement ({worst[0]}, {worst[1]['slowest_ms']:.1f} ms):")
    print(worst[1]["slowest_sql"][:2000])
    print(worst[1]["plan"])
    if args.verbose:
        for label, c in counts.items():
            print(f"\n### {label}: {c['queries']} queries, slowest {c['slowest_ms']:.1f} ms")
            print(c["slowest_sql"][:1500])
            print(c["plan"])
    claim = subprocess.run(
        [*python, CLAIM], env=env, cwd=code, capture_output=True, text=True, check=False
    )
    print(claim.stdout.strip() or claim.stderr.strip()[-2000:])
    return 0


def profile_only(
    args: argparse.Namespace, urls: list[tuple[str, str, str]], env: dict[str, str], code: Path
) -> int:
    measured = [u for u in urls if chosen(args.only, u[0])]
    profile = subprocess.run(
        [sys.executable, "-c", PROFILE, json.dumps(measured), "profile"],
        env=env,
        cwd=code,
        check=True,
        capture_output=True,
        text=True,
    )
    counts = json.loads(profile.stdout.strip().splitlines()[-1])
    print(f"\n## {args.label}: {args.db}, in-process query counts\n")
    print("| request | queries | slowest statement ms |")
    print("|---|---|---|")
    for label, c in counts.items():
        print(f"| {label} | {c['queries']} | {c['slowest_ms']:.1f} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    s = sub.add_parser("seed")
    s.add_argument("--db", required=True)
    s.add_argument("--submissions", type=int, default=1_000_000)
    s.add_argument("--queued", type=int, default=100_000)
    s.add_argument("--code", default=str(REPO))
    s.add_argument(
        "--no-migrate",
        action="store_true",
        help="leave the database at the pre-scale schema (for measure --migrate later)",
    )
    m = sub.add_parser("measure")
    m.add_argument("--db", required=True)
    m.add_argument("--code", default=str(REPO))
    m.add_argument("--label", default="measured")
    m.add_argument("--repeat", type=int, default=30)
    m.add_argument("--migrate", action="store_true")
    m.add_argument(
        "--profile-only", action="store_true", help="only the in-process query counts and plans"
    )
    m.add_argument(
        "--only", default="", help="measure only URLs whose label contains one of these (a,b,...)"
    )
    m.add_argument("--verbose", action="store_true", help="every URL's slowest statement")
    args = parser.parse_args()
    return seed(args) if args.step == "seed" else measure(args)


if __name__ == "__main__":
    sys.exit(main())
