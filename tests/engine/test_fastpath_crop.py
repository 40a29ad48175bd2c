"""Frames wider than the fast path's database: their centre matched, grown outward, verified."""

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from skysolve.engine.extraction import SOLVER_UNIFORMIZE_CELLS, extract_bright_sources, uniformize
from skysolve.engine.results import SourceList
from skysolve.engine.solving.base import SolveConstraints
from skysolve.engine.solving.fastpath import DatabaseInfo, PatternHashSolver, default_db_path
from skysolve.engine.solving.fastpath.crop import (
    CROP_FOV,
    CROP_FRAMES,
    CROP_PATTERNS,
    crop_centroids,
    crop_fraction,
    crop_guesses,
    edge_problem,
)
from testfields.allsky import wide_frame

WIDTH, HEIGHT = 800, 600
needs_db = pytest.mark.skipif(
    not default_db_path().is_file(), reason="the fast-path database is not built"
)


def _info(max_fov: float) -> DatabaseInfo:
    return DatabaseInfo(
        path=Path("default.t3db"),
        min_fov=max_fov / 17.5,
        max_fov=max_fov,
        num_stars=1,
        num_patterns=1,
        max_magnitude=10.0,
        reference_stars=1,
        catalogue="gaia",
        size_bytes=1,
    )


def _scale(fov: float) -> float:
    """Arcsec per pixel of an 800-pixel-wide frame ``fov`` degrees wide."""
    return fov * 3600.0 / WIDTH


def test_the_crops_follow_the_hints_and_a_remembered_lens() -> None:
    info = _info(70.0)
    first, last = crop_guesses(info, SolveConstraints(), WIDTH)
    assert first == [] and last == [(fov, 0.0) for fov in CROP_FRAMES]
    hinted = SolveConstraints(scale_low=_scale(95.0), scale_high=_scale(105.0))
    assert {fov for fov, _ in crop_guesses(info, hinted, WIDTH)[1]} == {90.0, 105.0, 120.0}
    # A field the database's own guesses cover gets no crop at all.
    narrow = SolveConstraints(scale_low=_scale(30.0), scale_high=_scale(40.0))
    assert crop_guesses(info, narrow, WIDTH) == ([], [])
    # A camera remembered wider than the database: its crop first, its lens undone.
    remembered = SolveConstraints(lens=(0.15, 96.0))
    assert crop_guesses(info, remembered, WIDTH)[0] == [(96.0, 0.15)]
    assert crop_guesses(info, SolveConstraints(lens=(0.05, 60.0)), WIDTH)[0] == []
    # A database of narrow fields crops nothing blind.
    assert crop_guesses(_info(10.0), SolveConstraints(), WIDTH) == ([], [])


def test_the_crop_is_the_centre_of_the_frame_the_crop_field_wide() -> None:
    assert crop_fraction(CROP_FOV) == pytest.approx(1.0)
    share = crop_fraction(90.0)
    assert share == pytest.approx(math.tan(math.radians(CROP_FOV / 2.0)))
    rng = np.random.default_rng(2)
    centroids = np.column_stack(
        [rng.uniform(-400, 400, 500), rng.uniform(-300, 300, 500), np.arange(500, 0, -1.0)]
    )
    part, cw, ch = crop_centroids(centroids, 90.0, WIDTH, HEIGHT, limit=40)
    assert (cw, ch) == (math.ceil(share * WIDTH), math.ceil(share * HEIGHT))
    assert len(part) == 40
    assert np.all(np.abs(part[:, 0]) <= cw / 2.0) and np.all(np.abs(part[:, 1]) <= ch / 2.0)
    assert np.all(np.diff(part[:, 2]) < 0)  # the brightest ones, in order


def test_a_grown_match_must_explain_the_edges_as_well_as_the_centre() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.uniform(1, WIDTH, 300), rng.uniform(1, HEIGHT, 300)
    sources = SourceList(x=x, y=y, flux=np.arange(300, 0, -1.0), width=WIDTH, height=HEIGHT)
    share = 0.4
    outside = (np.abs(x - (WIDTH + 1) / 2) > share * WIDTH / 2) | (
        np.abs(y - (HEIGHT + 1) / 2) > share * HEIGHT / 2
    )
    everything = np.arange(300)
    assert edge_problem(sources, everything, share) == ""
    # Most of the outside lost: a fit that ran off at the edges.
    half_outside = everything[~outside | (everything % 2 == 0)]
    assert "outside the crop" in edge_problem(sources, half_outside, share)
    # A frame half of whose sources are no stars, everywhere alike: fine.
    assert edge_problem(sources, everything[everything % 2 == 0], share) == ""


def _largest_error(lens: object, model: object, margin: float) -> float:
    """Largest distance (px) between where the known lens and the solved model put
    the sky of a grid over the frame (less ``margin`` of each side)."""
    gx, gy = np.meshgrid(
        np.linspace(margin * WIDTH, (1 - margin) * (WIDTH - 1), 9),
        np.linspace(margin * HEIGHT, (1 - margin) * (HEIGHT - 1), 7),
    )
    ra, dec = model.pix2world(gx.ravel() + 1.0, gy.ravel() + 1.0)  # type: ignore[attr-defined]
    px, py = lens.world_to_pixel(ra, dec)  # type: ignore[attr-defined]
    return float(np.max(np.hypot(px - gx.ravel(), py - gy.ravel())))


