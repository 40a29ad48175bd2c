"""TAN-SIP least squares with the covariance of the fit, and the choice of its order.

The model is the fast path's :class:`~skysolve.engine.solving.fastpath.tansip.TanSip`
(CRPIX at the image centre, the tangent point moved to the sky position of
CRPIX): a polynomial of total degree ``order`` in the pixel offsets maps to
the tangent plane, its linear part is the CD matrix and the rest, divided by
CD, the SIP ``A``/``B`` polynomials.  Because the fit is linear in the
tangent plane, the covariance of its coefficients is exact for independent
centroid errors of equal size, and the uncertainties of the centre, scale and
rotation follow from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from skysolve.engine.solving.fastpath.tansip import (
    TanSip,
    gnomonic,
    radial_constraint,
    sip_design,
    sip_terms,
    tan_sip_least_squares,
)

#: Highest SIP order tried when the order is chosen from the data.
MAX_ORDER = 5
#: A polynomial needs at least this many stars per coefficient (per axis) to be tried.
STARS_PER_TERM = 4
#: A higher order is taken when it lowers the cross-validated error by this share...
ORDER_GAIN = 0.03
#: ... or, by less, when star by star it predicts better by this many standard
#: errors of the mean difference (hundreds of stars pin a 1 % gain down).
ORDER_SIGNIFICANCE = 2.0
#: The "order" of TAN plus a cubic radial term about the frame's centre: an
#: order-3 SIP of 5 coefficients per axis (``radial_constraint``).  A wide
#: lens bends every edge alike; the term fits that with 20 stars where a free
#: order 3 needs 40, and a quadratic fitted to one side gets the other wrong
#: (cedar_virgo: TAN 1.89 px leave-one-out on 27 stars, order 2 2.25, this 0.50).
#: Tried after the plain orders, and taken only where it predicts the stars
#: better by ``ORDER_GAIN`` and by ``RADIAL_SIGNIFICANCE`` standard errors.
RADIAL = -3
#: Its coefficients per axis.
RADIAL_TERMS = 5
#: The radial term's bar in standard errors, lower than ``ORDER_SIGNIFICANCE``:
#: it is the distortion every camera's lens is expected to have, not an
#: arbitrary extra order (cedar_orion_belt: 4.8 % better at 1.5 standard
#: errors on 108 stars; the bench's reference, on its own, takes the same term).
RADIAL_SIGNIFICANCE = 1.0


@dataclass(frozen=True)
class WcsFit:
    """A fitted WCS and what the fit says about its precision.

    ``sigma_px``: the 1-sigma scatter of one star's position about the model
    (pixels, per axis, degrees of freedom counted).  The ``*_error`` fields are
    1-sigma uncertainties of the field centre (``ra_error`` on the sky, i.e.
    already times cos Dec; arcseconds), of the pixel scale (arcsec/pixel) and of
    the rotation (degrees), from the covariance of the fit.
    """

    model: TanSip
    residual_x: np.ndarray
    residual_y: np.ndarray
    sigma_px: float
    ra_error: float
    dec_error: float
    scale: float
    scale_error: float
    rotation_error: float

    @property
    def rms_px(self) -> float:
        """RMS of the radial residuals, pixels."""
        if len(self.residual_x) == 0:
            return math.nan
        return float(np.sqrt(np.mean(self.residual_x**2 + self.residual_y**2)))


@dataclass(frozen=True)
class Pairs:
    """Matched stars in a frame and what every fit of them shares.

    ``x``, ``y``: 1-based pixel positions of the sources; ``ra``, ``dec``:
    their catalogue stars (degrees); ``width``, ``height``: the image;
    ``crval``: the tangent point the fits start from.  ``plane`` holds the
    stars' tangent-plane positions about ``crval`` and ``full_design`` the
    design matrix of their pixel offsets from the frame's centre at the highest
    order any fit of them takes (a lower order's terms are its first
    columns): the order's choice, the error model, the fit and its
    covariance, and the stars kept after clipping (:meth:`rows`), take them
    from here instead of each projecting and expanding the same stars again.
    Build with :meth:`of`.
    """

    x: np.ndarray
    y: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    width: int
    height: int
    crval: tuple[float, float]
    plane: np.ndarray
    full_design: np.ndarray

    @classmethod
    def of(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        ra: np.ndarray,
        dec: np.ndarray,
        *,
        width: int,
        height: int,
        crval: tuple[float, float],
        order: int,
    ) -> Pairs:
        """The pairs, with ``full_design`` up to ``order`` (``RADIAL``: 3), the highest
        any fit of them will take."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        ra, dec = np.asarray(ra, float), np.asarray(dec, float)
        plane = gnomonic(ra, dec, *crval)
        s = max(width, height) / 2.0
        u, v = x - (width + 1) / 2.0, y - (height + 1) / 2.0
        full_design = sip_design(u, v, sip_terms(_polynomial_order(order)), s)
        return cls(x, y, ra, dec, width, height, crval, plane, full_design)

    @property
    def s(self) -> float:
        """The design's unit, pixels: half the frame's larger side."""
        return max(self.width, self.height) / 2.0

    def rows(self, keep: np.ndarray) -> Pairs:
        """The pairs of rows ``keep``."""
        return Pairs(
            self.x[keep], self.y[keep], self.ra[keep], self.dec[keep], self.width, self.height,
            self.crval, self.plane[keep], self.full_design[keep],
        )  # fmt: skip

    def design(self, order: int) -> np.ndarray:
        """The fit's design matrix at ``order`` (``RADIAL`` included)."""
        p = len(sip_terms(_polynomial_order(order)))
        if p > self.full_design.shape[1]:
            u, v = self.x - (self.width + 1) / 2.0, self.y - (self.height + 1) / 2.0
            return _design(u, v, order, self.s)
        design = np.ascontiguousarray(self.full_design[:, :p])
        return design @ radial_constraint() if order == RADIAL else design


