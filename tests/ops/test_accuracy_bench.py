"""bench/accuracy_bench.py's reference WCS: its order must not be a coin flip of its folds."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

BENCH = REPO_ROOT / "bench"


@pytest.fixture(scope="module")
def ab() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("accuracy_bench")


def cubic_field(
    ab: ModuleType, seed: int, *, stars: int = 70, corner_px: float = 0.15, noise_px: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Stars of a 1280 x 960 frame at 30"/px whose camera adds a cubic distortion
    of about ``corner_px`` in the corners, measured with ``noise_px`` per axis."""
    rng = np.random.default_rng(seed)
    width, height = 1280, 960
    x = rng.uniform(0.5, width + 0.5, stars)
    y = rng.uniform(0.5, height + 0.5, stars)
    u, v = (x - 640.5) / 640.0, (y - 480.5) / 640.0
    du, dv = corner_px * (u**3 - u * v**2), corner_px * (v**3 - u * u * v)
    pixel = np.radians(30.0 / 3600.0)
    xi = (x - 640.5 + du + rng.normal(0.0, noise_px, stars)) * pixel
    eta = (y - 480.5 + dv + rng.normal(0.0, noise_px, stars)) * pixel
    sky = ab._deproject(np.column_stack([np.tan(xi), np.tan(eta)]), 80.0, 20.0)
    return x, y, sky[:, 0], sky[:, 1], width, height


def test_the_reference_order_does_not_depend_on_the_order_of_its_stars(ab: ModuleType) -> None:
    # A field where orders 1 and 3 nearly tie with 70 stars: five fixed folds
    # by position in the list (star k in fold k mod 5) chose TAN for 3 of these
    # 10 orderings of the same stars and order 3 for the others.
    x, y, ra, dec, width, height = cubic_field(ab, 4)
    chosen = set()
    for p in range(10):
        k = np.random.default_rng(100 + p).permutation(len(x))
        chosen.add(ab.Reference(x[k], y[k], ra[k], dec[k], width, height).order)
    assert chosen == {3}
