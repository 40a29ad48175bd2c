"""Matching sources to catalogue stars and refitting the WCS, the match radius shrinking."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skysolve.engine.results import SourceList
from skysolve.engine.solving.fastpath.database import Stars
from skysolve.engine.solving.fastpath.tansip import TanSip, fit_tan_sip, sip_terms
from skysolve.engine.solving.fastpath.verification import (
    Neighbourhood,
    nearest_within,
    references_in_field,
)

#: Brightest sources matched for the refit (and listed in corr.fits).
REFIT_SOURCES = 300
#: Largest RMS residual of the refitted WCS, pixels (times the positional error).
MAX_RMS = 1.5


@dataclass(frozen=True)
class Refined:
    model: TanSip
    source_rows: np.ndarray
    star_rows: np.ndarray
    rms: float
    near: Neighbourhood | None = None


def refine(
    sources: SourceList,
    model: TanSip,
    stars: Stars,
    *,
    order: int,
    radius: float,
    near: Neighbourhood | None = None,
    loose_order: int = 1,
) -> Refined:
    """Match sources to catalogue stars and refit, the match radius shrinking to ``radius``.

    The loose matches are fitted with ``loose_order`` (TAN: a start model of a
    pinhole; a start model that already holds a lens's distortion keeps it).
    """
    near = near or Neighbourhood()
    w, h = sources.width, sources.height
    src = sources.head(REFIT_SOURCES)
    sxy = np.column_stack([src.x, src.y])
    rows_s = rows_c = np.zeros(0, dtype=np.intp)
    rms = math.inf
    # TAN through loose matches first (they include wrong pairs), then the
    # requested order at ``radius`` until the matched set stops changing.
    loose = max(1, min(loose_order, order))
    schedule = [(4.0 * radius, loose), (2.0 * radius, loose)] + [(radius, max(1, order))] * 4
    previous: tuple[int, ...] = ()
    settled = False  # a fit at the final radius and order has been made
    for r, wanted in schedule:
        rx, ry, rrow = references_in_field(
            model, w, h, stars, limit=2 * len(src), margin=r, near=near
        )
        if len(rrow) < 4:
            break
        dist, nearest = nearest_within(sxy[:, 0], sxy[:, 1], rx, ry, r)
        ok = np.flatnonzero(np.isfinite(dist))
        # One catalogue star per source: the closest source keeps it.
        by_distance = ok[np.argsort(dist[ok], kind="stable")]
        _, first = np.unique(nearest[by_distance], return_index=True)
        chosen = by_distance[np.sort(first)]
        pairs = tuple(chosen.tolist()) + tuple(rrow[nearest[chosen]].tolist())
        if wanted == max(1, order) and r == radius and pairs == previous and settled:
            break
        settled = r == radius
        previous = pairs
        rows_s, rows_c = chosen, rrow[nearest[chosen]]
        used = wanted
        while used > 1 and len(rows_s) < 3 * len(sip_terms(used)):
            used -= 1
        if len(rows_s) < 6:
            break
        ra, dec = np.asarray(stars.ra)[rows_c], np.asarray(stars.dec)[rows_c]
        model = fit_tan_sip(
            src.x[rows_s], src.y[rows_s], ra, dec, width=w, height=h, order=used, crval=model.crval
        )
        px, py = model.world2pix(ra, dec)
        rms = float(np.sqrt(np.mean((px - src.x[rows_s]) ** 2 + (py - src.y[rows_s]) ** 2)))
    return Refined(model, rows_s, rows_c, rms, near)
