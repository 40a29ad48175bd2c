"""Pairing detected sources with projected catalogue stars, one to one, within a radius.

A grid of ``radius``-sized cells finds every pair within the radius in a few
milliseconds for thousands of points with numpy alone (scipy's tree costs half a
second to import, more than a fast-path solve).
"""

from __future__ import annotations

import math

import numpy as np


def pairs_within(
    x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (source, star) pair closer than ``radius``.

    Parameters
    ----------
    x, y : ndarray
        Source positions, pixels.
    px, py : ndarray
        Star positions, pixels (non-finite ones are ignored).
    radius : float
        Pixels, positive.

    Returns
    -------
    source_rows, star_rows, distance : ndarray
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    px, py = np.asarray(px, float), np.asarray(py, float)
    empty = np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp), np.zeros(0)
    ok = np.flatnonzero(np.isfinite(px) & np.isfinite(py))
    if len(x) == 0 or len(ok) == 0 or not radius > 0:
        return empty
    x0 = min(float(np.min(x)), float(np.min(px[ok]))) - radius
    y0 = min(float(np.min(y)), float(np.min(py[ok]))) - radius
    span = max(float(np.max(y)), float(np.max(py[ok]))) - y0 + 2 * radius
    rows = int(math.ceil(span / radius)) + 3
    sx, sy = ((px[ok] - x0) // radius).astype(np.int64), ((py[ok] - y0) // radius).astype(np.int64)
    key = sx * rows + sy
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    cx, cy = ((x - x0) // radius).astype(np.int64), ((y - y0) // radius).astype(np.int64)
    src_parts, star_parts = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            want = (cx + dx) * rows + (cy + dy)
            lo = np.searchsorted(sorted_key, want, side="left")
            hi = np.searchsorted(sorted_key, want, side="right")
            count = hi - lo
            has = np.flatnonzero(count > 0)
            if len(has) == 0:
                continue
            counts = count[has]
            total = int(counts.sum())
            # Positions lo..hi-1 of every source with candidates, flattened.
            starts = np.repeat(lo[has] - np.cumsum(counts) + counts, counts)
            pos = starts + np.arange(total)
            src_parts.append(np.repeat(has, counts))
            star_parts.append(order[pos])
    if not src_parts:
        return empty
    src = np.concatenate(src_parts)
    star = ok[np.concatenate(star_parts)]
    dist = np.hypot(x[src] - px[star], y[src] - py[star])
    keep = dist <= radius
    return src[keep], star[keep], dist[keep]


def match_one_to_one(
    x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Source and star rows paired one to one, closest pairs first, within ``radius``.

    Ties are broken by row numbers, so the same inputs give the same pairs on
    every run.  Returned sorted by source row.
    """
    src, star, dist = pairs_within(x, y, px, py, radius)
    if len(src) == 0:
        return src, star
    order = np.lexsort((star, src, dist))
    src, star = src[order], star[order]
    taken_src = np.zeros(len(x), dtype=bool)
    taken_star = np.zeros(len(px), dtype=bool)
    keep = np.zeros(len(src), dtype=bool)
    # A greedy pass in distance order; a few thousand pairs at most.
    for k in range(len(src)):
        i, j = src[k], star[k]
        if taken_src[i] or taken_star[j]:
            continue
        taken_src[i] = taken_star[j] = True
        keep[k] = True
    src, star = src[keep], star[keep]
    by_source = np.argsort(src, kind="stable")
    return src[by_source], star[by_source]
