"""A fake solver that holds its worker while a gate file exists, for queue-wait tests.

`skysolve serve` imports it by name (``SKYSOLVE_SOLVER``) in its worker process;
``SKYSOLVE_FAKE_GATE`` names the file.  While it exists every solve waits, so the
worker stays busy with the first job and later jobs wait in the queue for real,
as long as the test wants; removing the file lets them all through.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveResult, SourceList
from skysolve.errors import SolveCancelledError
from tests.waiting import hold_while_exists
from tests.webfixtures import FakeSolver


def gated_fake_solve(
    source: Path | SourceList,
    params: SolveParameters,
    out_dir: Path,
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[str, str], None] | None = None,
    verified: Callable[[SolveResult], None] | None = None,
) -> SolveResult:
    gate = Path(os.environ["SKYSOLVE_FAKE_GATE"])
    if progress:
        progress("solving", "held by the test's gate")
    if hold_while_exists(gate, cancel=cancel):
        raise SolveCancelledError("cancelled")
    return FakeSolver()(
        source, params, out_dir, cancel=cancel, progress=progress, verified=verified
    )
