"""A camera's stored profile: stars measured where the model puts them, not searched for."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from skysolve.engine.allsky.blind import bright_stars, solve_allsky
from skysolve.engine.allsky.model import LensModel
from skysolve.engine.allsky.sky import find_sky
from skysolve.engine.allsky.targeted import (
    bright_sources,
    flat_frame,
    measure,
    predicted_sources,
)
from skysolve.engine.solving.fastpath.database import default_db_path
from testfields.allsky import largest_offset, render_allsky, small_lens

needs_db = pytest.mark.skipif(
    not default_db_path().exists(), reason="needs the fast-path database (make db)"
)


def _model(projection: str = "equisolid", **changes: float) -> LensModel:
    return small_lens(projection, **changes)


def _stars_frame(
    x: np.ndarray, y: np.ndarray, *, size: int = 120, sigma: float = 1.1, seed: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gy, gx = np.mgrid[0:size, 0:size].astype(float)
    image = np.full((size, size), 300.0)
    for xi, yi in zip(x, y, strict=True):
        image += 2000.0 * np.exp(-0.5 * ((gx - xi) ** 2 + (gy - yi) ** 2) / sigma**2)
    image += rng.normal(0.0, 5.0, image.shape)
    return image.astype(np.float32)


def test_it_measures_a_star_near_where_it_was_told_and_nothing_where_there_is_none() -> None:
    truth_x = np.array([30.3, 61.7, 90.45])
    truth_y = np.array([40.6, 70.2, 25.85])
    frame = flat_frame(_stars_frame(truth_x, truth_y))
    # Told 2-3 px off, as a stored model is before it is repointed; the last
    # place has no star.
    told_x = np.array([32.0, 60.0, 88.0, 60.0])
    told_y = np.array([39.0, 72.0, 27.0, 20.0])
    x, y, flux, found = measure(frame, told_x, told_y, search=4.0)
    assert found.tolist() == [True, True, True, False]
    assert np.max(np.hypot(x[:3] - truth_x, y[:3] - truth_y)) < 0.05
    assert np.all(flux[:3] > 1000.0)


def test_it_does_not_reach_past_the_search_radius() -> None:
    frame = flat_frame(_stars_frame(np.array([60.0]), np.array([60.0])))
    _, _, _, found = measure(frame, np.array([60.0, 67.0]), np.array([60.0, 60.0]), search=3.0)
    assert found.tolist() == [True, False]


def test_the_bright_sources_are_found_without_a_model() -> None:
    truth = _model()
    image = render_allsky(truth, 480, 480, seed=5)
    region = find_sky(image)
    frame = flat_frame(image)
    bright = bright_sources(frame, region, most=100)
    assert len(bright) == 100
    # Brightest first, each a star the lens put there (a few are two stars
    # drawn into one, their centroid between them).
    assert np.all(np.diff(bright.flux) <= 0)
    stars = bright_stars()
    keep = truth.off_axis(stars.ra, stars.dec) < 90.0
    sx, sy = truth.world_to_pixel(stars.ra[keep], stars.dec[keep])
    nearest = [np.min(np.hypot(sx - x, sy - y)) for x, y in zip(bright.x, bright.y, strict=True)]
    assert np.max(nearest) < 2.0 and np.mean(np.array(nearest) < 0.5) >= 0.95
    measured = predicted_sources(frame, truth, stars.xyz, region, search=2.0, most=500)
    assert len(measured) > 200


def test_a_stored_profile_is_answered_from_the_stars_it_predicts() -> None:
    # The camera's next frame, the sky turned 0.3 degrees more than the clocks
    # said: the stars are measured where the stored model puts them (no
    # whole-frame extraction), and the answer is the truth.
    truth = _model(k1=0.01, a=0.002)
    frame = render_allsky(truth, 480, 480, seed=11)
    stored = replace(truth, ra=truth.ra + 0.3)
    solution = solve_allsky(frame, timeout=30.0, start=stored)
    assert solution.solved, solution.reason
    assert any("stars measured within" in line for line in solution.log)
    assert not any(line.endswith("sources on the sky") for line in solution.log)
    got = solution.model
    assert got is not None and solution.matched is not None
    assert solution.matched.rms(70.0) < 0.5
    assert solution.false_positive < 1e-9
    assert largest_offset(truth, got, 70.0) < 1.0


@needs_db
def test_a_wrong_profile_falls_back_to_the_whole_frame_and_the_search() -> None:
    # Another camera's model (twice the scale, turned): the chance test on the
    # sources found without it refuses it, the whole frame is extracted, and
    # the answer comes from the search, right.
    truth = _model("equidistant")
    frame = render_allsky(truth, 480, 480, seed=12)
    stored = replace(truth, focal=truth.focal * 2.0, roll=truth.roll + 40.0)
    solution = solve_allsky(frame, timeout=30.0, start=stored)
    log = solution.log
    quick = next(i for i, line in enumerate(log) if "(binned detection)" in line)
    whole = next(i for i, line in enumerate(log) if line.endswith("sources on the sky"))
    assert quick < whole
    # Stars are measured at predictions only for the search's own answer.
    measured = [i for i, line in enumerate(log) if "stars measured within" in line]
    assert all(i > whole for i in measured)
    assert not any("stored model matched" in line for line in log)
    assert solution.solved, solution.reason
    got = solution.model
    assert got is not None
    assert math.degrees(math.acos(min(1.0, got.rotation[2] @ truth.rotation[2]))) < 0.3


@needs_db
@pytest.mark.parametrize(("projection", "seed"), [("equidistant", 11), ("equisolid", 13)])
def test_a_blind_answer_is_measured_again_where_it_puts_the_stars(
    projection: str, seed: int
) -> None:
    # The whole frame's extraction leaves 0.42-0.45 px of residuals on these
    # frames; centroids in windows at the answer's own predictions leave
    # 0.26-0.28, and the model comes out twice as close to the truth.
    truth = _model(projection)
    frame = render_allsky(truth, 480, 480, seed=seed)
    solution = solve_allsky(frame, timeout=30.0)
    assert solution.solved, solution.reason
    assert any("measured again at the answer's predictions: kept" in s for s in solution.log)
    got, matched = solution.model, solution.matched
    assert got is not None and matched is not None
    assert len(matched) > 500
    assert matched.rms(70.0) < 0.35
    assert largest_offset(truth, got, 70.0) < 0.05
