"""Checking a candidate calibration against the catalogue, independently of how it was found."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skysolve.engine.results import SourceList
from skysolve.engine.solving.base import SolveConstraints
from skysolve.engine.solving.fastpath.database import Stars
from skysolve.engine.solving.fastpath.tansip import TanSip

#: Brightest sources checked in the verification.
VERIFY_SOURCES = 100
#: A match needs at least this many verified stars (beyond the four of the pattern).
MIN_VERIFIED = 8
#: The false-positive probability a verified match must stay below.
MAX_FALSE_POSITIVE = 1e-9
#: Verification match radius, pixels (at least; scaled by the positional error).
VERIFY_RADIUS = 3.0


@dataclass(frozen=True)
class Verification:
    """How well a calibration explains the sources.

    ``matched``: brightest sources (of ``checked``) within ``radius`` pixels of
    one of ``references`` catalogue stars in the image.  ``false_positive``:
    the chance that as many would land that close by accident (binomial tail,
    the four pattern stars discounted).
    """

    checked: int
    matched: int
    references: int
    radius: float
    false_positive: float

    @property
    def accepted(self) -> bool:
        return self.matched - 4 >= MIN_VERIFIED and self.false_positive <= MAX_FALSE_POSITIVE


def verify_calibration(
    sources: SourceList,
    model: TanSip,
    stars: Stars,
    *,
    radius: float = VERIFY_RADIUS,
    checked: int = VERIFY_SOURCES,
    near: Neighbourhood | None = None,
) -> Verification:
    """Check a calibration against the catalogue, independently of how it was found.

    Parameters
    ----------
    sources : SourceList
        Brightest first.
    model : TanSip
        The WCS to check.
    stars : ReferenceStars or StarCatalog
        Reference stars with magnitudes.
    radius : float
        Match radius, pixels.
    checked : int
        How many of the brightest sources to test.
    near : Neighbourhood, optional
        Catalogue stars around the field already looked up (a speed-up only).

    Returns
    -------
    Verification
    """
    w, h = sources.width, sources.height
    src = sources.head(checked)
    refs = references_in_field(model, w, h, stars, limit=max(2 * len(src), 20), near=near)
    n_checked = len(src)
    if n_checked == 0 or len(refs[0]) == 0:
        return Verification(n_checked, 0, len(refs[0]), radius, 1.0)
    dist, _ = nearest_within(np.asarray(src.x), np.asarray(src.y), refs[0], refs[1], radius)
    matched = int(np.count_nonzero(np.isfinite(dist)))
    p = min(1.0, len(refs[0]) * math.pi * radius**2 / (w * h))
    # The four pattern stars match by construction: discount them.
    k, n = max(0, matched - 4), max(0, n_checked - 4)
    return Verification(n_checked, matched, len(refs[0]), radius, binomial_tail(k, n, p))


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (n is small here)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def nearest_within(
    x: np.ndarray, y: np.ndarray, rx: np.ndarray, ry: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of the nearest (rx, ry) point of each (x, y); inf beyond ``radius``.

    A few hundred points on each side: a distance matrix is quicker than a tree.
    """
    if len(rx) == 0:
        return np.full(len(x), np.inf), np.zeros(len(x), dtype=np.intp)
    d2 = (np.asarray(x)[:, None] - rx[None, :]) ** 2 + (np.asarray(y)[:, None] - ry[None, :]) ** 2
    idx = np.argmin(d2, axis=1)
    dist = np.sqrt(d2[np.arange(len(x)), idx])
    return np.where(dist <= radius, dist, np.inf), idx


class Neighbourhood:
    """The catalogue stars in a cone around one candidate field, brightest first.

    The refit and the verification ask many times for the brightest stars
    inside a field that moves by a fraction of a pixel between calls; the cone
    query and its sort are done once, with room to spare, and redone only when
    the field leaves the cone.
    """

    #: The cone's radius over the field's circumscribed radius.
    SLACK = 1.25

    def __init__(self) -> None:
        self.centre: tuple[float, float] | None = None
        self.radius = 0.0
        self.rows = np.zeros(0, dtype=np.intp)

    def rows_around(self, stars: Stars, ra: float, dec: float, radius: float) -> np.ndarray:
        """Rows of every star within ``radius`` of (ra, dec) at least, brightest first."""
        if self.centre is not None:
            moved = float(
                angular_separation(self.centre[0], self.centre[1], np.array([ra]), np.array([dec]))[
                    0
                ]
            )
            if moved + radius <= self.radius:
                return self.rows
        cone = min(180.0, radius * self.SLACK)
        rows = _cone_rows(stars, ra, dec, cone)
        assert stars.mag is not None
        mag = np.asarray(stars.mag)[rows]
        if np.any(mag[1:] < mag[:-1]):  # a database's stars are stored brightest first
            rows = rows[np.argsort(mag, kind="stable")]
        self.centre, self.radius, self.rows = (ra, dec), cone, rows
        return rows


