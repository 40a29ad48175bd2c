"""The one "poll until it happens" of the tests, and the API job wait built on it.

Every wait here is bounded by ``patience``, which only stops a hang: it times
nothing, and a test fails on it only when the awaited thing never happens.
No Django here: the process tests (tests/queue/cluster.py, tests/liveserver.py)
use it too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Statuses of a job that has ended (nova's ``/api/jobs/ID`` answers).
ENDED = ("success", "failure")
#: Longest hold of a gate, so a test that dies without removing it cannot wedge a worker.
MAX_HOLD_SECONDS = 900.0


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], object] = bool,
    *,
    what: str = "the condition",
    patience: float = 600.0,
    interval: float,
    details: Callable[[], str] | None = None,
) -> T:
    """Call ``fetch()`` every ``interval`` seconds until ``done(answer)``; return the answer.

    After ``patience`` seconds (by default the per-test limit of pyproject.toml's
    pytest-timeout) it fails naming ``what``, with ``details()`` (logs,
    the jobs table) or else the last answer.
    """
    give_up = time.monotonic() + patience
    while True:
        answer = fetch()
        if done(answer):
            return answer
        if time.monotonic() > give_up:
            more = details() if details is not None else f"last answer {answer!r}"
            raise AssertionError(f"gave up waiting for {what}; {more}")
        time.sleep(interval)


def finished_job(
    get_json: Callable[[str], Any],
    subid: int,
    *,
    statuses: tuple[str, ...] = ENDED,
    patience: float = 300.0,
    interval: float = 0.25,
) -> tuple[int, str]:
    """(job id, status) of submission ``subid``'s job once its status is in ``statuses``.

    ``get_json(path)`` answers an API path such as ``/api/submissions/7`` with its JSON.
    """

    def state() -> tuple[int, str]:
        jobs = get_json(f"/api/submissions/{subid}")["jobs"]
        if not jobs or jobs[0] is None:
            return 0, "no job yet"
        job_id = int(jobs[0])
        return job_id, str(get_json(f"/api/jobs/{job_id}")["status"])

    return poll(
        state,
        lambda s: s[1] in statuses,
        what=f"submission {subid}'s job to reach {' or '.join(statuses)}",
        patience=patience,
        interval=interval,
    )


def hold_while_exists(
    gate: Path, *, cancel: threading.Event | None = None, max_hold: float = MAX_HOLD_SECONDS
) -> bool:
    """Wait while the file ``gate`` exists (a test removes it to let a fake solver on).

    The fake solvers run in other processes (``skysolve serve``, workers), so the
    gate is a file.  Returns True if ``cancel`` was set meanwhile.
    """
    deadline = time.monotonic() + max_hold
    while gate.exists() and time.monotonic() < deadline:
        if cancel is not None:
            if cancel.wait(0.05):
                return True
        else:
            time.sleep(0.05)
    return False
