"""Orders of a source list for a solver: astrometry.net's resort and uniformize."""

from __future__ import annotations

import math

import numpy as np

from skysolve.engine.results import SourceList

#: Cells for :func:`uniformize` when handing a source list to a solver
#: (astrometry.net's ``--uniformize`` default).  Measured with ``solve-field
#: --uniformize 0`` on sep's 1000 brightest sources of the shared images (wall
#: clock, loaded 2-core machine), uniformized vs brightest-first: apod2 6.1 vs
#: 18.9 s, apod3 4.6 vs 24.3 s, apod4 0.2 vs 0.1 s.  Extraction itself still
#: returns brightest first (the :class:`SourceList` contract); the solver asks.
SOLVER_UNIFORMIZE_CELLS = 10


def resort(sources: SourceList) -> SourceList:
    """astrometry.net's ``resort-xylist`` order, which ``solve-field`` applies.

    Two rankings, by flux above the local background and by the raw flux
    (flux + background), interleaved without repeats: brightest-by-flux, then
    brightest-by-raw-flux, and so on.  On processed pictures with nebulae the
    background model swallows part of the stars on the nebula and of the
    saturated bright ones, which the index holds; the raw ranking brings them
    back near the head of the list, where the engine builds its first quads.
    (On apod2.jpg, image2xy's list in flux order needs about 50 s of engine
    time, in this order 3 s.)  A list without backgrounds keeps its order.
    """
    n = len(sources)
    if n == 0 or sources.background is None:
        return sources
    flux = np.asarray(sources.flux, dtype=float)
    raw = flux + np.asarray(sources.background, dtype=float)
    by_flux = np.argsort(-flux, kind="stable")
    by_raw = np.argsort(-raw, kind="stable")
    interleaved = np.column_stack([by_flux, by_raw]).ravel()
    # The first occurrence of each source, in interleaved order.
    _, first = np.unique(interleaved, return_index=True)
    return sources.take(interleaved[np.sort(first)])


def uniformize(sources: SourceList, *, cells: int = 10) -> SourceList:
    """Reorder sources so that the first ones are spread over the whole field.

    The image is cut into about ``cells`` nearly square boxes; the result lists
    the brightest source of every box, then the second brightest of every box,
    and so on (within a round, brighter first).  This is astrometry.net's
    ``--uniformize`` ordering.

    Parameters
    ----------
    sources : SourceList
        Sources, brightest first.
    cells : int
        Approximate number of boxes; ``cells <= 1`` returns ``sources`` unchanged.

    Returns
    -------
    SourceList
        The same sources in the new order.
    """
    n = len(sources)
    if cells <= 1 or n == 0:
        return sources
    w, h = sources.width, sources.height
    nx = max(1, int(round(math.sqrt(cells * w / h))))
    ny = max(1, int(round(cells / nx)))
    x = np.asarray(sources.x, dtype=float)
    y = np.asarray(sources.y, dtype=float)
    ix = np.clip(((x - 0.5) / w * nx).astype(int), 0, nx - 1)
    iy = np.clip(((y - 0.5) / h * ny).astype(int), 0, ny - 1)
    cell = iy * nx + ix
    brightness_rank = np.arange(n)
    rank_in_cell = np.empty(n, dtype=int)
    for c in np.unique(cell):
        members = np.flatnonzero(cell == c)
        rank_in_cell[members] = np.arange(members.size)
    order = np.lexsort((brightness_rank, rank_in_cell))
    return sources.take(order)