def references_in_field(
    model: TanSip,
    w: int,
    h: int,
    stars: Stars,
    *,
    limit: int,
    margin: float = 0.0,
    near: Neighbourhood | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel x, y and catalogue row of the ``limit`` brightest stars inside the image."""
    cx, cy = (w + 1) / 2.0, (h + 1) / 2.0
    px = np.array([cx, 0.5, w + 0.5, 0.5, w + 0.5])
    py = np.array([cy, 0.5, 0.5, h + 0.5, h + 0.5])
    pra, pdec = model.pix2world(px, py)
    ra0, dec0 = float(pra[0]), float(pdec[0])
    sep = angular_separation(ra0, dec0, pra[1:], pdec[1:])
    radius = min(90.0, float(sep.max()) * 1.02 + margin * _pixel_deg(model))
    rows = (near or Neighbourhood()).rows_around(stars, ra0, dec0, radius)
    empty = np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.intp)
    if len(rows) == 0:
        return empty
    ra_all, dec_all = np.asarray(stars.ra), np.asarray(stars.dec)
    # Brightest first: project the brightest few until ``limit`` of them are inside.
    take = 4 * limit
    while True:
        head = rows[:take]
        x, y = model.world2pix(ra_all[head], dec_all[head])
        inside = (
            np.isfinite(x)
            & np.isfinite(y)
            & (x > 0.5 - margin)
            & (x < w + 0.5 + margin)
            & (y > 0.5 - margin)
            & (y < h + 0.5 + margin)
        )
        if take >= len(rows) or np.count_nonzero(inside) >= limit:
            break
        take *= 4
    idx = np.flatnonzero(inside)[:limit]
    return np.asarray(x)[idx], np.asarray(y)[idx], head[idx]


def _pixel_deg(model: TanSip) -> float:
    return math.sqrt(abs(float(np.linalg.det(model.cd))))


def _cone_rows(stars: Stars, ra: float, dec: float, radius: float) -> np.ndarray:
    """Rows of the stars within ``radius`` degrees of (ra, dec), in catalogue order."""
    r, d = math.radians(ra), math.radians(dec)
    centre = np.array([math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d)])
    return np.flatnonzero(stars.xyz @ centre >= math.cos(math.radians(radius)))


def angular_separation(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r0, d0 = math.radians(ra0), math.radians(dec0)
    r, d = np.radians(ra), np.radians(dec)
    c = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(r - r0)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def describe(v: Verification) -> str:
    return (
        f"verification: {v.matched} of the {v.checked} brightest sources within "
        f"{v.radius:g} px of the {v.references} brightest catalogue stars in the field; "
        f"false-positive probability {v.false_positive:.2g}"
    )


def constraint_problem(
    model: TanSip, constraints: SolveConstraints, width: int, height: int
) -> str:
    det = float(np.linalg.det(model.cd))
    pixscale = 3600.0 * math.sqrt(abs(det))
    if constraints.parity == 0 and det > 0:
        return "parity 0 asks for det(CD) < 0"
    if constraints.parity == 1 and det < 0:
        return "parity 1 asks for det(CD) > 0"
    if constraints.scale_low is not None and pixscale < constraints.scale_low * 0.99:
        return f"pixel scale {pixscale:.3f} arcsec is below the allowed range"
    if constraints.scale_high is not None and pixscale > constraints.scale_high * 1.01:
        return f"pixel scale {pixscale:.3f} arcsec is above the allowed range"
    if constraints.has_position and constraints.radius is not None:
        assert constraints.center_ra is not None and constraints.center_dec is not None
        ra, dec = model.pix2world(np.array([(width + 1) / 2.0]), np.array([(height + 1) / 2.0]))
        sep = angular_separation(constraints.center_ra, constraints.center_dec, ra, dec)[0]
        if sep > constraints.radius:
            return f"the field centre is {sep:.2f} deg from the given position"
    return ""
