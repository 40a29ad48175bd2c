"""A real installation in processes for the fault tests: web server, workers, PostgreSQL.

Each test gets its own PostgreSQL database (copied from a migrated template,
so start-up stays short), its own data directory, and starts the processes it
needs through the ``skysolve`` command, as an operator would.  The solver is
:func:`sleepy_fake_solve`: the fake solver after ``SKYSOLVE_FAKE_SLEEP``
seconds, so a test can act in the middle of a solve.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import requests

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveResult, SourceList
from skysolve.errors import SolveCancelledError, error_classes
from tests.conftest import REPO_ROOT
from tests.services import POSTGRES_URL, REDIS_URL
from tests.waiting import hold_while_exists, poll
from tests.webfixtures import FakeSolver

CLI = [sys.executable, "-c", "import sys; from skysolve.cli import main; sys.exit(main())"]
#: Longest wait for anything in these tests; only a guard against hanging.
PATIENCE = 120.0

_template_lock = threading.Lock()
_template: str | None = None


def sleepy_fake_solve(
    source: Path | SourceList,
    params: SolveParameters,
    out_dir: Path,
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[str, str], None] | None = None,
    verified: Callable[[SolveResult], None] | None = None,
) -> SolveResult:
    """The fake solver, after sleeping SKYSOLVE_FAKE_SLEEP seconds (cancellable).

    SKYSOLVE_FAKE_ERROR names an error code (``solver_failed``, ``no_match``...)
    to raise instead of solving.  SKYSOLVE_FAKE_GATE names a file: the solve
    waits while it exists (cancellable), so a test acts in the middle of a solve
    for certain and then removes it.  SKYSOLVE_FAKE_PICTURE_GATE names a file:
    after the answer, the pictures wait while it exists.
    """
    if progress:
        progress("solving", "sleeping")
    solve_gate = os.environ.get("SKYSOLVE_FAKE_GATE")
    if solve_gate and hold_while_exists(Path(solve_gate), cancel=cancel):
        raise SolveCancelledError("cancelled")
    pause = float(os.environ.get("SKYSOLVE_FAKE_SLEEP", "0"))
    if cancel is not None:
        cancel.wait(pause)
    else:
        time.sleep(pause)
    code = os.environ.get("SKYSOLVE_FAKE_ERROR")
    if code:
        raise error_classes()[code](f"fake {code}")
    solver = FakeSolver()
    gate = os.environ.get("SKYSOLVE_FAKE_PICTURE_GATE")
    if gate:
        # Pictures that take a while after the answer, as large images' do:
        # exactly until the test lets them be drawn.
        def draw_when_let() -> None:
            hold_while_exists(Path(gate))

        solver.after_answer = draw_when_let
    return solver(source, params, out_dir, cancel=cancel, progress=progress, verified=verified)


def celery_env(broker: str = REDIS_URL) -> dict[str, str]:
    """Celery mode on the real broker, in a queue of this test's own."""
    return {
        "SKYSOLVE_QUEUE": "celery",
        "SKYSOLVE_BROKER_URL": broker,
        "SKYSOLVE_RESULT_BACKEND": REDIS_URL,
        "SKYSOLVE_CELERY_QUEUE": f"skysolve-test-{secrets.token_hex(4)}",
        "SKYSOLVE_CELERY_RESEND_SECONDS": "3",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _admin(sql: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql)


def database_url(name: str, host: str = "127.0.0.1", port: int = 5432) -> str:
    return f"postgresql://postgres@{host}:{port}/{name}"


def _base_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SKYSOLVE_DATA_DIR=str(data_dir),
        PYTHONPATH=str(REPO_ROOT),
        SKYSOLVE_SOLVER="tests.queue.cluster.sleepy_fake_solve",
        SECRET_KEY="fault-tests",
        PYTHONWARNINGS="ignore",
        LOG_LEVEL="INFO",
    )
    return env


