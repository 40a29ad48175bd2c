"""The final fit ends at the same answer from any verified start (issue 17).

A solver's WCS can be right only where its index's stars were: astrometry.net's
order-2 tweak through one index's 37 stars in a corner of the horizon picture
(``test_hard_cases``) was 6 px off at the centre and 54 px at the far corner.
The final fit must reach the answer a good start reaches.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.engine.fitting.final import final_fit
from skysolve.engine.indexes.catalog import default_catalog
from skysolve.engine.solving.fastpath.tansip import TanSip, fit_tan_sip
from tests.engine.test_fitting import camera, largest_offset, observe

WIDTH, HEIGHT = 800, 600


def corner_start(truth: TanSip, anchor: tuple[float, float], far_px: float) -> TanSip:
    """An order-2 WCS right at ``anchor`` and ``far_px`` off at the farthest corner,
    growing with the square of the distance: the way a tweak through the stars
    of one corner extrapolates."""
    grid = np.meshgrid(np.linspace(0.5, WIDTH + 0.5, 17), np.linspace(0.5, HEIGHT + 0.5, 13))
    gx, gy = grid[0].ravel(), grid[1].ravel()
    corners = [(cx, cy) for cx in (0.5, WIDTH + 0.5) for cy in (0.5, HEIGHT + 0.5)]
    far = max(math.hypot(cx - anchor[0], cy - anchor[1]) for cx, cy in corners)
    grow = ((gx - anchor[0]) ** 2 + (gy - anchor[1]) ** 2) / far**2
    ra, dec = truth.pix2world(gx + far_px * grow, gy + 0.2 * far_px * grow)
    return fit_tan_sip(gx, gy, ra, dec, width=WIDTH, height=HEIGHT, order=2, crval=truth.crval)


@pytest.mark.parametrize("seed", [2, 6])
def test_a_start_right_only_in_one_corner_ends_where_a_good_start_does(seed: int) -> None:
    # A 30-degree frame whose lower 35 % is foreground, the 300 brightest
    # sources.  The rings grow from the frame's centre, where this start is
    # 6 px off: none holds a fit until the whole frame, whose chance pairs on
    # the far side bent an order-4 fit (152 and 131 stars, thousands of pixels
    # off at a corner) before the growth from the start's own stars was added;
    # the good start matches all 300.
    truth = camera(250.0, -30.0, 30.0, 2, width=WIDTH, height=HEIGHT, seed=seed, rotation=33.0,
                   corner_px=0.5)  # fmt: skip
    field = observe(truth, width=WIDTH, height=HEIGHT, noise=0.1, sources=700, seed=seed)
    sky = field.y < 0.65 * HEIGHT
    x, y, flux = field.x[sky][:300], field.y[sky][:300], field.flux[sky][:300]
    poor = corner_start(truth, (750.0, 150.0), 55.0)
    assert largest_offset(truth, poor, WIDTH, HEIGHT) > 50.0
    centre = np.array([(WIDTH + 1) / 2.0]), np.array([(HEIGHT + 1) / 2.0])
    cx, cy = truth.world2pix(*poor.pix2world(*centre))
    assert math.hypot(cx[0] - centre[0][0], cy[0] - centre[1][0]) > 5.0  # beyond the rings' radius
    stars = default_catalog()
    good, from_poor = (
        final_fit(
            x, y, flux, width=WIDTH, height=HEIGHT, start=s, stars=stars, band="VT", order=None
        )
        for s in (truth, poor)
    )
    assert good.model is not None and from_poor.model is not None
    assert from_poor.quality["matched_stars"] == good.quality["matched_stars"] >= 290
    assert largest_offset(good.model, from_poor.model, WIDTH, HEIGHT) < 0.01
    assert largest_offset(truth, from_poor.model, WIDTH, HEIGHT) < 0.3
