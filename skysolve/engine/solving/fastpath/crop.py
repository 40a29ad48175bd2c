"""Frames wider than the database: the centre matched as a narrower field, then grown outward.

The database's patterns are those of fields up to its widest (70 degrees by
default), and tetra3rs's pinhole bends a wider frame's patterns past what any
guess matches: the brightest two dozen stars of a 100-degree frame span
patterns no level of the database holds, and its edges are 10-20 % off a
pinhole (the lens's barrel distortion, or a focal length guessed a little
wrong).  The centre of such a frame is an ordinary field, though: the sources
inside a central crop :data:`CROP_FOV` degrees wide (if the whole frame is as
wide as guessed) are handed to tetra3rs as a frame of their own
(:func:`crop_centroids`), where neither the lens nor the guess bends them by
more than a guess tolerates.  Its TAN answer holds the centre; :func:`grow`
extends it ring by ring (each ring's sources matched to catalogue stars
through the model fitted inside it, with the SIP order the matches support),
and the matcher refits and verifies the whole frame as it does any other
match: the same catalogue check on the real pixels, so a crop can find a
frame but never make a wrong answer.
"""

from __future__ import annotations

import math

import numpy as np

from skysolve.engine.results import SourceList
from skysolve.engine.solving.base import SolveConstraints
from skysolve.engine.solving.fastpath.database import DatabaseInfo, Stars
from skysolve.engine.solving.fastpath.lens import MIN_K
from skysolve.engine.solving.fastpath.refit import REFIT_SOURCES
from skysolve.engine.solving.fastpath.tansip import TanSip, deproject, fit_tan_sip, gnomonic
from skysolve.engine.solving.fastpath.verification import Neighbourhood, angular_separation

#: Widest side (degrees) of the central crop handed to tetra3rs when the whole
#: frame is as wide as guessed: well inside the default database's 4-70 degree
#: range, and narrow enough that a guess of the frame's width 15 degrees off, or
#: 15-20 % barrel at the frame's edges, bends the crop's patterns less than a
#: wide guess of the ladder tolerates (measured: 80-120 degree synthetic frames).
CROP_FOV = 45.0
#: The whole frame's widest side (degrees) guessed in turn; each crop finds
#: frames from about 0.85 to 1.15 times its guess (measured as above).
CROP_FRAMES = (90.0, 120.0, 75.0, 105.0)
#: A blind search crops frames only after the ladder failed, and only with a
#: database this wide at least (a narrower one's fields are nothing like 75 degrees).
CROP_DATABASE_FROM = 40.0
#: Widest frame (degrees) a crop is taken from: towards 180 degrees a pinhole's
#: tangent plane runs to infinity and the crop to nothing.
WIDEST_FRAME = 170.0
#: tetra3rs checks at most this many of the crop's patterns (a crop that matches
#: does so within its first few hundred; one that does not costs 2-10 ms).
CROP_PATTERNS = 3000
#: Each ring of :func:`grow` reaches this factor farther out than the last.
GROW_STEP = 1.2
#: Highest SIP order :func:`grow` and the final refit of a cropped match fit: a
#: 100-120 degree frame's radial law needs terms to the fifth power (one cubic
#: term leaves 2-5 px at the corners).
GROW_ORDER = 5
#: Sources matched in a ring within this many match radii of the model fitted inside it.
GROW_RADIUS = 4.0
#: A grown match must explain the sources outside its crop at least this share as
#: well as those inside (matched shares of each): a lens stronger than two radial
#: terms hold, grown past where the model still fits, is 10-50 px out at the edges
#: although its refit verifies (synthetic 90-110 degree frames with 20 % barrel:
#: 0.5-0.7 of the inside's share outside, where a right fit has 0.95-1).
EDGE_SHARE = 0.85


