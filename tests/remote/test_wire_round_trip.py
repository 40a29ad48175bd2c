"""One serialisation, two transports: a result or an error that travels through
the Celery task format or the ssh solve-host stream comes back the same."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveResult, SourceList
from skysolve.errors import (
    NoMatchError,
    SolveError,
    SolverFailedError,
    error_classes,
    error_from_dict,
    error_to_dict,
)
from skysolve.queue.transfer import pack_request, pack_result, unpack_request, unpack_result
from skysolve.remote.ssh import solve_via
from tests.conftest import REPO_ROOT

#: The solve host's side: the real server loop with the tests' fake solver,
#: which raises the error named by SKYSOLVE_FAKE_ERROR (code, retryable).
HOST = """
import json, os, sys
from skysolve.errors import SolveError, error_from_dict
from skysolve.remote import server
from tests.webfixtures import FakeSolver

def solve(*args, **kwargs):
    raw = os.environ.get("SKYSOLVE_FAKE_ERROR")
    if raw:
        raise error_from_dict(json.loads(raw))
    return FakeSolver(solved=os.environ.get("SKYSOLVE_FAKE_SOLVED") == "1")(*args, **kwargs)

sys.exit(server.serve_one(sys.stdin.buffer, sys.stdout.buffer, solve=solve, watch_hangup=False))
"""


@dataclass
class FakeHost:
    """The ssh transport's process: the solve-host loop run locally, no ssh."""

    environ: Mapping[str, str]
    name: str = "fake solve host"
    connect_failure_status: int | None = None

    def argv(self) -> list[str]:
        return [sys.executable, "-c", HOST]

    def env(self) -> Mapping[str, str] | None:
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        return {**os.environ, "PYTHONPATH": path, **self.environ}


def sources() -> SourceList:
    rng = np.random.default_rng(3)
    return SourceList(
        x=rng.uniform(1, 400, 30),
        y=rng.uniform(1, 300, 30),
        flux=np.sort(rng.uniform(1, 100, 30))[::-1],
        width=400,
        height=300,
        background=rng.uniform(0, 5, 30),
    )


def by_celery(result: SolveResult, out: Path) -> SolveResult:
    return unpack_result(json.loads(json.dumps(pack_result(result))), out)


def by_ssh(solved: bool, out: Path) -> SolveResult:
    host = FakeHost({"SKYSOLVE_FAKE_SOLVED": "1" if solved else "0"})
    return solve_via(host, sources(), SolveParameters(), out)


def comparable(result: SolveResult) -> dict[str, Any]:
    doc = result.to_json()
    doc.pop("files")
    doc.pop("command")
    doc["timings"] = {}  # the ssh client adds its round trip
    doc["log"] = result.log
    doc["wcs"] = None if result.wcs_header is None else dict(result.wcs_header)
    doc["file_bytes"] = {k: Path(p).read_bytes() for k, p in result.files.items()}
    return doc


@pytest.mark.parametrize("solved", [True, False])
def test_it_brings_back_the_same_result_through_both_transports(
    tmp_path: Path, solved: bool
) -> None:
    from tests.webfixtures import FakeSolver

    direct = FakeSolver(solved=solved)(sources(), SolveParameters(), _mkdir(tmp_path / "d"))
    celery = by_celery(direct, tmp_path / "celery")
    ssh = by_ssh(solved, tmp_path / "ssh")
    assert comparable(celery) == comparable(direct)
    assert comparable(ssh) == comparable(direct)
    if not solved:
        assert isinstance(celery.failure, NoMatchError) and isinstance(ssh.failure, NoMatchError)


def test_it_sends_a_source_list_the_same_way_through_both_transports(tmp_path: Path) -> None:
    request = json.loads(
        json.dumps(pack_request(7, sources(), SolveParameters(), max_file_bytes=0))
    )
    back, _ = unpack_request(request, tmp_path)
    assert isinstance(back, SourceList)
    for column in ("x", "y", "flux", "background"):
        assert np.array_equal(getattr(back, column), getattr(sources(), column))
    assert request["sources"]["columns"] == ["x", "y", "flux", "background"]


@pytest.mark.parametrize(
    "error",
    [SolverFailedError("segfault"), NoMatchError("nothing"), SolveError("odd")],
    ids=["retryable", "permanent", "unknown"],
)
def test_it_brings_back_the_same_error_through_both_transports(
    tmp_path: Path, error: SolveError
) -> None:
    if type(error) is SolveError:
        error.code, error.retryable = "martian", True  # a newer host's code
    sent = error_to_dict(error)
    celery = error_from_dict(json.loads(json.dumps(sent)), sender="the worker")
    host = FakeHost({"SKYSOLVE_FAKE_ERROR": json.dumps(sent)})
    with pytest.raises(SolveError) as ssh:
        solve_via(host, sources(), SolveParameters(), tmp_path / "ssh")
    for back in (celery, ssh.value):
        assert type(back) is type(error)
        assert (back.code, back.retryable) == (error.code, error.retryable)
        assert back.message.endswith(error.message)


def test_it_gives_each_known_code_its_own_class_and_retry_flag() -> None:
    for code, cls in error_classes().items():
        doc = {"code": code, "message": "m", "retryable": not cls.retryable}
        back = error_from_dict(doc)
        # A code means one thing everywhere: the sender's flag cannot change it.
        assert type(back) is cls and back.retryable == cls.retryable


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