def fit_wcs(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    *,
    width: int,
    height: int,
    order: int,
    crval: tuple[float, float],
    weights: np.ndarray | None = None,
) -> WcsFit:
    """Least-squares TAN-SIP WCS of ``order`` through matched stars, with its covariance.

    Parameters
    ----------
    x, y : ndarray
        1-based pixel positions of the matched sources.
    ra, dec : ndarray
        Their catalogue positions, degrees.
    width, height : int
        Image size, pixels.
    order : int
        SIP order; 1 (or less) is a pure TAN WCS; ``RADIAL`` TAN plus a cubic
        radial term.
    crval : (float, float)
        Starting tangent point, degrees (the fit moves it to the centre).
    weights : ndarray, optional
        Each star's weight, the inverse of its expected centroid variance in
        units of a weight-1 star's
        (:func:`~skysolve.engine.fitting.weights.centroid_weights`); None: all
        alike.  ``sigma_px`` is then a weight-1 star's scatter, and the
        uncertainties follow from the weighted covariance.

    Returns
    -------
    WcsFit
    """
    pairs = Pairs.of(x, y, ra, dec, width=width, height=height, crval=crval, order=order)
    return fit_wcs_of(pairs, order, weights=weights)


def fit_wcs_of(pairs: Pairs, order: int, *, weights: np.ndarray | None = None) -> WcsFit:
    """:func:`fit_wcs` of matched stars given as :class:`Pairs`."""
    radial = order == RADIAL
    order = RADIAL if radial else max(1, int(order))
    w = np.ones(len(pairs.x)) if weights is None else np.asarray(weights, float)
    design = pairs.design(order)
    # The least squares at the final tangent point: the model's, whose
    # coefficients and projected stars give the covariance and the residuals.
    tangent = tan_sip_least_squares(
        design, pairs.ra, pairs.dec, width=pairs.width, height=pairs.height, order=order,
        crval=pairs.crval, radial=radial, weights=weights, plane=pairs.plane,
    )  # fmt: skip
    model, plane, coef = tangent.model, tangent.plane, tangent.coef
    px, py = model.plane2pix(plane)
    rx, ry = px - pairs.x, py - pairs.y
    # The covariance of the tangent-plane coefficients at the final tangent point.
    resid = plane - design @ coef
    n, p = design.shape
    dof = max(1, n - p)
    # Per axis: xi (East) and eta (North) may scatter differently.
    var_xi = float(np.sum(w * resid[:, 0] ** 2)) / dof  # degrees^2
    var_eta = float(np.sum(w * resid[:, 1] ** 2)) / dof
    normal = design.T @ (design * w[:, None])
    try:
        base = np.linalg.inv(normal)
    except np.linalg.LinAlgError:
        base = np.linalg.pinv(normal)
    cov_xi, cov_eta = var_xi * base, var_eta * base
    if weights is not None:
        # The weights are a model (capped for the brighter stars, fitted to few
        # residuals): the coefficients' covariance from the residuals themselves
        # (the sandwich estimator, each residual scaled by its leverage), which
        # holds whether or not the weights are the true inverse variances.
        hat = np.minimum(np.einsum("ij,jk,ik->i", design, base, design) * w, 0.999)
        scaled = (w / (1.0 - hat))[:, None] * resid
        cov_xi = base @ (design.T @ (design * scaled[:, :1] ** 2)) @ base
        cov_eta = base @ (design.T @ (design * scaled[:, 1:] ** 2)) @ base
    ra_err = math.sqrt(max(0.0, cov_xi[0, 0])) * 3600.0
    dec_err = math.sqrt(max(0.0, cov_eta[0, 0])) * 3600.0
    # Scale and rotation are functions of the four linear coefficients; the xi
    # and eta coefficients are independent, each with its axis's variance.
    lin = np.array([coef[1, 0], coef[2, 0], coef[1, 1], coef[2, 1]])
    cov = np.zeros((4, 4))
    cov[:2, :2] = cov_xi[1:3, 1:3]
    cov[2:, 2:] = cov_eta[1:3, 1:3]
    scale = _scale(lin, model.s)
    jac_scale = gradient(lambda q: _scale(q, model.s), lin)
    jac_rot = gradient(rotation, lin)
    scale_err = math.sqrt(max(0.0, float(jac_scale @ cov @ jac_scale)))
    rot_err = math.sqrt(max(0.0, float(jac_rot @ cov @ jac_rot)))
    pixel_deg = scale / 3600.0
    return WcsFit(
        model=model,
        residual_x=rx,
        residual_y=ry,
        sigma_px=math.sqrt((var_xi + var_eta) / 2.0) / pixel_deg if pixel_deg > 0 else math.nan,
        ra_error=ra_err,
        dec_error=dec_err,
        scale=scale,
        scale_error=scale_err,
        rotation_error=rot_err,
    )


