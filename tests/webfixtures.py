"""Shared fixtures of the web, API and queue tests: a data directory, a fake solver.

A pytest plugin (listed once, in tests/conftest.py); it imports no Django.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.engine.inputs.hints import apply_learned
from skysolve.engine.params import SolveParameters
from skysolve.engine.results import Annotation, Calibration, SolveResult, SourceList
from skysolve.errors import NoMatchError, SolveCancelledError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_wcs(width: int = 400, height: int = 300) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [169.966, 13.221]
    wcs.wcs.crpix = [(width + 1) / 2, (height + 1) / 2]
    scale = 1.0907 / 3600
    wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    return wcs


class FakeSolver:
    """Writes small real result files; solves unless told otherwise.

    ``hook`` runs inside the solve (to cancel, time out or inspect the state
    from the solving thread, as the real engine would experience it).
    """

    def __init__(self, *, solved: bool = True) -> None:
        self.solved = solved
        self.calls: list[tuple[Path | SourceList, SolveParameters]] = []
        self.hook: Callable[[threading.Event | None], None] | None = None
        self.error: Exception | None = None
        #: Runs after the answer is given, before the pictures are drawn.
        self.after_answer: Callable[[], None] | None = None

    def __call__(
        self,
        source: Path | SourceList,
        params: SolveParameters,
        out_dir: Path,
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[str, str], None] | None = None,
        verified: Callable[[SolveResult], None] | None = None,
    ) -> SolveResult:
        self.calls.append((source, params))
        if progress:
            progress("preparing", "reading")
        if self.hook is not None:
            self.hook(cancel)
        if cancel is not None and cancel.is_set():
            raise SolveCancelledError("cancelled")
        if self.error is not None:
            raise self.error
        width, height = 400, 300
        files: dict[str, Path] = {}
        log = out_dir / "solve.log"
        log.write_text("fake solver log\n")
        files["log"] = log
        if not self.solved:
            return SolveResult(
                solved=False,
                image_width=width,
                image_height=height,
                files=files,
                log="fake solver log\n",
                failure=NoMatchError("no match found"),
            )
        wcs = fake_wcs(width, height)
        header = wcs.to_header()
        wcs_path = out_dir / "wcs.fits"
        fits.PrimaryHDU(header=header).writeto(wcs_path)
        files["wcs"] = wcs_path
        new_fits = out_dir / "new.fits"
        fits.PrimaryHDU(data=np.zeros((height, width), dtype=np.uint8), header=header).writeto(
            new_fits
        )
        files["new_fits"] = new_fits
        # Learned hints are reported as the pipeline reports them (its own function).
        _, learned = apply_learned(params, image_width=width, image_height=height)
        hints = {"learned": learned, "sources": [learned["source"]]} if learned else {}
        answer = SolveResult(
            solved=True,
            image_width=width,
            image_height=height,
            hints=hints,
            calibration=Calibration.from_wcs(wcs, width, height),
            wcs_header=header,
            files={"wcs": wcs_path},
            objects_in_field=["M 66", "NGC 3628"],
            annotations=[Annotation("ngc", ["NGC 3628"], 100.0, 120.0, 35.0)],
        )
        if verified is not None:
            verified(answer)  # as the pipeline does: the answer before the pictures
        if self.after_answer is not None:
            self.after_answer()
        for key in ("annotated_display", "red_green_display"):
            png = out_dir / f"{key}.png"
            png.write_bytes(PNG_MAGIC + b"fake")
            files[key] = png
        jpg = out_dir / "annotated_full.jpg"
        jpg.write_bytes(b"\xff\xd8\xff\xe0fake")
        files["annotated_full"] = jpg
        if progress:
            progress("solving", "matching")
        return SolveResult(
            solved=True,
            image_width=width,
            image_height=height,
            calibration=Calibration.from_wcs(wcs, width, height),
            wcs_header=header,
            files=files,
            objects_in_field=["M 66", "NGC 3628"],
            annotations=[Annotation("ngc", ["NGC 3628"], 100.0, 120.0, 35.0)],
            log="fake solver log\n",
            hints=hints,
        )


@pytest.fixture
def fake_solver(settings: Any) -> FakeSolver:
    solver = FakeSolver()
    settings.SKYSOLVE_FAKE_SOLVER = solver
    settings.SKYSOLVE_SOLVER = "tests.webfixtures.configured_fake_solver"
    return solver


def configured_fake_solver(*args: Any, **kwargs: Any) -> SolveResult:
    from django.conf import settings

    solver: FakeSolver = settings.SKYSOLVE_FAKE_SOLVER
    return solver(*args, **kwargs)


@pytest.fixture
def data_dir(settings: Any, tmp_path: Path) -> Path:
    """Every test writes uploads and results under its own temporary directory.

    Every test of a Django package uses it (tests/conftest.py marks them).

    It also starts with no address remembered as guessing ids: the rows that
    put one there were rolled back with the test that made them.
    """
    from skysolve.accounts.ratelimit import forget_blocked_addresses

    forget_blocked_addresses()
    settings.DATA_DIR = tmp_path / "var"
    settings.SKYSOLVE_UPLOAD_DIR = tmp_path / "var" / "uploads"
    settings.SKYSOLVE_JOB_DIR = tmp_path / "var" / "jobs"
    settings.DATA_DIR.mkdir()
    return tmp_path / "var"


def fake_solve(*args: Any, **kwargs: Any) -> SolveResult:
    """A solver a separate process (``skysolve serve`` in the end-to-end test) can import."""
    return FakeSolver()(*args, **kwargs)