@needs_db
@pytest.mark.parametrize(
    ("fov", "distortion", "ra", "dec", "roll"),
    [
        (100.0, 0.0, 100.0, 20.0, 30.0),  # a phone's ultra-wide, barrel corrected
        (90.0, -0.10, 250.0, -40.0, 200.0),  # an 18 mm lens on a full-frame camera
        (120.0, -0.10, 300.0, 50.0, 120.0),
    ],
)
def test_it_finds_a_frame_wider_than_its_database_blind(
    tmp_path: Path, fov: float, distortion: float, ra: float, dec: float, roll: float
) -> None:
    # No guess of the 4-70 degree database matches these: the old fast path
    # left them to astrometry.net.
    lens, image = wide_frame(fov, WIDTH, HEIGHT, distortion, ra=ra, dec=dec, roll=roll)
    sources = uniformize(extract_bright_sources(image, count=300), cells=SOLVER_UNIFORMIZE_CELLS)
    out = PatternHashSolver(default_db_path()).solve(
        sources, SolveConstraints(), tmp_path, timeout=30
    )
    assert out.solved, out.log
    assert "frame guess" in out.log
    assert _largest_error(lens, out.wcs_model, margin=0.1) < 1.5


@needs_db
@pytest.mark.parametrize("wrong", [(0.2, 100.0), (0.0, 120.0)])
def test_another_wide_lens_never_gives_a_wrong_answer(
    tmp_path: Path, wrong: tuple[float, float]
) -> None:
    # A 60-degree pinhole frame with a remembered lens of a much wider camera of
    # the same key: its crop first, then the ladder; right, or not solved.
    lens, image = wide_frame(60.0, WIDTH, HEIGHT, 0.0, ra=250.0, dec=-40.0, roll=200.0)
    sources = uniformize(extract_bright_sources(image, count=300), cells=SOLVER_UNIFORMIZE_CELLS)
    out = PatternHashSolver(default_db_path()).solve(
        sources, SolveConstraints(lens=wrong), tmp_path, timeout=30
    )
    assert "frame guess" in out.log.splitlines()[0]
    assert out.solved, out.log
    assert _largest_error(lens, out.wcs_model, margin=0.0) < 3.0


@needs_db
def test_the_pipeline_remembers_a_camera_wider_than_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from astropy.io import fits

    from skysolve.engine.config import EngineConfig
    from skysolve.engine.params import SolveParameters
    from skysolve.engine.pipeline import solve

    monkeypatch.setenv("SKYSOLVE_ALLSKY_PROFILES", str(tmp_path / "profiles"))
    lens, image = wide_frame(100.0, WIDTH, HEIGHT, 0.0, ra=100.0, dec=20.0, roll=30.0)
    path = tmp_path / "wide.fits"
    fits.PrimaryHDU(image, header=fits.Header({"INSTRUME": "ultra-wide"})).writeto(path)
    config = dataclasses.replace(EngineConfig.from_env(), make_pictures=False, write_files=False)
    first = solve(path, SolveParameters(), tmp_path / "one", config=config)
    assert first.solved and first.solver == "pattern-hash"
    assert "kept the camera's lens" in first.log
    second = solve(path, SolveParameters(), tmp_path / "two", config=config)
    assert second.solved and second.solver == "pattern-hash"
    # The remembered field (about 99 degrees) is the first crop tried.
    first_try = next(line for line in second.log.splitlines() if "frame guess" in line)
    assert "frame guess 99." in first_try and "tetra3rs matched" in first_try
    assert second.calibration is not None and first.calibration is not None
    assert math.isclose(second.calibration.ra, first.calibration.ra, abs_tol=0.05)
    assert math.isclose(second.calibration.dec, 20.0, abs_tol=0.05)


class _NoMatch:
    status = "no_match"

    def __bool__(self) -> bool:
        return False


@pytest.mark.parametrize(("budget", "ladder", "crop"), [
    (None, None, CROP_PATTERNS), (0, 0, 0), (100, 100, 100), (10**6, 10**6, CROP_PATTERNS),
])  # fmt: skip
def test_a_pattern_budget_bounds_the_crops_as_it_bounds_the_ladder(
    tmp_path: Path, budget: int | None, ladder: int | None, crop: int
) -> None:
    """None is no budget of the caller's (tetra3rs's unbounded search on the
    ladder, the crop's own bound on a crop); 0 is a budget of none, as
    tetra3rs reads it, on both."""
    calls: list[dict[str, object]] = []

    class Database:
        def solve_from_centroids(self, centroids: np.ndarray, **kwargs: object) -> _NoMatch:
            calls.append(kwargs)
            return _NoMatch()

    loaded: Any = SimpleNamespace(database=Database())
    rng = np.random.default_rng(4)
    sources = SourceList(rng.uniform(0, WIDTH, 60), rng.uniform(0, HEIGHT, 60),
                         rng.uniform(1, 9, 60), WIDTH, HEIGHT)  # fmt: skip
    centroids = np.column_stack([sources.x - WIDTH / 2, sources.y - HEIGHT / 2, sources.flux])
    solver = PatternHashSolver(tmp_path, pattern_budget=budget)
    args = (centroids, sources, SolveConstraints(), 2.0, lambda text: None, "none")
    timing: Any = {"started": time.monotonic(), "timeout": 60.0, "cancel": None}
    assert solver._search_crops(loaded, [(100.0, 0.0)], *args, **timing)[0] is None
    assert solver._search(loaded, [(20.0, None, None)], *args, **timing)[0] is None
    assert [call.get("max_patterns_checked") for call in calls] == [crop, ladder]