def edge_problem(sources: SourceList, matched_rows: np.ndarray, share: float) -> str:
    """Why a grown match explains the frame's edges too poorly (see
    :data:`EDGE_SHARE`), or "": ``matched_rows`` are the refit's rows of
    ``sources`` (brightest first)."""
    w, h = sources.width, sources.height
    src = sources.head(REFIT_SOURCES)
    u = np.abs(np.asarray(src.x, float) - (w + 1) / 2.0)
    v = np.abs(np.asarray(src.y, float) - (h + 1) / 2.0)
    outside = (u > share * w / 2.0) | (v > share * h / 2.0)
    hit = np.zeros(len(src), dtype=bool)
    hit[np.asarray(matched_rows, dtype=np.intp)] = True
    if not outside.any() or outside.all():
        return ""
    inner, outer = float(hit[~outside].mean()), float(hit[outside].mean())
    if outer >= EDGE_SHARE * inner:
        return ""
    return (
        f"the refit matches {outer:.0%} of the sources outside the crop against {inner:.0%} inside"
    )


#: One crop guess: the whole frame's widest side (degrees) and the radial distortion k
#: undone on the centroids first (0: none).
Crop = tuple[float, float]


def crop_guesses(
    info: DatabaseInfo, constraints: SolveConstraints, widest_px: int
) -> tuple[list[Crop], list[Crop]]:
    """The crops to try for a frame the database's own guesses may not reach:
    those before the database's guesses, and those after them.

    Before: a camera's remembered lens wider than the database, with its
    distortion.  After: with a database of wide fields, the frame widths of
    :data:`CROP_FRAMES` whose reach (0.85-1.15 times each) meets the scale
    constraints' range (all of them for a blind solve).
    """
    lo = (constraints.scale_low or 0.0) * widest_px / 3600.0
    hi = (constraints.scale_high or math.inf) * widest_px / 3600.0
    first: list[Crop] = []
    if constraints.lens is not None:
        k, fov = constraints.lens
        if info.max_fov * 1.1 < fov < WIDEST_FRAME and lo / 1.2 <= fov <= hi * 1.2:
            first.append((fov, k if abs(k) >= MIN_K else 0.0))
    last: list[Crop] = []
    if info.max_fov >= CROP_DATABASE_FROM:
        last = [(fov, 0.0) for fov in CROP_FRAMES if lo <= fov * 1.15 and fov * 0.85 <= hi]
    return first, last


def crop_fraction(frame_fov: float) -> float:
    """The crop's share of each side when the frame's widest side is ``frame_fov`` degrees."""
    half = math.radians(min(frame_fov, WIDEST_FRAME) / 2.0)
    return min(1.0, math.tan(math.radians(CROP_FOV / 2.0)) / math.tan(half))


def crop_centroids(
    centroids: np.ndarray, frame_fov: float, width: int, height: int, *, limit: int
) -> tuple[np.ndarray, int, int]:
    """The centroids (rows of x, y offsets from the image centre, flux) inside
    the central crop of a frame guessed ``frame_fov`` degrees wide, brightest
    ``limit`` first, with the crop's width and height (pixels)."""
    share = crop_fraction(frame_fov)
    cw, ch = share * width, share * height
    inside = (np.abs(centroids[:, 0]) <= cw / 2.0) & (np.abs(centroids[:, 1]) <= ch / 2.0)
    return centroids[inside][:limit], max(1, math.ceil(cw)), max(1, math.ceil(ch))


def _radial_design(u: np.ndarray, v: np.ndarray, s: float) -> np.ndarray:
    """Columns 1, u, v, u r^2, v r^2, u r^4, v r^4 (offsets over ``s``): a lens's
    radial law to two terms, each tangent-plane axis with its own coefficients."""
    un, vn = np.asarray(u, float) / s, np.asarray(v, float) / s
    r2 = un * un + vn * vn
    return np.column_stack([np.ones_like(un), un, vn, un * r2, vn * r2, un * r2 * r2, vn * r2 * r2])