def _scale(lin: np.ndarray, s: float) -> float:
    """arcsec/pixel of the linear coefficients (xi_u, xi_v, eta_u, eta_v) over ``s`` pixels."""
    det = (lin[0] * lin[3] - lin[1] * lin[2]) / (s * s)
    return 3600.0 * math.sqrt(abs(det))


def rotation(lin: np.ndarray) -> float:
    """Position angle (degrees) of a linear part (xi_u, xi_v, eta_u, eta_v: a CD
    matrix's entries, row by row), as :class:`Calibration` defines it."""
    parity = 1.0 if lin[0] * lin[3] - lin[1] * lin[2] >= 0 else -1.0
    t = parity * lin[0] + lin[3]
    a = parity * lin[2] - lin[1]
    return -math.degrees(math.atan2(a, t))


def gradient(f: Callable[[np.ndarray], float], at: np.ndarray) -> np.ndarray:
    """Central-difference gradient of a scalar function of a few variables."""
    grad = np.zeros(len(at))
    for k in range(len(at)):
        h = 1e-6 * max(abs(float(at[k])), 1e-12)
        up, down = at.copy(), at.copy()
        up[k] += h
        down[k] -= h
        grad[k] = (f(up) - f(down)) / (2 * h)
    return grad


def usable_order(n_stars: int, wanted: int) -> int:
    """The highest order up to ``wanted`` that ``n_stars`` stars can support
    (``RADIAL`` or, with fewer stars than it needs, TAN)."""
    if wanted == RADIAL:
        return RADIAL if n_stars >= STARS_PER_TERM * RADIAL_TERMS else 1
    order = max(1, wanted)
    while order > 1 and n_stars < STARS_PER_TERM * len(sip_terms(order)):
        order -= 1
    return order