def template_database(tmp_root: Path) -> str:
    """A migrated database to copy (made once per test session)."""
    global _template
    with _template_lock:
        if _template is None:
            name = f"skysolve_tmpl_{secrets.token_hex(4)}"
            _admin(f"CREATE DATABASE {name}")
            env = _base_env(tmp_root / "template-var")
            env["DATABASE_URL"] = database_url(name)
            subprocess.run(
                [*CLI, "manage", "migrate", "-v", "0"], env=env, cwd=REPO_ROOT, check=True
            )
            _template = name
            atexit.register(_admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return _template


class Cluster:
    """The processes of one installation; everything started is stopped by :meth:`close`."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.tmp = tmp_path
        self.data_dir = tmp_path / "var"
        self.db_name = f"skysolve_t_{secrets.token_hex(4)}"
        _admin(f"CREATE DATABASE {self.db_name} TEMPLATE {template_database(tmp_path)}")
        self.env = _base_env(self.data_dir)
        self.env.update(DATABASE_URL=database_url(self.db_name), **env)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.url = ""
        self.api_keys: dict[str, str] = {}

    # -- processes ------------------------------------------------------------------

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [*CLI, *args], env=self.env, cwd=REPO_ROOT, check=True, capture_output=True, text=True
        )
        return done.stdout

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """Start ``skysolve ARGS`` in its own process group, its output in ``NAME.log``."""
        with (self.tmp / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [*CLI, *args],
                env={**self.env, **env},
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def start_web(self, *, workers: int = 0, **env: str) -> subprocess.Popen[bytes]:
        port = free_port()
        process = self.start(
            "web", "serve", "--port", str(port), "--workers", str(workers),
            "--web-processes", "1", **env,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        self.wait_for(lambda: self._up(process), "the web server to start")
        return process

    def _up(self, process: subprocess.Popen[bytes]) -> bool:
        assert process.poll() is None, self.log("web")
        try:
            return requests.get(self.url + "/api/openapi.json", timeout=2).ok
        except requests.ConnectionError:
            return False

    def stop(self, process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        """Signal the process group (a worker's children too) and wait."""
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.stop(process, signal.SIGKILL)
        _admin(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    # -- the API and the database ---------------------------------------------------

    def session(self, username: str = "alice") -> str:
        """An API session of ``username`` (created with an API key of their own)."""
        if username not in self.api_keys:
            self.api_keys[username] = self.run("apikey", "create", username).strip()
        return str(self.api("login", {"apikey": self.api_keys[username]})["session"])

    def api(self, path: str, payload: dict[str, Any]) -> Any:
        response = requests.post(
            f"{self.url}/api/{path}", data={"request-json": json.dumps(payload)}, timeout=30
        )
        data = response.json()
        assert data.get("status") == "success", data
        return data

    def submit_xy(self, session: str, count: int) -> list[int]:
        payload = {
            "session": session,
            "x": [10.0, 20.5, 30.0],
            "y": [5.0, 15.0, 25.0],
            "image_width": 100,
            "image_height": 80,
        }
        return [int(self.api("url_upload", payload)["subid"]) for _ in range(count)]

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(database_url(self.db_name), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def jobs(self) -> list[tuple[int, str, int, str, str]]:
        """(id, status, attempts, error_code, worker_id) of every job."""
        return [
            (int(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4]))
            for r in self.query(
                "SELECT id, status, attempts, error_code, worker_id FROM submissions_job"
                " ORDER BY queued_at"
            )
        ]

    def statuses(self) -> list[str]:
        return [job[1] for job in self.jobs()]

    def wait_for(self, ready: Callable[[], bool], what: str, patience: float = PATIENCE) -> None:
        """Poll until ``ready()``; fail naming ``what`` only if it never happens."""

        def details() -> str:
            logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs())
            return f"jobs: {self.jobs()}\n{logs}"

        poll(ready, what=what, patience=patience, interval=0.2, details=details)

    def logs(self) -> Iterator[Path]:
        return iter(sorted(self.tmp.glob("*.log")))

    def wait_finished(self, count: int) -> None:
        """Wait until ``count`` jobs ended and their files are recorded too.

        A solved job is ``success`` as soon as its answer is recorded, while
        its stage is still ``pictures`` (skysolve.submissions.transitions.PICTURES: results
        in two steps).
        """

        def finished() -> bool:
            rows = self.query("SELECT status, stage FROM submissions_job")
            return len(rows) == count and all(
                status in ("success", "failure", "cancelled") and stage != "pictures"
                for status, stage in rows
            )

        self.wait_for(finished, f"{count} jobs to finish")