def grow(
    sources: SourceList,
    model: TanSip,
    stars: Stars,
    *,
    share: float,
    radius: float,
    near: Neighbourhood,
) -> TanSip:
    """``model``, right over the central ``share`` of each side, grown to the whole frame.

    Ring by ring (each :data:`GROW_STEP` times wider), the sources inside are
    matched to catalogue stars within :data:`GROW_RADIUS` times ``radius``
    (pixels, through the model's local scale) of where the model fitted so far
    puts them on the tangent plane, and the model is refitted through those
    matches.  The model grown is a lens's: the tangent plane from the pixel
    offsets through two radial terms (:func:`_radial_design`), which carries
    a lens's barrel from the middle to the edges where a polynomial of the
    pixels runs off; the last is handed back as the TAN-SIP of order
    :data:`GROW_ORDER` through a grid of it (``model`` when too few stars
    matched).  The caller refits and verifies it.
    """
    w, h = sources.width, sources.height
    cx, cy = (w + 1) / 2.0, (h + 1) / 2.0
    scale = max(w, h) / 2.0
    crval = model.crval
    src = sources.head(REFIT_SOURCES)
    su, sv = np.asarray(src.x, float) - cx, np.asarray(src.y, float) - cy
    # The start: the model's tangent plane over a grid inside the crop.
    gu, gv = np.meshgrid(
        np.linspace(-share * w / 2.0, share * w / 2.0, 9),
        np.linspace(-share * h / 2.0, share * h / 2.0, 9),
    )
    gra, gdec = model.pix2world(gu.ravel() + cx, gv.ravel() + cy)
    coef, *_ = np.linalg.lstsq(
        _radial_design(gu.ravel(), gv.ravel(), scale), gnomonic(gra, gdec, *crval), rcond=None
    )
    # The catalogue's brightest stars around the frame, on the same tangent plane.
    corners_ra, corners_dec = model.pix2world(
        np.array([0.5, w + 0.5, 0.5, w + 0.5]), np.array([0.5, 0.5, h + 0.5, h + 0.5])
    )
    reach_deg = float(np.nanmax(angular_separation(*crval, corners_ra, corners_dec)))
    rows = near.rows_around(stars, crval[0], crval[1], min(89.0, 1.3 * reach_deg + 5.0))
    rows = rows[: 8 * len(src)]
    plane = gnomonic(np.asarray(stars.ra)[rows], np.asarray(stars.dec)[rows], *crval)
    seen = np.all(np.isfinite(plane), axis=1)
    rows, plane = rows[seen], plane[seen]
    matched = False

    def fitted(coef: np.ndarray) -> TanSip:
        """The radial model as a TAN-SIP through a grid over the frame."""
        gu, gv = np.meshgrid(np.linspace(-w / 2.0, w / 2.0, 15), np.linspace(-h / 2.0, h / 2.0, 15))
        grid = _radial_design(gu.ravel(), gv.ravel(), scale) @ coef
        ra, dec = deproject(grid[:, 0], grid[:, 1], *crval)
        return fit_tan_sip(
            gu.ravel() + cx, gv.ravel() + cy, ra, dec, width=w, height=h, order=GROW_ORDER,
            crval=crval,
        )  # fmt: skip

    while share < 1.0:
        share = min(1.0, share * GROW_STEP)
        inside = (np.abs(su) <= share * w / 2.0) & (np.abs(sv) <= share * h / 2.0)
        u, v = su[inside], sv[inside]
        # Twice per ring: the second match through the fit that reached its edge.
        for _ in range(2):
            at = _radial_design(u, v, scale) @ coef
            # The model's local scale (tangent-plane degrees per pixel) at each source.
            step = np.hypot(*(_radial_design(u + 1.0, v, scale) @ coef - at).T)
            d2 = ((at[:, None, :] - plane[None, :, :]) ** 2).sum(axis=2)
            nearest = np.argmin(d2, axis=1)
            dist = np.sqrt(d2[np.arange(len(u)), nearest]) / step
            ok = np.flatnonzero(dist <= GROW_RADIUS * radius)
            # One catalogue star per source: the closest source keeps it.
            by_distance = ok[np.argsort(dist[ok], kind="stable")]
            _, first = np.unique(nearest[by_distance], return_index=True)
            chosen = by_distance[np.sort(first)]
            if len(chosen) < 12:
                return fitted(coef) if matched else model
            coef, *_ = np.linalg.lstsq(
                _radial_design(u[chosen], v[chosen], scale), plane[nearest[chosen]], rcond=None
            )
            matched = True
    return fitted(coef)
