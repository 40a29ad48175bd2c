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
from skysolve.engine.solving.fastpath.lens import MIN_K, START_ORDER
from skysolve.engine.solving.fastpath.refit import REFIT_SOURCES
from skysolve.engine.solving.fastpath.tansip import TanSip, fit_tan_sip, sip_terms
from skysolve.engine.solving.fastpath.verification import (
    Neighbourhood,
    nearest_within,
    references_in_field,
)

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
        if info.max_fov * 1.1 < fov < 170.0 and lo / 1.2 <= fov <= hi * 1.2:
            first.append((fov, k if abs(k) >= MIN_K else 0.0))
    last: list[Crop] = []
    if info.max_fov >= CROP_DATABASE_FROM:
        last = [(fov, 0.0) for fov in CROP_FRAMES if lo <= fov * 1.15 and fov * 0.85 <= hi]
    return first, last


def crop_fraction(frame_fov: float) -> float:
    """The crop's share of each side when the frame's widest side is ``frame_fov`` degrees."""
    half = math.radians(min(frame_fov, 170.0) / 2.0)
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
    matched to catalogue stars within :data:`GROW_RADIUS` times ``radius`` of
    where the model fitted so far puts them, and the model is refitted through
    those matches with the highest SIP order (to :data:`GROW_ORDER`) they
    support three times over.  Returns the last model fitted (``model`` when
    too few stars matched); the caller refits and verifies it.
    """
    w, h = sources.width, sources.height
    cx, cy = (w + 1) / 2.0, (h + 1) / 2.0
    src = sources.head(REFIT_SOURCES)
    sx, sy = np.asarray(src.x, float), np.asarray(src.y, float)
    ra_all, dec_all = np.asarray(stars.ra), np.asarray(stars.dec)
    reach = GROW_RADIUS * radius
    while share < 1.0:
        share = min(1.0, share * GROW_STEP)
        half_w, half_h = share * w / 2.0 + reach, share * h / 2.0 + reach
        rx, ry, rows = references_in_field(
            model, w, h, stars, limit=2 * len(src), margin=reach, near=near
        )
        ref_in = (np.abs(rx - cx) <= half_w) & (np.abs(ry - cy) <= half_h)
        src_in = np.flatnonzero((np.abs(sx - cx) <= half_w) & (np.abs(sy - cy) <= half_h))
        dist, nearest = nearest_within(sx[src_in], sy[src_in], rx[ref_in], ry[ref_in], reach)
        ok = np.flatnonzero(np.isfinite(dist))
        # One catalogue star per source: the closest source keeps it.
        by_distance = ok[np.argsort(dist[ok], kind="stable")]
        _, first = np.unique(nearest[by_distance], return_index=True)
        chosen = by_distance[np.sort(first)]
        # Inside the frame a cubic (the radial term) extrapolates to the next
        # ring; the fifth powers only over the whole frame, where they interpolate.
        order = GROW_ORDER if share >= 1.0 else START_ORDER
        while order > 1 and len(chosen) < 3 * len(sip_terms(order)):
            order -= 1
        if len(chosen) < 6:
            return model
        star_rows = rows[ref_in][nearest[chosen]]
        model = fit_tan_sip(
            sx[src_in][chosen], sy[src_in][chosen], ra_all[star_rows], dec_all[star_rows],
            width=w, height=h, order=order, crval=model.crval,
        )  # fmt: skip
    return model
