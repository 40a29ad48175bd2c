"""The load and soak benchmarks run end to end in a tiny configuration, so they cannot rot.

They print numbers and are judged here only on what must hold at any size:
every request answered, every star list solved, the audit passing, and the
load benchmark's database dropped afterwards.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

from tests.check_services import SERVICES, reachable
from tests.conftest import REPO_ROOT
from tests.services import POSTGRES_URL, require_service

pytestmark = pytest.mark.slow

BENCH = REPO_ROOT / "bench"


def bench_module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def start_script(name: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(BENCH / name), *args, "--json"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, f"exited {process.returncode}\n{out}\n{err[-3000:]}"
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Both benchmarks, started together: each mostly waits for its service to start."""
    started = {
        "soak": start_script("soak_bench.py", "--submissions", "6", "--sample-every", "3"),
    }
    if reachable(*SERVICES["postgresql"]):
        started["load"] = start_script(
            "load_bench.py", "--clients", "5", "--submissions", "3", "--duration", "2"
        )
    yield started
    for process in started.values():
        if process.poll() is None:
            process.terminate()
            process.communicate(timeout=120)


@pytest.mark.services
def test_it_runs_the_load_benchmark_and_drops_its_database(
    runs: dict[str, subprocess.Popen[str]],
) -> None:
    require_service("postgresql")
    process = runs["load"]
    result = finish(process)
    assert result["errors"] == 0, result["error_samples"]
    assert result["succeeded"] == result["jobs"] == 3, result["failures"]
    assert result["all_succeeded_s"] is not None
    assert result["latency"]["count"] == result["requests"] > 0
    assert set(result["latency_by_endpoint"]) >= {"submission", "job"}
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s",
            (f"skysolve_load_{process.pid}",),
        ).fetchall()
    assert left == []


def test_it_runs_the_soak_benchmark_and_its_audit_passes(
    runs: dict[str, subprocess.Popen[str]],
) -> None:
    result = finish(runs["soak"])
    failed = [c for c in result["checks"] if not c["ok"]]
    assert result["passed"] and not failed, failed
    assert [s["submissions"] for s in result["samples"]] == [0, 3, 6]
    assert all(s["web_rss_mb"] > 0 and s["worker_fds"] > 0 for s in result["samples"])


def test_it_fails_the_soak_audit_on_leftovers_and_growth(tmp_path: Path) -> None:
    soak = bench_module("soak_bench")
    data = tmp_path / "var"
    (data / "jobs" / "11").mkdir(parents=True)
    (data / "jobs" / "11" / "wcs.fits").write_bytes(b"x")
    (data / "jobs" / "12").mkdir()  # an empty results directory
    (data / "jobs" / "99").mkdir()  # no such job
    (data / "jobs" / "99" / "out.fits").write_bytes(b"x")
    (data / "jobs" / ".attempts" / "13.1.abcd").mkdir(parents=True)  # never published
    (data / "uploads").mkdir()
    (data / "uploads" / "fetch-1234.part").write_bytes(b"x")
    (data / "stray.log").write_text("x")
    server_tmp = tmp_path / "tmp"
    (server_tmp / "tmpabc").mkdir(parents=True)

    checks = {c.name: c for c in soak.audit_files(data, {11, 12}, server_tmp)}

    assert not any(c.ok for c in checks.values()), checks
    assert "stray.log" in checks["data directory holds nothing unexpected"].detail
    assert "stray ['99']" in checks["one results directory per job"].detail
    assert "empty ['12']" in checks["one results directory per job"].detail
    assert "13.1.abcd" in checks["no attempt directory left beside the published ones"].detail
    growing = [(n, 100.0 + n) for n in range(0, 101, 10)]
    assert not soak.flatness("rss", growing, 32.0, "MB").ok
    assert soak.flatness("rss", [(n, 100.0) for n in range(0, 101, 10)], 32.0, "MB").ok