def choose_order(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    *,
    width: int,
    height: int,
    crval: tuple[float, float],
    max_order: int = MAX_ORDER,
    weights: np.ndarray | None = None,
) -> tuple[int, dict[int, float]]:
    """The SIP order the stars support, by leave-one-out cross-validation.

    Each order from 1 (TAN) to the highest the number of stars allows is scored
    by how well it predicts each star from all the others; the lowest order
    whose cross-validated RMS is within ``ORDER_GAIN`` of the best wins, unless
    the best predicts the stars better one by one beyond
    ``ORDER_SIGNIFICANCE`` standard errors (many stars resolve a small gain).
    Then ``RADIAL`` replaces that order where it predicts the stars better by
    both ``ORDER_GAIN`` and ``RADIAL_SIGNIFICANCE`` standard errors.  With
    ``weights`` the fits are weighted and each star's error counts by its weight.

    Returns
    -------
    order : int
        A SIP order, or ``RADIAL``.
    scores : dict
        Cross-validated RMS (pixels, radial) by order.
    """
    pairs = Pairs.of(
        x, y, ra, dec, width=width, height=height, crval=crval,
        order=highest_order(len(x), max_order),
    )  # fmt: skip
    return choose_order_of(pairs, max_order=max_order, weights=weights)


def highest_order(n_stars: int, max_order: int) -> int:
    """The highest polynomial order :func:`choose_order` may fit to ``n_stars`` stars
    (``RADIAL``'s 3 included): how far :meth:`Pairs.of` expands their pixels."""
    top = usable_order(n_stars, max_order)
    if usable_order(n_stars, RADIAL) == RADIAL and max_order >= 3:
        return max(top, 3)
    return top


def choose_order_of(
    pairs: Pairs, *, max_order: int = MAX_ORDER, weights: np.ndarray | None = None
) -> tuple[int, dict[int, float]]:
    """:func:`choose_order` of matched stars given as :class:`Pairs`."""
    top = usable_order(len(pairs.x), max_order)
    # One design matrix at the highest order: the terms of a lower order are its
    # first columns.  Leave-one-out residuals come from the hat matrix's
    # diagonal, r / (1 - h): exact, and the same on every run.
    plane, design, s = pairs.plane, pairs.design(top), pairs.s
    w = _unit_weights(len(pairs.x), weights)
    scores: dict[int, float] = {}
    squared: dict[int, np.ndarray] = {}
    pixel_deg = math.nan
    # The first p columns of Q span the first p columns of the design: one QR
    # serves every order.  Weighted: the QR of the rows times sqrt(weight),
    # whose hat diagonal is the weighted fit's.
    root = np.sqrt(w)[:, None]
    q, r = np.linalg.qr(design * root)
    qt_plane = q.T @ (plane * root)
    for order in range(1, top + 1):
        p = len(sip_terms(order))
        coef = np.linalg.solve(r[:p, :p], qt_plane[:p])
        hat = np.minimum(np.sum(q[:, :p] ** 2, axis=1), 0.999)
        loo = (plane - design[:, :p] @ coef) / (1.0 - hat)[:, None]
        if order == 1:
            pixel_deg = _pixel_degrees(coef, s)
        squared[order] = w * np.sum(loo**2, axis=1) / pixel_deg**2
        scores[order] = float(np.sqrt(np.mean(squared[order])))
    best = min(scores, key=lambda k: (scores[k], k))
    chosen = best
    for order in sorted(scores):
        if order < best and scores[order] <= scores[best] * (1.0 + ORDER_GAIN):
            if not _significantly_worse(squared[order], squared[best]):
                chosen = order
                break
    if usable_order(len(pairs.x), RADIAL) == RADIAL and max_order >= 3:
        loo = loo_errors(pairs, RADIAL, weights=weights)
        scores[RADIAL] = float(np.sqrt(np.mean(w * loo**2)))
        if scores[RADIAL] * (1.0 + ORDER_GAIN) < scores[chosen]:
            if _significantly_worse(squared[chosen], w * loo**2, RADIAL_SIGNIFICANCE):
                return RADIAL, scores
    return chosen, scores


