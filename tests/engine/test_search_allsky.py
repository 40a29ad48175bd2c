"""The all-sky search beside the ordinary solvers under ``SKYSOLVE_ALLSKY=auto``.

A fisheye frame cut on every side by the frame (no dark surround: not taken
for one by :func:`~skysolve.engine.allsky.sky.looks_like_allsky`) fails the
ordinary solvers only at the time limit; the all-sky search starts beside
them after their first seconds, and the first verified answer wins.  The
ordinary solvers here are fakes (the fast path's blind miss, a search that
runs on until its time is up or it is cancelled, and one that answers after a
while), the all-sky search is the real one.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.engine.allsky.model import LensModel
from skysolve.engine.allsky.sky import looks_like_allsky
from skysolve.engine.config import EngineConfig
from skysolve.engine.params import SolveParameters
from skysolve.engine.pipeline import solve
from skysolve.engine.results import SourceList
from skysolve.engine.solving import search
from skysolve.engine.solving.base import SolveConstraints, Solver, SolverOutcome
from skysolve.errors import NoMatchError, SolveCancelledError, SolveTimeoutError
from testfields.allsky import render_allsky

#: Seconds before the all-sky search cuts in, for these tests (default 10).
EARLY = 0.5


class FastPathMiss(Solver):
    """The fast path's blind ladder, missing a field wider than its database."""

    name: ClassVar[str] = "fast-miss"
    quick: ClassVar[bool] = True

    def __init__(self) -> None:
        self.calls = 0

    def solve(
        self,
        sources: SourceList,
        constraints: SolveConstraints,
        workdir: Path,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> SolverOutcome:
        self.calls += 1
        return SolverOutcome(solved=False, solver=self.name, log="missed")


class SearchesOn(Solver):
    """astrometry.net on a field no index covers: on until its time is up or
    it is cancelled; ``answers_after``: with an answer (``solved``) or
    without one after that many seconds."""

    name: ClassVar[str] = "searches-on"

    def __init__(self, *, answers_after: float = math.inf, solved: bool = False) -> None:
        self.timeouts: list[float] = []
        self.cancelled = False
        self.answers_after, self.solved = answers_after, solved

    def solve(
        self,
        sources: SourceList,
        constraints: SolveConstraints,
        workdir: Path,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> SolverOutcome:
        self.timeouts.append(timeout)
        started = time.monotonic()
        while time.monotonic() - started < min(timeout, self.answers_after):
            if cancel is not None and cancel.is_set():
                self.cancelled = True
                raise SolveCancelledError("the solve was cancelled")
            time.sleep(0.02)
        if self.answers_after > timeout:
            raise SolveTimeoutError(f"no solution within the time limit of {timeout:g} s")
        if not self.solved:
            return SolverOutcome(solved=False, solver=self.name, log="no match")
        return SolverOutcome(
            solved=True, solver=self.name, wcs_header=tan_header(sources.width, sources.height)
        )


def tan_header(width: int, height: int) -> fits.Header:
    """A TAN WCS of 1-arcminute pixels centred on the frame."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 30.0]
    wcs.wcs.crpix = [(width + 1) / 2, (height + 1) / 2]
    wcs.wcs.cd = [[-1 / 60, 0.0], [0.0, 1 / 60]]
    return wcs.to_header()


def fisheye_without_dark_corners(path: Path) -> Path:
    """A 480 x 320 equidistant all-sky frame whose image circle (the horizon
    300 px from the axis) reaches past every corner: lit to the frame's edge."""
    model = LensModel(
        "equidistant", center_x=242.5, center_y=157.5, ra=83.0, dec=12.0, roll=35.0,
        focal=300.0 / (math.pi / 2),
    )  # fmt: skip
    frame = render_allsky(model, 480, 320, seed=5)
    assert not looks_like_allsky(frame)
    fits.PrimaryHDU(frame).writeto(path)
    return path


def scattered_stars(path: Path) -> Path:
    """A 600 x 400 frame of 300 seeded stars at random places: no sky the
    all-sky search matches, lit to the edges like an ordinary frame."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:400, 0:600]
    frame = rng.normal(500.0, 8.0, size=(400, 600))
    for x, y, flux in zip(
        rng.uniform(5, 595, 300),
        rng.uniform(5, 395, 300),
        rng.uniform(200, 20000, 300),
        strict=True,
    ):
        near = (abs(xx - x) < 6) & (abs(yy - y) < 6)
        frame[near] += flux * np.exp(-((xx[near] - x) ** 2 + (yy[near] - y) ** 2) / 2.0)
    fits.PrimaryHDU(frame.astype(np.float32)).writeto(path)
    return path


def config(*solvers: Solver) -> EngineConfig:
    return EngineConfig(make_pictures=False, solvers=solvers, allsky="auto")


@pytest.fixture(autouse=True)
def early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The all-sky search cuts in after ``EARLY`` seconds; no camera profiles kept."""
    monkeypatch.setattr(search, "ALLSKY_EARLY_SECONDS", EARLY, raising=False)
    monkeypatch.setenv("SKYSOLVE_ALLSKY_PROFILES", str(tmp_path / "profiles"))


def test_the_allsky_search_answers_a_fisheye_frame_without_a_dark_surround(
    tmp_path: Path,
) -> None:
    frame = fisheye_without_dark_corners(tmp_path / "fisheye.fits")
    fast, slow = FastPathMiss(), SearchesOn()
    # Before, a limit under 40 s left the all-sky search no time after the
    # ordinary solvers (and a longer one only its last 20 s).
    params = SolveParameters(timeout=25.0)
    result = solve(frame, params, tmp_path / "out", config=config(fast, slow))
    assert result.solved, result.failure
    assert result.solver == "allsky-lens"
    # The fast path looked first; the ordinary search ran on beside the
    # all-sky search (with the whole limit) until the answer stopped it.
    assert fast.calls == 1
    assert len(slow.timeouts) == 1 and slow.timeouts[0] > EARLY
    assert slow.cancelled
    assert "the all-sky search answered: the ordinary solvers stop" in result.log


def test_an_ordinary_answer_after_the_allsky_search_started_needs_no_new_start(
    tmp_path: Path,
) -> None:
    frame = scattered_stars(tmp_path / "field.fits")
    fast, slow = FastPathMiss(), SearchesOn(answers_after=1.5 + EARLY, solved=True)
    params = SolveParameters(timeout=25.0)
    result = solve(frame, params, tmp_path / "out", config=config(fast, slow))
    assert result.solved, result.failure
    assert result.solver == "searches-on"
    # The all-sky search ran beside it (and missed or was stopped); the
    # ordinary search went on, never stopped nor started again.
    assert "all-sky lens model" in result.log
    assert len(slow.timeouts) == 1 and slow.timeouts[0] > EARLY and not slow.cancelled
    assert fast.calls == 1


def test_the_ordinary_solvers_go_on_after_the_allsky_search_misses(
    tmp_path: Path,
) -> None:
    frame = scattered_stars(tmp_path / "field.fits")
    fast, slow = FastPathMiss(), SearchesOn(answers_after=1.5 + EARLY)
    params = SolveParameters(timeout=25.0)
    result = solve(frame, params, tmp_path / "out", config=config(fast, slow))
    assert not result.solved
    assert isinstance(result.failure, NoMatchError)
    # The all-sky search's miss, and the ordinary search's own end, once.
    assert "all-sky lens search:" in result.failure.message
    assert len(slow.timeouts) == 1 and slow.timeouts[0] > EARLY
    assert fast.calls == 1


def test_the_callers_cancel_stops_both_searches(tmp_path: Path) -> None:
    frame = scattered_stars(tmp_path / "field.fits")
    fast, slow = FastPathMiss(), SearchesOn()
    cancel = threading.Event()
    # The all-sky search (which misses this frame) is under way or over by then.
    timer = threading.Timer(EARLY + 0.2, cancel.set)
    timer.start()
    with pytest.raises(SolveCancelledError):
        solve(
            frame, SolveParameters(timeout=25.0), tmp_path / "out",
            config=config(fast, slow), cancel=cancel,
        )  # fmt: skip
    timer.join()
    assert slow.cancelled and len(slow.timeouts) == 1


def test_the_time_limit_names_the_allsky_search_s_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "ALLSKY_MAX_SECONDS", 2.0)
    frame = scattered_stars(tmp_path / "field.fits")
    fast, slow = FastPathMiss(), SearchesOn()
    with pytest.raises(SolveTimeoutError, match="all-sky lens search: ."):
        solve(frame, SolveParameters(timeout=4.0), tmp_path / "out", config=config(fast, slow))
    # One search to the limit, beside the all-sky search's miss.
    assert len(slow.timeouts) == 1 and slow.timeouts[0] > EARLY


def test_a_frame_the_metadata_says_is_narrow_gets_no_early_allsky_search() -> None:
    fast, slow = FastPathMiss(), SearchesOn()
    blind = search.blind_solvers_for([fast, slow], None, lambda stage, line: None)
    assert not search._allsky_early(SolveParameters(), [fast, slow], blind[:1], _clock(60.0))
    # A scale from the user says what the field is.
    scaled = SolveParameters(scale_units="degwidth", scale_lower=1.0, scale_upper=2.0)
    assert not search._allsky_early(scaled, [fast, slow], [fast, slow], _clock(60.0))
    assert search._allsky_early(SolveParameters(), [fast, slow], [fast, slow], _clock(60.0))
    # Without the time for the all-sky search and the ordinary solvers after it.
    assert not search._allsky_early(SolveParameters(), [fast, slow], [fast, slow], _clock(20.0))


def _clock(seconds: float) -> search.Clock:
    return search.Clock(seconds, None)
