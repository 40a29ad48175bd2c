"""What the final fit computes once and shares (skysolve.engine.fitting.wcsfit.Pairs,
tansip.tan_sip_least_squares), and its shortcuts (a star window's median): the
same numbers, to the bit, as computing them again for each fit, or in general.

Seeded stars through a known TAN-SIP camera, with centroid noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.engine.fitting.quality import _median
from skysolve.engine.fitting.wcsfit import (
    RADIAL,
    Pairs,
    WcsFit,
    choose_order,
    choose_order_of,
    design_matrix,
    fit_wcs,
    fit_wcs_of,
    loo_errors,
    squared_residuals,
)
from skysolve.engine.solving.fastpath import tansip
from skysolve.engine.solving.fastpath.tansip import (
    fit_tan_sip,
    gnomonic,
    sip_design,
    sip_terms,
    tan_sip_least_squares,
)
from tests.engine.test_fitting import camera

WIDTH, HEIGHT = 1600, 1200


def _stars(n: int, seed: int) -> tuple[np.ndarray, ...]:
    truth = camera(83.0, -5.0, 8.0, 3, seed=seed)
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(1, WIDTH, n), rng.uniform(1, HEIGHT, n)
    ra, dec = truth.pix2world(x, y)
    x = x + rng.normal(0.0, 0.3, n)
    y = y + rng.normal(0.0, 0.3, n)
    weights = np.minimum(1.0, rng.uniform(0.2, 2.0, n))
    # The fits start a little off the truth's tangent point, as the refit's do.
    return x, y, ra, dec, weights, np.array([83.01, -5.02])


def _same_fit(a: WcsFit, b: WcsFit) -> None:
    assert a.model.crval == b.model.crval
    for name in ("cd", "a", "b", "ap", "bp"):
        left, right = getattr(a.model, name), getattr(b.model, name)
        assert (left is None and right is None) or np.array_equal(left, right), name
    assert np.array_equal(a.residual_x, b.residual_x)
    assert np.array_equal(a.residual_y, b.residual_y)
    for name in ("sigma_px", "ra_error", "dec_error", "scale", "scale_error", "rotation_error"):
        assert getattr(a, name) == getattr(b, name), name


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, RADIAL])
def test_it_gives_the_kept_stars_the_design_and_plane_of_their_own(order: int) -> None:
    x, y, ra, dec, _, centre = _stars(300, seed=1)
    crval = (float(centre[0]), float(centre[1]))
    keep = np.flatnonzero(np.random.default_rng(2).random(300) < 0.7)
    shared = Pairs.of(x, y, ra, dec, width=WIDTH, height=HEIGHT, crval=crval, order=5).rows(keep)
    own = Pairs.of(
        x[keep], y[keep], ra[keep], dec[keep], width=WIDTH, height=HEIGHT, crval=crval, order=order
    )
    fresh = design_matrix(x[keep] - 800.5, y[keep] - 600.5, order, 800.0)
    assert np.array_equal(shared.design(order), fresh)
    assert np.array_equal(own.design(order), fresh)
    assert np.array_equal(shared.plane, gnomonic(ra[keep], dec[keep], *crval))
    # Asked beyond the order it was expanded to, it expands afresh.
    low = Pairs.of(x, y, ra, dec, width=WIDTH, height=HEIGHT, crval=crval, order=1)
    assert np.array_equal(low.design(order), design_matrix(x - 800.5, y - 600.5, order, 800.0))


@pytest.mark.parametrize("order", [1, 2, 3, RADIAL])
def test_it_fits_the_kept_stars_as_from_their_arrays(order: int) -> None:
    x, y, ra, dec, weights, centre = _stars(300, seed=3)
    crval = (float(centre[0]), float(centre[1]))
    keep = np.flatnonzero(np.random.default_rng(4).random(300) < 0.8)
    pairs = Pairs.of(x, y, ra, dec, width=WIDTH, height=HEIGHT, crval=crval, order=5).rows(keep)
    kept = x[keep], y[keep], ra[keep], dec[keep]
    for w in (None, weights[keep]):
        _same_fit(
            fit_wcs_of(pairs, order, weights=w),
            fit_wcs(*kept, width=WIDTH, height=HEIGHT, order=order, crval=crval, weights=w),
        )
    alone = Pairs.of(*kept, width=WIDTH, height=HEIGHT, crval=crval, order=order)
    assert np.array_equal(squared_residuals(pairs, order), squared_residuals(alone, order))
    assert np.array_equal(
        loo_errors(pairs, order, weights=weights[keep]),
        loo_errors(alone, order, weights=weights[keep]),
    )
    assert choose_order_of(pairs, weights=weights[keep]) == choose_order(
        *kept, width=WIDTH, height=HEIGHT, crval=crval, weights=weights[keep]
    )


def test_weights_all_one_choose_the_unweighted_order_to_the_bit() -> None:
    # The refit skips the weighted choice when every weight is 1: it must be the same.
    x, y, ra, dec, _, _ = _stars(200, seed=5)
    pairs = Pairs.of(x, y, ra, dec, width=WIDTH, height=HEIGHT, crval=(83.01, -5.02), order=5)
    order, scores = choose_order_of(pairs)
    assert len(scores) > 2
    assert choose_order_of(pairs, weights=np.ones(200)) == (order, scores)


@pytest.mark.parametrize("radial", [False, True])
@pytest.mark.parametrize("steps", [tansip.TANGENT_STEPS, 1])
def test_the_fit_returns_its_least_squares_at_its_tangent_point(
    radial: bool, steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In one step from a point 6 degrees off the tangent point has not settled:
    # the least squares returned is then one at the model's own point, not the last step's.
    monkeypatch.setattr(tansip, "TANGENT_STEPS", steps)
    x, y, ra, dec, weights, _ = _stars(150, seed=6)
    crval = (89.0, -11.0)
    order = 3
    s = max(WIDTH, HEIGHT) / 2.0
    design = sip_design(x - 800.5, y - 600.5, sip_terms(order), s)
    if radial:
        design = design_matrix(x - 800.5, y - 600.5, RADIAL, s)
    fit = tan_sip_least_squares(
        design, ra, dec, width=WIDTH, height=HEIGHT, order=order, crval=crval, radial=radial,
        weights=weights,
    )  # fmt: skip
    plane = gnomonic(ra, dec, *fit.model.crval)
    root = np.sqrt(weights)[:, None]
    coef, *_ = np.linalg.lstsq(design * root, plane * root, rcond=None)
    assert np.array_equal(fit.plane, plane)
    assert np.array_equal(fit.coef, coef)
    model = fit_tan_sip(
        x, y, ra, dec, width=WIDTH, height=HEIGHT, order=order, crval=crval, radial=radial,
        weights=weights,
    )  # fmt: skip
    assert model.crval == fit.model.crval
    assert model.ap is not None and fit.model.ap is not None
    assert np.array_equal(model.ap, fit.model.ap)


def test_the_design_s_powers_are_the_powers() -> None:
    rng = np.random.default_rng(7)
    u, v = rng.uniform(-900, 900, 500), rng.uniform(-700, 700, 500)
    terms = sip_terms(5)
    design = sip_design(u, v, terms, 800.0)
    un, vn = u / 800.0, v / 800.0
    exact = np.column_stack([un**i * vn**j for i, j in terms])
    np.testing.assert_allclose(design, exact, rtol=1e-14, atol=0.0)


def test_a_window_s_median_is_numpy_s() -> None:
    rng = np.random.default_rng(8)
    for n in [1, 2, 3, 4, 17, 50, 51]:
        for with_nan in (False, True):
            values = rng.normal(size=n)
            if with_nan:
                values[rng.integers(n)] = np.nan
            expected = np.median(values)
            got = _median(values.copy())
            assert got == expected or (np.isnan(expected) and np.isnan(got)), (n, with_nan)
