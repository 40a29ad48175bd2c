"""The final fit's radial term (a lens's distortion) against TAN: taken on modest
evidence where the lens bends the frame, not where it does not.

Fields are 512 x 512 frames at 71.6"/px (``cedar_orion_belt``'s) with 100
stars spread uniformly and 0.1 px of centroid noise, seen through TAN plus a
cubic radial term about the centre.
"""

from __future__ import annotations

import numpy as np

from skysolve.engine.fitting import choose_order, fit_wcs
from skysolve.engine.fitting.wcsfit import RADIAL
from skysolve.engine.solving.fastpath.tansip import TanSip, sip_terms

SIZE = 512
GRID = 17


def lens(corner_px: float) -> TanSip:
    """TAN plus a cubic radial term moving the frame's corners ``corner_px`` outwards."""
    s = SIZE / 2.0
    terms = sip_terms(3, start=2)
    # u r^2 and v r^2 in units of s; at a corner u = s and r^2 = 2 s^2.
    k = corner_px / (2.0 * np.sqrt(2.0))
    a = np.array([k if t in ((3, 0), (1, 2)) else 0.0 for t in terms])
    b = np.array([k if t in ((2, 1), (0, 3)) else 0.0 for t in terms])
    scale = 71.6 / 3600.0
    cd = scale * np.array([[-1.0, 0.0], [0.0, 1.0]])
    crpix = ((SIZE + 1) / 2.0, (SIZE + 1) / 2.0)
    return TanSip(crval=(84.0, -1.0), crpix=crpix, cd=cd, order=3, s=s, a=a, b=b)


def stars(truth: TanSip, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(1, SIZE, 100), rng.uniform(1, SIZE, 100)
    ra, dec = truth.pix2world(x, y)
    return x + rng.normal(0, 0.1, 100), y + rng.normal(0, 0.1, 100), ra, dec


def largest_offset(truth: TanSip, fitted: TanSip) -> float:
    """Largest distance (px) between where the truth and the fit put the same sky."""
    gx, gy = np.meshgrid(np.linspace(0.5, SIZE + 0.5, GRID), np.linspace(0.5, SIZE + 0.5, GRID))
    ra, dec = truth.pix2world(gx.ravel(), gy.ravel())
    x, y = fitted.world2pix(ra, dec)
    return float(np.max(np.hypot(x - gx.ravel(), y - gy.ravel())))


def chosen(truth: TanSip, seed: int) -> tuple[int, float]:
    x, y, ra, dec = stars(truth, seed)
    order, _ = choose_order(x, y, ra, dec, width=SIZE, height=SIZE, crval=truth.crval)
    fit = fit_wcs(x, y, ra, dec, width=SIZE, height=SIZE, order=order, crval=truth.crval)
    return order, largest_offset(truth, fit.model)


def test_a_modest_lens_distortion_is_fitted_with_the_radial_term() -> None:
    # 0.5 px at the corners, 5x the centroid noise: the radial term predicts the
    # stars a few per cent better at 1-2 standard errors (cedar_orion_belt: 4.8 %
    # at 1.5).  Held to an arbitrary extra order's 2 standard errors it was
    # taken in 3 of 20 fields, the rest left TAN or order 3, up to 0.32 px off;
    # at 1 standard error in 13, a median 0.12 px off.
    truth = lens(0.5)
    results = [chosen(truth, seed) for seed in range(20)]
    radial = [offset for order, offset in results if order == RADIAL]
    assert len(radial) >= 12, [order for order, _ in results]
    assert float(np.median(radial)) < 0.15
    # One field alone: TAN is 0.29 px off at the corner, the radial term 0.08.
    order, offset = chosen(truth, 8)
    assert order == RADIAL
    assert offset < 0.1


def test_the_radial_term_is_not_taken_without_a_distortion() -> None:
    truth = lens(0.0)
    orders = [chosen(truth, seed)[0] for seed in range(20)]
    assert orders.count(RADIAL) <= 1, orders
    assert all(order == 1 for order in orders if order != RADIAL), orders
