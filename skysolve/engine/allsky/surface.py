"""The smooth surface of a lens model, fitted to what the lens leaves of the stars.

The surface (:class:`~skysolve.engine.allsky.model.LensModel`'s ``surface``)
is linear in its coefficients: it is solved for directly by reweighted least
squares, and each star's leave-one-out residual comes from the same solution
(the hat matrix's diagonal), so a degree can be chosen by cross-validation at
the price of one fit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from skysolve.engine.allsky.model import LensModel, radec_to_xyz
from skysolve.engine.allsky.polynomial import surface_design

#: How far the surface's polynomial runs, in units of the farthest star's distance.
BEYOND = 1.25
#: Steps of the grid of :func:`_empty_places` across the surface's reach.
ANCHOR_STEPS = 12
#: How far (grid steps) a place must be from every star to be held still.
ANCHOR_GAP = 1.5
#: Weight of each such place against a star's 1.
ANCHOR_WEIGHT = 1.0


def fit_surface(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    model: LensModel,
    *,
    weights: np.ndarray | None = None,
    loss_scale: float = 1.0,
) -> LensModel:
    """``model`` with its surface fitted to the stars (:func:`surface_with_checks`)."""
    return surface_with_checks(
        x, y, ra, dec, model, weights=weights, loss_scale=loss_scale, held_out=False
    )[0]


def surface_with_checks(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    model: LensModel,
    *,
    weights: np.ndarray | None = None,
    loss_scale: float = 1.0,
    held_out: bool = True,
) -> tuple[LensModel, np.ndarray]:
    """``model`` with its surface (of its order) fitted to the stars, the rest held.

    Each star's offset in the focal plane, between where the lens without the
    surface puts it and where it is, is regressed on the surface's terms,
    together with no offset at the places within the stars' reach that no
    star is near (:func:`_empty_places`); scipy's ``soft_l1`` loss is
    imitated by rounds of reweighting (a few wrong matches should not bend
    the surface).  A quarter past the farthest star the surface is held
    (``surface_reach``).

    Returns
    -------
    (LensModel, numpy.ndarray)
        The model with the surface, and each star's leave-one-out residual in
        pixels, shape ``(n, 2)``: its residual when the surface is fitted to
        the others (with the final weights), ``e / (1 - h)`` for the hat
        matrix's diagonal ``h``.  Infinite for a star the lens cannot place;
        all infinite when ``held_out`` is false (the hat matrix not computed).
    """
    v = radec_to_xyz(np.asarray(ra, float), np.asarray(dec, float)) @ model.rotation.T
    qx, qy = model.focal_plane(v)
    ox, oy = model.pixel_to_focal(np.asarray(x, float), np.asarray(y, float))
    tx, ty = ox - qx, oy - qy
    ok = np.isfinite(tx) & np.isfinite(ty) & np.isfinite(qx) & np.isfinite(qy)
    # The polynomial runs a quarter past the farthest star (held still there
    # by the empty places), so that the FITS WCS's polynomial, fitted out to
    # 70 degrees, meets a polynomial and not the bend where it stops.
    reach = BEYOND * float(np.max(np.hypot(qx[ok], qy[ok]), initial=0.0))
    # Where no star is (trees, a roof, the corners a fisheye's circle leaves
    # out), a polynomial of degree 7 or 9 would swing by a hundred pixels:
    # points of no displacement there keep it quiet.
    anchors = _empty_places(qx[ok], qy[ok], reach)
    at_x = np.concatenate([qx[ok], anchors[:, 0]])
    at_y = np.concatenate([qy[ok], anchors[:, 1]])
    goal_x = np.concatenate([tx[ok], np.zeros(len(anchors))])
    goal_y = np.concatenate([ty[ok], np.zeros(len(anchors))])
    w = np.ones(len(tx)) if weights is None else np.asarray(weights, dtype=float)
    w = np.concatenate([w[ok], np.full(len(anchors), ANCHOR_WEIGHT)])
    design = surface_design(at_x, at_y, model.surface_order)
    # Columns scaled to one: x^7 and x^2 differ by orders of magnitude.
    size = np.sqrt(np.mean(design**2, axis=0))
    size = np.where(size > 0, size, 1.0)
    a = design / size
    robust = np.ones(len(w))
    coeffs_x: np.ndarray = np.zeros(a.shape[1])
    coeffs_y: np.ndarray = np.zeros(a.shape[1])
    # Reweighted until the few wrong matches stop pulling (from the plain
    # least squares, a star hundreds of pixels off takes several rounds to fade).
    row = np.ones(len(w))
    goals = np.column_stack([goal_x, goal_y])
    for _ in range(6):
        row = np.sqrt(w * robust)
        # Both coordinates share the design and the weights: one solve.
        coeffs = np.linalg.lstsq(a * row[:, None], goals * row[:, None], rcond=None)[0]
        coeffs_x, coeffs_y = coeffs[:, 0], coeffs[:, 1]
        miss = model.focal * np.hypot(goal_x - a @ coeffs_x, goal_y - a @ coeffs_y)
        robust = 1.0 / np.sqrt(1.0 + (miss / loss_scale) ** 2)
    surface = (*(coeffs_x / size).tolist(), *(coeffs_y / size).tolist())
    fitted = replace(model, surface=surface, surface_reach=reach)
    residuals = np.full((len(tx), 2), np.inf)
    if not held_out:
        return fitted, residuals
    q, _ = np.linalg.qr(a * row[:, None])
    leverage = np.minimum(np.sum(q**2, axis=1), 0.999)
    stars = int(ok.sum())
    residuals[ok, 0] = model.focal * (goal_x - a @ coeffs_x)[:stars] / (1.0 - leverage[:stars])
    residuals[ok, 1] = model.focal * (goal_y - a @ coeffs_y)[:stars] / (1.0 - leverage[:stars])
    return fitted, residuals


def _empty_places(x: np.ndarray, y: np.ndarray, reach: float) -> np.ndarray:
    """Points of a grid within ``reach`` of the axis, :data:`ANCHOR_GAP` steps from any star."""
    if len(x) == 0 or reach <= 0.0:
        return np.zeros((0, 2))
    from scipy.spatial import cKDTree

    step = reach / ANCHOR_STEPS
    line = np.arange(-ANCHOR_STEPS, ANCHOR_STEPS + 1) * step
    gx, gy = (g.ravel() for g in np.meshgrid(line, line))
    inside = np.hypot(gx, gy) <= reach
    points = np.column_stack([gx[inside], gy[inside]])
    far = cKDTree(np.column_stack([x, y])).query(points)[0] > ANCHOR_GAP * step
    return points[far]