def loo_errors(pairs: Pairs, order: int, *, weights: np.ndarray | None = None) -> np.ndarray:
    """Each star's leave-one-out error (pixels, radial) at ``order``: how far the
    fit through all the other stars (weighted by ``weights``) puts it."""
    plane, design = pairs.plane, pairs.design(order)
    root = np.sqrt(_unit_weights(len(pairs.x), weights))[:, None]
    q, r = np.linalg.qr(design * root)
    coef = np.linalg.solve(r, q.T @ (plane * root))
    hat = np.minimum(np.sum(q**2, axis=1), 0.999)
    loo = (plane - design @ coef) / (1.0 - hat)[:, None]
    pixel_deg = _pixel_degrees(coef, pairs.s)
    return np.sqrt(np.sum(loo**2, axis=1)) / pixel_deg


def squared_residuals(pairs: Pairs, order: int) -> np.ndarray:
    """Each star's squared radial residual (px^2) from the unweighted least squares
    at ``order`` in the tangent plane about ``pairs.crval``: :func:`fit_wcs`'s
    residuals without building its WCS (no inverse polynomials, no new tangent point)."""
    plane, design = pairs.plane, pairs.design(order)
    coef, *_ = np.linalg.lstsq(design, plane, rcond=None)
    resid = plane - design @ coef
    pixel_deg = _pixel_degrees(coef, pairs.s)
    return np.sum(resid**2, axis=1) / pixel_deg**2


def _unit_weights(n: int, weights: np.ndarray | None) -> np.ndarray:
    """``weights`` scaled to a mean of 1 (all ones when None)."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, float)
    return w / float(np.mean(w))


def _significantly_worse(
    low: np.ndarray, high: np.ndarray, sigmas: float = ORDER_SIGNIFICANCE
) -> bool:
    """Whether squared leave-one-out errors ``low`` exceed ``high``, star by star,
    by more than ``sigmas`` standard errors of their mean difference."""
    diff = low - high
    if len(diff) < 2:
        return False
    spread = float(np.std(diff, ddof=1)) / math.sqrt(len(diff))
    return float(np.mean(diff)) > sigmas * spread


def design_matrix(u: np.ndarray, v: np.ndarray, order: int, s: float) -> np.ndarray:
    """The fit's design matrix at ``order`` of pixel offsets (u, v) from the
    frame's centre, ``s`` pixels its unit."""
    return _design(u, v, order, s)


def _design(u: np.ndarray, v: np.ndarray, order: int, s: float) -> np.ndarray:
    """The design matrix at ``order`` (``RADIAL`` included) of pixel offsets (u, v)."""
    if order == RADIAL:
        return sip_design(u, v, sip_terms(3), s) @ radial_constraint()
    return sip_design(u, v, sip_terms(max(1, order)), s)


def _polynomial_order(order: int) -> int:
    """The order of the polynomial whose terms ``order`` (``RADIAL`` included) takes."""
    return 3 if order == RADIAL else max(1, order)


def _pixel_degrees(coef: np.ndarray, s: float) -> float:
    """One pixel in degrees of the tangent plane, from a fit's linear terms
    (rows 1 and 2 of ``coef``) in the design's units scaled by ``s``."""
    return math.sqrt(abs(coef[1, 0] * coef[2, 1] - coef[2, 0] * coef[1, 1])) / s
