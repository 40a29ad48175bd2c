"""Fitting a lens model to matched stars: pixel positions against catalogue positions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from skysolve.engine.allsky.model import LensModel, radec_to_xyz
from skysolve.engine.allsky.polynomial import surface_terms
from skysolve.engine.allsky.surface import fit_surface, surface_with_checks
from skysolve.errors import BadInputError

#: The model's free parameters, in the order the fit uses them.
PARAMETERS: tuple[str, ...] = (
    "rotation", "center", "focal", "k1", "k2", "shear", "decentring", "surface",
)  # fmt: skip
#: Unknowns each free parameter adds (the surface's: :func:`surface_size`).
PARAMETER_SIZES: dict[str, int] = {
    "rotation": 3, "center": 2, "focal": 1, "k1": 1, "k2": 1, "shear": 2, "decentring": 2,
}  # fmt: skip
#: Degrees of the smooth surface :func:`fit_lens_chosen` tries, lowest first.
SURFACE_ORDERS: tuple[int, ...] = (3, 5, 7, 9, 11)
#: Share of the best cross-validated RMS so far a surface must get under to be kept.
SURFACE_GAIN = 0.98


def surface_size(order: int) -> int:
    """Unknowns of a surface of degree ``order`` (both coordinates)."""
    return 2 * len(surface_terms(order))


def unknowns(free: Sequence[str], model: LensModel) -> int:
    """Unknowns of the parameters ``free`` of ``model`` (its surface at its own order)."""
    return sum(
        surface_size(model.surface_order) if p == "surface" else PARAMETER_SIZES[p] for p in free
    )


@dataclass(frozen=True)
class LensFit:
    """A fitted model and how well it explains the stars it was fitted to.

    ``residuals`` are pixel offsets (observed minus model), shape ``(n, 2)``;
    ``free`` the parameters that were fitted.
    """

    model: LensModel
    residuals: np.ndarray
    free: tuple[str, ...] = ()

    @property
    def rms(self) -> float:
        """Root mean square of the residual lengths, pixels."""
        if len(self.residuals) == 0:
            return math.nan
        return float(np.sqrt(np.mean(np.sum(self.residuals**2, axis=1))))


def fit_lens(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    start: LensModel,
    *,
    free: Sequence[str] = ("rotation", "center", "focal"),
    weights: np.ndarray | None = None,
    loss: str = "soft_l1",
    loss_scale: float = 1.0,
) -> LensFit:
    """Least-squares fit of a lens model to matched stars.

    Parameters
    ----------
    x, y : array_like
        0-based pixel positions of the stars in the image.
    ra, dec : array_like
        Their catalogue positions, degrees.
    start : LensModel
        Starting model; its projection and parity stay fixed.
    free : sequence of str
        Which of :data:`PARAMETERS` to fit; the others keep their start values.
    weights : array_like, optional
        Per-star weights (default all 1).
    loss, loss_scale
        scipy's robust loss and its scale in pixels (a few wrong matches
        should not pull the model).

    Returns
    -------
    LensFit
        The fitted model and the residuals of every star given.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    if not (len(x) == len(y) == len(ra) == len(dec)):
        raise BadInputError("x, y, ra and dec must have the same length")
    unknown = set(free) - set(PARAMETERS)
    if unknown:
        raise BadInputError(f"unknown lens parameters {sorted(unknown)}; known: {PARAMETERS}")
    if "surface" in free:
        return _fit_with_surface(
            x, y, ra, dec, start, free=free, weights=weights, loss=loss, loss_scale=loss_scale
        )
    n_free = sum(PARAMETER_SIZES[p] for p in free)
    if 2 * len(x) <= n_free:
        raise BadInputError(f"{len(x)} stars cannot fix {n_free} lens parameters")
    w = np.ones(len(x)) if weights is None else np.sqrt(np.asarray(weights, dtype=float))
    base = start.rotation

    def build(p: np.ndarray) -> LensModel:
        rotation, changes = unpack(p)
        return start.with_rotation(rotation, **changes)

    def unpack(p: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        i = 0
        changes: dict[str, Any] = {}
        rotation = base
        for name in free:
            if name == "rotation":
                # A small rotation of the camera frame, about the camera's own axes.
                rotation = Rotation.from_rotvec(p[i : i + 3]).as_matrix() @ base
            elif name == "center":
                changes["center_x"] = start.center_x + p[i]
                changes["center_y"] = start.center_y + p[i + 1]
            elif name == "focal":
                changes["focal"] = start.focal * math.exp(p[i])
            elif name == "k1":
                changes["k1"] = start.k1 + p[i]
            elif name == "k2":
                changes["k2"] = start.k2 + p[i]
            elif name == "shear":
                changes["a"] = start.a + p[i]
                changes["b"] = start.b + p[i + 1]
            elif name == "decentring":
                changes["p1"] = start.p1 + p[i]
                changes["p2"] = start.p2 + p[i + 1]
            i += PARAMETER_SIZES[name]
        return rotation, changes

    sky = radec_to_xyz(ra, dec)  # once: each trial only turns them

    def residuals(p: np.ndarray) -> np.ndarray:
        rotation, changes = unpack(p)
        lens = replace(start, **changes) if changes else start
        px, py = lens.camera_to_pixel(sky @ rotation.T)
        res = np.concatenate([(x - px) * w, (y - py) * w])
        # A star pushed beyond the lens's reach gets a large, finite residual.
        return np.where(np.isfinite(res), res, 1e4)

    solution = least_squares(
        residuals,
        np.zeros(n_free),
        loss=loss,
        f_scale=loss_scale,
        x_scale=_scales(free, start),
        max_nfev=200,
    )
    model = build(solution.x)
    px, py = model.world_to_pixel(ra, dec)
    return LensFit(model=model, residuals=np.stack([x - px, y - py], axis=1), free=tuple(free))


def _fit_with_surface(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    start: LensModel,
    *,
    free: Sequence[str],
    weights: np.ndarray | None,
    loss: str,
    loss_scale: float,
) -> LensFit:
    """:func:`fit_lens` with the surface (of ``start``'s order) among the free parameters.

    The lens is fitted first as if it had no surface, and the surface then to
    what it leaves: a surface of degree 3 and more can also bend like the
    radial terms, the shear or the decentring, and fitted together the two
    trade large, opposite amounts (a model right on the stars and far off
    between and beyond them).  Fitted in turn, the lens is what the stars say
    of the lens, and the surface only what no lens term holds.  The surface is
    linear in its coefficients: solved for directly, not by adding dozens of
    unknowns to the nonlinear fit.
    """
    rest = [p for p in free if p != "surface"]
    if start.surface_order < 2:
        raise BadInputError("fitting a surface needs a model with surface_order 2 or more")
    if 2 * len(x) <= unknowns(free, start):
        raise BadInputError(f"{len(x)} stars cannot fix {unknowns(free, start)} lens parameters")
    model = without(start, ("surface",))
    if rest:
        model = fit_lens(
            x, y, ra, dec, model, free=rest, weights=weights, loss=loss, loss_scale=loss_scale
        ).model
    model = replace(model, surface_order=start.surface_order, surface=start.surface)
    model = fit_surface(x, y, ra, dec, model, weights=weights, loss_scale=loss_scale)
    px, py = model.world_to_pixel(ra, dec)
    return LensFit(model=model, residuals=np.stack([x - px, y - py], axis=1), free=tuple(free))


def fit_lens_chosen(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    start: LensModel,
    *,
    free: Sequence[str],
    optional: Sequence[str] = ("decentring",),
    weights: np.ndarray | None = None,
) -> LensFit:
    """:func:`fit_lens` with ``free``, and with each ``optional`` term only where the stars want it.

    Each optional term is fitted in addition to ``free`` and kept when it
    lowers the Bayesian information criterion of the fit,
    ``n ln(RSS / n) + k ln n`` over the ``n`` coordinates of the stars both
    fits explain (residual within 3 sigma of the fit without it, so a few
    wrong matches decide nothing).  A term a lens does not have lowers the
    residuals by about one ``sigma^2`` each, far less than the ``ln n`` it
    costs; a decentred lens's lowers them by far more.  Without the term the
    model has it at 0, whatever ``start`` held.  The ``"surface"`` is tried at
    each degree of :data:`SURFACE_ORDERS` in turn, each against the best so far.
    """
    fit = fit_lens(x, y, ra, dec, without(start, optional), free=free, weights=weights)
    chosen = list(free)
    for name in optional:
        if name in chosen:
            continue
        if name == "surface":
            fit, chosen = _choose_surface(x, y, ra, dec, fit, chosen, weights)
            continue
        # Started from ``start``'s own value (a stored camera profile's, say).
        from_start: dict[str, Any] = {k: getattr(start, k) for k in _ZERO[name]}
        trial_free = [*chosen, name]
        if 2 * len(fit.residuals) <= 3 * unknowns(trial_free, fit.model):
            continue
        trial = fit_lens(
            x, y, ra, dec, replace(fit.model, **from_start), free=trial_free, weights=weights
        )
        if information(trial, fit, PARAMETER_SIZES[name]) < 0.0:
            fit, chosen = trial, trial_free
    return fit


def _choose_surface(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    fit: LensFit,
    chosen: list[str],
    weights: np.ndarray | None,
) -> tuple[LensFit, list[str]]:
    """The best of ``fit`` and the same with a surface of each of :data:`SURFACE_ORDERS`.

    ``fit`` is the lens alone; each degree's surface is fitted to what it
    leaves (a linear fit, milliseconds), as :func:`fit_lens` fits a surface,
    and scored by cross-validation: each star's residual when the surface is
    fitted without it (leave-one-out, exact for a linear fit).  A degree is
    kept when that beats the best so far by :data:`SURFACE_GAIN`: a surface
    the stars do not show only fits their noise, which a held-out star does not
    share, so its held-out residuals are larger, not smaller.
    """
    trial_free = [p for p in chosen if p != "surface"] + ["surface"]
    # Judged on the stars the lens alone leaves within 3 sigma (as
    # :func:`information` judges), so that wrong matches decide nothing.
    r2 = np.sum(fit.residuals**2, axis=1)
    sigma2 = float(np.median(r2)) / (2.0 * math.log(2.0))
    inside = r2 <= 9.0 * max(sigma2, 1e-6)
    if not inside.any():
        return fit, chosen
    # The lens's own residuals: a little smaller than its held-out ones, so
    # the comparison leans towards no surface.
    best_score = float(np.sqrt(np.mean(r2[inside])))
    best: LensModel | None = None
    for order in SURFACE_ORDERS:
        model = replace(fit.model, surface_order=order, surface=(0.0,) * surface_size(order))
        if 2 * len(fit.residuals) <= 3 * unknowns(trial_free, model):
            break
        model, held_out = surface_with_checks(x, y, ra, dec, model, weights=weights)
        score = float(np.sqrt(np.mean(np.sum(held_out[inside] ** 2, axis=1))))
        if score < SURFACE_GAIN * best_score:
            best, best_score = model, score
    if best is None:
        return fit, chosen
    px, py = best.world_to_pixel(ra, dec)
    return LensFit(best, np.stack([x - px, y - py], axis=1), tuple(trial_free)), trial_free


def without(model: LensModel, terms: Sequence[str]) -> LensModel:
    """``model`` with the optional ``terms`` (say ``"decentring"``) set to none."""
    zero: dict[str, Any] = {}
    for name in terms:
        zero.update(_ZERO[name])
    return replace(model, **zero)


#: The model's values that mean "no such term", per optional parameter.
_ZERO: dict[str, dict[str, Any]] = {
    "shear": {"a": 0.0, "b": 0.0},
    "decentring": {"p1": 0.0, "p2": 0.0},
    "surface": {"surface_order": 0, "surface": (), "surface_reach": 0.0},
}


def information(more: LensFit, fewer: LensFit, extra: int) -> float:
    """BIC of ``more`` minus that of ``fewer``, which has ``extra`` fewer unknowns.

    Negative when the extra unknowns explain enough to be worth having.  Both
    are scored on the same stars: those ``fewer`` leaves within 3 sigma of
    its robust spread.
    """
    r_more = np.sum(more.residuals**2, axis=1)
    r_fewer = np.sum(fewer.residuals**2, axis=1)
    sigma2 = float(np.median(r_fewer)) / (2.0 * math.log(2.0))
    inside = r_fewer <= 9.0 * max(sigma2, 1e-6)
    n = 2 * int(inside.sum())
    if n <= extra:
        return math.inf
    rss_more = max(float(np.sum(r_more[inside])), 1e-12)
    rss_fewer = max(float(np.sum(r_fewer[inside])), 1e-12)
    return n * math.log(rss_more / rss_fewer) + extra * math.log(n)


def _scales(free: Sequence[str], start: LensModel) -> np.ndarray:
    """Typical sizes of each unknown, so that the fit steps sensibly in all of them."""
    pixel = 1.0 / start.focal  # one pixel, in radians
    sizes: list[float] = []
    for name in free:
        sizes += {
            "rotation": [pixel] * 3,
            "center": [1.0, 1.0],
            "focal": [pixel],
            "k1": [1e-3],
            "k2": [1e-3],
            "shear": [1e-3, 1e-3],
            "decentring": [1e-4, 1e-4],
        }[name]
    return np.array(sizes)


def with_projection(model: LensModel, projection: str) -> LensModel:
    """The same camera in another projection, matched at 45 degrees off axis.

    The focal length is chosen so that the two agree where most matched stars
    are, so a fit started from it converges from nearby.
    """
    from skysolve.engine.allsky.model import radial

    theta = math.radians(45.0)
    old = float(model.rho(np.array(theta)))
    new = float(radial(np.array(theta), projection))
    return replace(
        model,
        projection=projection,
        focal=model.focal * old / new,
        k1=0.0,
        k2=0.0,
        p1=0.0,
        p2=0.0,
        surface_order=0,
        surface=(),
        surface_reach=0.0,
    )
