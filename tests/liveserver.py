"""`skysolve serve` in a subprocess on a free loopback port, for end-to-end tests.

Each server gets its own data directory and SQLite file, like a fresh
installation, one web process and one solve worker.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.conftest import REPO_ROOT
from tests.waiting import poll

CLI = [sys.executable, "-c", "import sys; from skysolve.cli import main; sys.exit(main())"]


@dataclass
class LiveServer:
    url: str
    apikey: str
    data_dir: Path

    def job_result(self, job_id: int) -> dict[str, Any]:
        """The stored SolveResult.to_json() of a job, read from the server's SQLite file."""
        with closing(sqlite3.connect(self.data_dir / "skysolve.sqlite3")) as db:
            row = db.execute(
                "SELECT result FROM submissions_job WHERE id = ?", (job_id,)
            ).fetchone()
        assert row is not None and row[0], f"job {job_id} has no stored result"
        result: dict[str, Any] = json.loads(row[0])
        return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    tmp_path: Path,
    solver: str | None,
    *,
    workers: int = 1,
    user: str | None = "alice",
    env: dict[str, str] | None = None,
) -> Generator[LiveServer, None, None]:
    """Yield a running server; ``solver`` names a fake solve function or None for the engine.

    With ``user`` set, an API key is created for that user first.  ``env`` adds
    environment variables (settings, or a fake solver's own switches).
    """
    extra = env or {}
    env = dict(os.environ)
    env.update(extra)
    env.pop("DATABASE_URL", None)
    env.pop("SKYSOLVE_SOLVER", None)
    env.update(
        SKYSOLVE_DATA_DIR=str(tmp_path / "var"),
        SKYSOLVE_WORKERS=str(workers),
        PYTHONPATH=str(REPO_ROOT),
    )
    if solver is not None:
        env["SKYSOLVE_SOLVER"] = solver
    key = ""
    if user is not None:
        key = subprocess.run(
            [*CLI, "apikey", "create", user], env=env, cwd=REPO_ROOT, check=True,
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), "--web-processes", "1"],
            env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:

            def up() -> bool:
                try:
                    requests.get(url + "/api/openapi.json", timeout=1).close()
                    return True
                except requests.ConnectionError:
                    assert process.poll() is None, log_path.read_text()
                    return False

            # Waiting for start-up, not a timed assertion.
            poll(up, what="the server to start", patience=60.0, interval=0.1)
            yield LiveServer(url, key, tmp_path / "var")
        finally:
            process.terminate()
            process.wait(timeout=60)
