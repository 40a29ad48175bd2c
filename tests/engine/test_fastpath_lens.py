"""A wide lens's radial distortion through the fast path: undone, measured, remembered."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from skysolve.engine.config import EngineConfig
from skysolve.engine.extraction import SOLVER_UNIFORMIZE_CELLS, extract_bright_sources, uniformize
from skysolve.engine.extraction.bright import SPARSE_SOURCES
from skysolve.engine.params import SolveParameters
from skysolve.engine.solving.base import SolveConstraints
from skysolve.engine.solving.fastpath import PatternHashSolver, default_db_path
from skysolve.engine.solving.fastpath.lens import RadialLens, radial_of, recall, remember
from testfields.allsky import wide_angle_lens, wide_frame

WIDTH, HEIGHT = 800, 600
needs_db = pytest.mark.skipif(
    not default_db_path().is_file(), reason="the fast-path database is not built"
)


class _Pixels:
    """A LensModel (0-based pixels) as a WCS model of 1-based pixels."""

    def __init__(self, lens: object) -> None:
        self.lens = lens

    def pix2world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.lens.pixel_to_world(np.asarray(x) - 1.0, np.asarray(y) - 1.0)  # type: ignore[attr-defined]


def _frame(fov: float, distortion: float, ra: float, dec: float, roll: float):
    return wide_frame(fov, WIDTH, HEIGHT, distortion, ra=ra, dec=dec, roll=roll)


def _largest_error(lens: object, model: object, margin: float = 0.0) -> float:
    """Largest distance (px) between the known lens and a solved model over the
    frame (less ``margin`` of each side)."""
    gx, gy = np.meshgrid(
        np.linspace(margin * WIDTH, (1 - margin) * (WIDTH - 1), 9),
        np.linspace(margin * HEIGHT, (1 - margin) * (HEIGHT - 1), 7),
    )
    ra, dec = lens.pixel_to_world(gx.ravel(), gy.ravel())  # type: ignore[attr-defined]
    px, py = model.world2pix(ra, dec)  # type: ignore[attr-defined]
    return float(np.max(np.hypot(px - 1 - gx.ravel(), py - 1 - gy.ravel())))


def test_it_measures_a_lens_radial_distortion_and_field() -> None:
    for fov, distortion in [(50.0, 0.0), (66.0, -0.10)]:
        lens = wide_angle_lens(fov, WIDTH, HEIGHT, distortion, ra=10.0, dec=30.0, roll=40.0)
        measured = radial_of(_Pixels(lens), WIDTH, HEIGHT)
        assert measured is not None
        # 10 % barrel at the edge: the edge 1 / 0.9 farther out undistorted.
        assert measured.k == pytest.approx(-distortion / (1.0 + distortion), abs=0.015)
        assert 0.85 * fov < measured.fov < fov


def test_it_remembers_a_camera_lens_and_ignores_a_broken_file(tmp_path: Path) -> None:
    remember("800x600-abc", RadialLens(k=0.12, fov=61.5), tmp_path)
    assert recall("800x600-abc", tmp_path) == RadialLens(k=0.12, fov=61.5)
    assert recall("800x600-other", tmp_path) is None
    (tmp_path / "800x600-bad.radial.json").write_text('{"k": 7, "fov": 61}')
    assert recall("800x600-bad", tmp_path) is None  # beyond what the model holds
    (tmp_path / "800x600-junk.radial.json").write_text("not json")
    assert recall("800x600-junk", tmp_path) is None


def test_a_sparse_frame_is_searched_again_at_a_lower_threshold() -> None:
    # Ten bright stars and forty faint ones (a peak of 4.4 noise sigmas): at 5 sigma
    # the fast path would have ten sources, too few for its verification.
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:400, 0:400]
    image = rng.normal(100.0, 5.0, (400, 400))
    for i, (x, y) in enumerate(rng.uniform(20, 380, (50, 2))):
        peak = 400.0 if i < 10 else 22.0
        image += peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
    sources = extract_bright_sources(image.astype(np.float32), count=300)
    assert len(sources) >= SPARSE_SOURCES


@needs_db
def test_a_strongly_distorted_wide_frame_is_found_with_the_remembered_lens(
    tmp_path: Path,
) -> None:
    # 80 degrees with 12 % barrel: its undistorted field (72 deg) is past the
    # database's widest guesses, and the pinhole match of the old fast path
    # (before the lens memory) did not verify; with the camera's lens undone
    # the first guess matches.
    lens, image = _frame(80.0, -0.12, 100.0, 20.0, 30.0)
    sources = uniformize(extract_bright_sources(image, count=300), cells=SOLVER_UNIFORMIZE_CELLS)
    kept = radial_of(_Pixels(lens), WIDTH, HEIGHT)
    assert kept is not None
    solver = PatternHashSolver(default_db_path())
    out = solver.solve(
        sources,
        SolveConstraints(lens=(kept.k, kept.fov)),
        tmp_path / "lens",
        timeout=30,
    )
    assert out.solved, out.log
    assert "FOV guess 71.9" in out.log.splitlines()[2]  # the first guess
    # The fast path's cubic holds the middle; the final fit, of the order the
    # stars support, the corners.
    assert _largest_error(lens, out.wcs_model, margin=0.1) < 2.0


@needs_db
@pytest.mark.parametrize("wrong", [(0.3, 40.0), (-0.2, 66.0), (0.12, 60.0)])
def test_another_cameras_lens_never_gives_a_wrong_answer(
    tmp_path: Path, wrong: tuple[float, float]
) -> None:
    # A 60-degree pinhole frame with the lens of another camera of the same
    # key (another lens on the same body): right, or not solved.
    lens, image = _frame(60.0, 0.0, 250.0, -40.0, 200.0)
    sources = uniformize(extract_bright_sources(image, count=300), cells=SOLVER_UNIFORMIZE_CELLS)
    out = PatternHashSolver(default_db_path()).solve(
        sources, SolveConstraints(lens=wrong), tmp_path, timeout=30
    )
    assert out.solved, out.log  # the blind ladder after the wrong first guess
    assert _largest_error(lens, out.wcs_model) < 3.0


@needs_db
def test_the_pipeline_remembers_a_wide_lens_for_the_cameras_next_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from astropy.io import fits

    from skysolve.engine.pipeline import solve

    monkeypatch.setenv("SKYSOLVE_ALLSKY_PROFILES", str(tmp_path / "profiles"))
    lens, image = _frame(66.0, -0.10, 300.0, 50.0, 120.0)
    path = tmp_path / "wide.fits"
    fits.PrimaryHDU(image, header=fits.Header({"INSTRUME": "wide camera"})).writeto(path)
    config = dataclasses.replace(EngineConfig.from_env(), make_pictures=False, write_files=False)
    first = solve(path, SolveParameters(), tmp_path / "one", config=config)
    assert first.solved and first.solver == "pattern-hash"
    assert "kept the camera's lens" in first.log
    kept = list((tmp_path / "profiles").glob("*.radial.json"))
    assert len(kept) == 1
    second = solve(path, SolveParameters(), tmp_path / "two", config=config)
    assert "the camera's remembered lens" in second.log
    assert "centroids undistorted" in second.log
    assert second.calibration is not None and first.calibration is not None
    assert math.isclose(second.calibration.ra, first.calibration.ra, abs_tol=0.05)
    # Hints off: nothing remembered is used.
    blind = solve(path, SolveParameters(use_hints=False), tmp_path / "three", config=config)
    assert "remembered lens" not in blind.log
