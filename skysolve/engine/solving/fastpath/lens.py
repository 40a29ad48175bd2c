"""A wide-angle lens's radial distortion: undone before pattern matching, measured, remembered.

tetra3rs matches the shapes of star patterns through a pinhole camera; a wide
lens's barrel distortion bends them (3-10 % at the edge of a 30-120 degree
field), so patterns near the edge no longer match.  The fast path undoes a
one-parameter radial distortion on the centroids it hands tetra3rs::

    r_u = r_d * (1 + k * (r_d / R) ** 2)

with ``r_d`` a centroid's distance from the image centre, ``R`` half the
widest side and ``k`` dimensionless (barrel: ``k > 0``; ``k = 0.05`` moves the
middle of the widest side's edges out by 5 %).  Its answer, a TAN WCS of the
undistorted frame, is turned into a TAN-SIP one of the real pixels
(:func:`start_model`) before the refit and the verification, which see the
real pixels only: a wrong ``k`` can cost a guess, never make a wrong answer.

A solved frame's distortion is measured from its WCS (:func:`radial_of`) and
remembered with its camera (:func:`remember`: the image size and the FITS
``INSTRUME``/``TELESCOP`` or EXIF make/model, the all-sky camera profiles'
key), with the field's width; the camera's next frame is tried first with
both (:func:`recall`), one bounded guess instead of the blind ladder.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skysolve.engine.solving.fastpath.tansip import TanSip, fit_tan_sip, gnomonic

#: Grid points per side on which a WCS's distortion is measured.
GRID = 13
#: Largest |k| measured or remembered: beyond, the one-term model folds back
#: inside the frame (a fisheye is the all-sky search's).
MAX_K = 0.5
#: A remembered |k| below this is no distortion worth undoing (a refit of order 3
#: costs 40-60 ms more than one of order 2 through 300 stars).
MIN_K = 0.01
#: SIP order of the start model of an undistorted match (the radial term is cubic).
START_ORDER = 3
#: A blind search that no pinhole guess matched tries the guesses at least this
#: wide (deg) once more with the centroids undistorted by ``BARREL_K`` (the
#: matcher's pattern budget for wide guesses on each): a wide lens's barrel
#: distortion beyond what the spacing of the guesses covers (8-15 % at the edges).
BARREL_FROM = 30.0
BARREL_K = 0.12
#: Largest RMS (px, times the positional error) of the cubic refit of a wide
#: pinhole match that the quadratic one left too far out (the matcher's
#: :func:`~skysolve.engine.solving.fastpath.confirm.confirm`).
RETRY_RMS = 0.75
#: A camera's remembered field is searched within this fraction of it.
LENS_FOV_ERROR = 0.06

#: File name ending of a camera's remembered lens, in the camera profiles' folder.
SUFFIX = ".radial.json"


@dataclass(frozen=True)
class RadialLens:
    """A camera's radial distortion ``k`` and the widest side's field (degrees)
    of its undistorted frame (a pinhole's)."""

    k: float
    fov: float

    def undistort(self, u: np.ndarray, v: np.ndarray, width: int, height: int) -> np.ndarray:
        """Undistorted (u, v) rows of centroid offsets from the image centre."""
        return undistort(u, v, self.k, width, height)


def undistort(u: np.ndarray, v: np.ndarray, k: float, width: int, height: int) -> np.ndarray:
    """Rows (u, v) * (1 + k (r / R)^2), R half the widest side: see the module."""
    u, v = np.asarray(u, float), np.asarray(v, float)
    s = 1.0 + k * (u * u + v * v) / (max(width, height) / 2.0) ** 2
    return np.column_stack([u * s, v * s])


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred offsets of a GRID x GRID grid over the image."""
    gu, gv = np.meshgrid(
        np.linspace(-(width - 1) / 2.0, (width - 1) / 2.0, GRID),
        np.linspace(-(height - 1) / 2.0, (height - 1) / 2.0, GRID),
    )
    return gu.ravel(), gv.ravel()


def start_model(tetra: TanSip, k: float, width: int, height: int) -> TanSip:
    """The TAN-SIP of the real pixels that ``tetra`` (a TAN WCS of the frame
    undistorted with ``k``, in the same 1-based pixel convention) describes."""
    cx, cy = (width + 1) / 2.0, (height + 1) / 2.0
    gu, gv = _grid(width, height)
    und = undistort(gu, gv, k, width, height)
    ra, dec = tetra.pix2world(und[:, 0] + cx, und[:, 1] + cy)
    return fit_tan_sip(
        gu + cx, gv + cy, ra, dec, width=width, height=height, order=START_ORDER, crval=tetra.crval
    )


def radial_of(model: Any, width: int, height: int) -> RadialLens | None:
    """The radial distortion and the pinhole field that best describe ``model``.

    ``model``: anything with ``pix2world(x, y)`` in 1-based pixels (a
    :class:`TanSip`, the final fit's WCS model).  The model's sky positions of
    a grid over the image are put on the tangent plane about the image
    centre's; ``k`` is the value for which an affine map of the undistorted
    grid fits them best (golden-section search; the affine part is a least
    squares fit).  None when the model gives no finite positions.
    """
    cx, cy = (width + 1) / 2.0, (height + 1) / 2.0
    gu, gv = _grid(width, height)
    ra, dec = model.pix2world(np.append(gu + cx, cx), np.append(gv + cy, cy))
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    tan = np.radians(gnomonic(ra[:-1], dec[:-1], float(ra[-1]), float(dec[-1])))
    if not np.all(np.isfinite(tan)):
        return None

    def misfit(k: float) -> tuple[float, np.ndarray]:
        und = undistort(gu, gv, k, width, height)
        design = np.column_stack([und, np.ones(len(gu))])
        coef, *_ = np.linalg.lstsq(design, tan, rcond=None)
        return float(np.sum((design @ coef - tan) ** 2)), coef

    lo, hi = -MAX_K, MAX_K
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
    fa, fb = misfit(a)[0], misfit(b)[0]
    for _ in range(48):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - golden * (hi - lo)
            fa = misfit(a)[0]
        else:
            lo, a, fa = a, b, fb
            b = lo + golden * (hi - lo)
            fb = misfit(b)[0]
    k = (lo + hi) / 2.0
    coef = misfit(k)[1]
    scale = math.sqrt(abs(float(np.linalg.det(coef[:2]))))  # tangent-plane radians per pixel
    if not scale > 0.0:
        return None
    fov = 2.0 * math.degrees(math.atan(scale * max(width, height) / 2.0))
    return RadialLens(k=round(k, 5), fov=fov)


def remember(key: str, lens: RadialLens, directory: Path) -> Path:
    """Keep ``lens`` as camera ``key``'s (written whole, then renamed in)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key}{SUFFIX}"
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({"k": lens.k, "fov": lens.fov}))
    partial.replace(path)
    return path


def recall(key: str, directory: Path) -> RadialLens | None:
    """Camera ``key``'s remembered lens; None when none is kept or it is unreadable."""
    try:
        doc = json.loads((directory / f"{key}{SUFFIX}").read_text())
        k, fov = float(doc["k"]), float(doc["fov"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (abs(k) <= MAX_K and 0.0 < fov < 180.0):
        return None
    return RadialLens(k=k, fov=fov)
