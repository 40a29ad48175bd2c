"""Wide-angle fields through the fast path: the blind ladder's wide guesses."""

import math
from pathlib import Path

import numpy as np
import pytest

from skysolve.engine.extraction import SOLVER_UNIFORMIZE_CELLS, extract_bright_sources, uniformize
from skysolve.engine.solving.base import SolveConstraints
from skysolve.engine.solving.fastpath import PatternHashSolver, default_db_path
from skysolve.engine.solving.fastpath.database import DatabaseInfo
from skysolve.engine.solving.fastpath.guesses import (
    LADDER_PATTERNS,
    WIDE_PATTERNS,
    WIDE_SPACING,
    fov_guesses,
    wide_ladder,
)
from testfields.allsky import wide_frame

WIDTH, HEIGHT = 800, 600


def bend(fov: float) -> float:
    return math.tan(math.radians(fov) / 2.0) ** 2


def test_the_ladder_keeps_its_guesses_and_leaves_no_wide_field_far_from_one() -> None:
    ladder = [4.8, 14.4, 43.2]
    wide = wide_ladder(ladder, 4.0, 70.0)
    assert [g for g in wide if g in ladder] == ladder  # same guesses, same order
    assert wide == sorted(wide)
    for fov in np.linspace(20.0, 70.0, 101):
        nearest = min(abs(bend(fov) - bend(g)) for g in wide)
        assert nearest <= WIDE_SPACING * 0.5 + 1e-9 or bend(fov) - bend(wide[-1]) <= WIDE_SPACING
    # Narrow databases get nothing new.
    assert wide_ladder([1.2, 3.6, 10.0], 1.0, 10.0) == [1.2, 3.6, 10.0]


def test_every_blind_guess_checks_a_bounded_number_of_patterns() -> None:
    """A miss costs a few milliseconds a guess, not tetra3rs's whole C(24, 4)."""
    info = DatabaseInfo(Path("db"), 4.0, 70.0, 1, 1, 10.0, 1, "gaia", 1)
    guesses = fov_guesses(info, SolveConstraints(), WIDTH)
    budgets = {round(fov, 6): budget for fov, _, budget in guesses}
    assert [budgets[fov] for fov in (4.8, 14.4, 43.2)] == [LADDER_PATTERNS] * 3
    assert all(budget in (LADDER_PATTERNS, WIDE_PATTERNS) for budget in budgets.values())
    assert all(error is None for _, error, _ in guesses)


@pytest.mark.skipif(not default_db_path().is_file(), reason="the fast-path database is not built")
@pytest.mark.parametrize(
    ("fov", "distortion", "ra", "dec", "roll"),
    [
        (66.0, -0.03, 100.0, 20.0, 30.0),  # a 24 mm lens on a full-frame camera, 3 % barrel
        (60.0, 0.0, 250.0, -40.0, 200.0),
    ],
)
def test_it_finds_a_wide_distorted_field_blind(
    tmp_path: Path, fov: float, distortion: float, ra: float, dec: float, roll: float
) -> None:
    # The ladder's old guesses (4.8, 14.4 and 43.2 degrees) match neither.
    lens, image = wide_frame(fov, WIDTH, HEIGHT, distortion, ra=ra, dec=dec, roll=roll)
    sources = uniformize(extract_bright_sources(image, count=300), cells=SOLVER_UNIFORMIZE_CELLS)
    out = PatternHashSolver(default_db_path()).solve(
        sources, SolveConstraints(tweak_order=3), tmp_path, timeout=30
    )
    assert out.solved, out.log
    model = out.wcs_model
    assert model is not None
    # The known lens, over the whole frame (the model's pixels are 0-based).
    gx, gy = np.meshgrid(np.linspace(0, WIDTH - 1, 9), np.linspace(0, HEIGHT - 1, 7))
    sky_ra, sky_dec = lens.pixel_to_world(gx.ravel(), gy.ravel())
    px, py = model.world2pix(sky_ra, sky_dec)
    assert float(np.max(np.hypot(px - 1 - gx.ravel(), py - 1 - gy.ravel()))) < 1.5
