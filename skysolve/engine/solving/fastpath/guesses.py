"""The fast path's field-of-view guesses: the blind ladder and the wide guesses added to it."""

from __future__ import annotations

import math

from skysolve.engine.solving.base import SolveConstraints
from skysolve.engine.solving.fastpath.database import DatabaseInfo

#: Ratio between neighbouring field-of-view guesses of a blind solve.
LADDER_STEP = 3.0
#: A scale hint spanning at most this ratio is searched in one bounded pass.
HINTED_RANGE = 2.5
#: Wide blind guesses are spaced by at most this much in ``tan(fov / 2) ** 2``.  A
#: guess makes tetra3rs turn pixels into angles through a pinhole of that field,
#: and across a wide field a wrong focal length bends the patterns as a radial
#: distortion does (a third-order term in ``tan(fov / 2) ** 2``); measured on
#: synthetic 20-70 degree pinhole fields and real ones, a guess finds fields
#: within about 0.1 of it in that measure (``apod4.jpg``, 34 degrees: guesses of
#: 25-40 degrees, not the ladder's 14.4 or 43.2).  Barrel distortion moves a
#: field the other way, as a narrower one: the spacing covers both.
WIDE_SPACING = 0.12
#: Below this field (degrees) the ladder's factor LADDER_STEP alone decides.
WIDE_FROM = 20.0
#: At most this many guesses past the ladder's widest (a database of very wide fields).
WIDE_EXTRA = 6
#: tetra3rs checks at most this many image patterns for an added wide guess: a
#: wide field matches within its first thousand (``apod4.jpg``: 500-1000), and a
#: field that matches none costs 2-10 ms per guess instead of 20-60.
WIDE_PATTERNS = 3000
#: ... and for a guess of the blind ladder: every corpus image the fast path
#: answers matched within its first thousand at the ladder's first guess
#: (``cedar_tree.jpg`` 300-1000, the rest within 300; docs/benchmarks.md), and
#: a miss checks tetra3rs's whole C(24, 4) = 10,626 patterns otherwise, 20-25 ms
#: a guess.
LADDER_PATTERNS = 3000

#: One FOV guess: widest side (deg), allowed error (None: any), pattern budget (None: tetra3rs's).
Guess = tuple[float, float | None, int | None]


def fov_guesses(info: DatabaseInfo, constraints: SolveConstraints, widest_px: int) -> list[Guess]:
    """(widest-side FOV, allowed error, pattern budget) to try, degrees."""
    lo_db, hi_db = info.min_fov, info.max_fov
    if constraints.scale_low is not None or constraints.scale_high is not None:
        lo = (constraints.scale_low or 0.0) * widest_px / 3600.0
        hi = (constraints.scale_high or math.inf) * widest_px / 3600.0
        lo, hi = max(lo, lo_db / 1.1), min(hi, hi_db * 1.1)
        if lo > hi:
            return []
        if hi / max(lo, 1e-9) <= HINTED_RANGE:
            return [((lo + hi) / 2.0, (hi - lo) / 2.0 + 0.02 * hi, None)]
        lo_db, hi_db = lo, hi
    # Without a bound on the FOV error tetra3rs matches patterns of any size
    # and uses the estimate only to pick its database level.  Measured on
    # the 4-70 degree database: a guess finds fields from about 0.7 to 3
    # times its width (wider more readily than narrower) in 1-50 ms, where
    # a bounded sweep of the same range costs ten times more.  So a few
    # guesses, narrow first, a factor LADDER_STEP apart.
    ladder: list[float] = []
    fov = min(lo_db * 1.2, hi_db)
    while True:
        ladder.append(fov)
        if fov * math.sqrt(LADDER_STEP) >= hi_db:
            break
        fov = min(fov * LADDER_STEP, hi_db)
    return [
        (fov, None, LADDER_PATTERNS if fov in ladder else WIDE_PATTERNS)
        for fov in wide_ladder(ladder, lo_db, hi_db)
    ]


def _bend(fov: float) -> float:
    """``tan(fov / 2) ** 2``: how much a pinhole of ``fov`` degrees bends across its field."""
    return math.tan(math.radians(min(fov, 170.0)) / 2.0) ** 2


def _unbend(bend: float) -> float:
    return 2.0 * math.degrees(math.atan(math.sqrt(max(bend, 0.0))))


def wide_ladder(ladder: list[float], lo: float, hi: float) -> list[float]:
    """The blind ladder with guesses added where fields are wide, ascending.

    Between neighbouring guesses wider than :data:`WIDE_FROM` degrees, and from
    the widest one to ``hi``, guesses are added so that no field from ``lo`` to
    ``hi`` is farther than about ``WIDE_SPACING / 2`` (in :func:`_bend`) from
    one (see :data:`WIDE_SPACING`).  The ladder's own guesses stay, in their
    order, so a field found today is found by the same guess.
    """
    out: list[float] = []
    for fov in sorted(ladder):
        if out and fov > WIDE_FROM:
            low = max(out[-1], lo)
            gaps = math.ceil((_bend(fov) - _bend(low)) / WIDE_SPACING - 1e-9)
            for i in range(1, gaps):
                out.append(_unbend(_bend(low) + i * (_bend(fov) - _bend(low)) / gaps))
        out.append(fov)
    # Past the widest guess, which finds fields about WIDE_SPACING wider (in
    # _bend), one more guess each WIDE_SPACING up to the database's widest.
    top = _bend(hi)
    added = 0
    while out and _bend(out[-1]) + WIDE_SPACING < top and added < WIDE_EXTRA:
        out.append(_unbend(_bend(out[-1]) + WIDE_SPACING))
        added += 1
    return out
