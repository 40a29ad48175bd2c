"""Choosing the index files a solve loads, and saying what to install when none fits.

A field can only be matched by an index whose quads fit inside it and are not
lost in its noise, so the scale range a solve allows decides which indexes are
worth loading (:func:`select_indexes`); a hint's position narrows the tiled
ones further.  When nothing fits, the error names the ``skysolve index fetch``
command that would fix it (from :mod:`~skysolve.engine.indexes.series`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from skysolve.engine.indexes.files import IndexFile, describe_coverage, format_arcmin
from skysolve.engine.indexes.series import fix_command
from skysolve.errors import NoIndexError


def select_indexes(
    indexes: Sequence[IndexFile],
    *,
    width: float,
    height: float,
    scale_low: float,
    scale_high: float,
    center: tuple[float, float] | None = None,
    radius: float | None = None,
) -> list[IndexFile]:
    """The indexes whose quads can match an image of this size and scale range.

    With a position hint (``center`` RA/Dec and search ``radius``, degrees),
    a tiled index (one healpix of the sky, as the 4200 and 5200 series at
    fine scales) is kept only when its tile comes within the search radius
    plus the field's half-diagonal.  Raises :class:`~skysolve.errors.NoIndexError`
    naming the field size, what the installed indexes cover and the
    ``skysolve index`` command that would fetch what is missing.
    """
    chosen = [
        ix
        for ix in indexes
        if ix.can_match(width=width, height=height, scale_low=scale_low, scale_high=scale_high)
    ]
    reach: float | None = None
    if center is not None and radius is not None and math.isfinite(scale_high):
        field_radius = math.hypot(width, height) / 2.0 * scale_high / 3600.0
        reach = radius + field_radius
        chosen = _near(chosen, center, reach)
    if not chosen:
        raise NoIndexError(
            no_index_message(
                indexes,
                width=width,
                height=height,
                scale_low=scale_low,
                scale_high=scale_high,
                center=center,
                radius=reach,
            )
        )
    return chosen


def _near(indexes: list[IndexFile], center: tuple[float, float], reach: float) -> list[IndexFile]:
    """Whole-sky indexes, and tiled ones whose tile comes within ``reach`` degrees."""
    from skysolve.engine.indexes.healpix import healpixes_within

    if reach >= 90.0:
        return indexes
    kept = []
    for ix in indexes:
        if not ix.tiled:
            kept.append(ix)
        elif ix.healpix in healpixes_within(center[0], center[1], reach, ix.nside):
            kept.append(ix)
    return kept


def no_index_message(
    indexes: Sequence[IndexFile],
    *,
    width: float,
    height: float,
    scale_low: float,
    scale_high: float,
    center: tuple[float, float] | None = None,
    radius: float | None = None,
) -> str:
    """Why no index can match, and the command that would fix it."""
    lo_arcmin = width * scale_low / 60.0
    hi_arcmin = width * scale_high / 60.0
    if math.isfinite(hi_arcmin) and hi_arcmin > 0:
        size = (
            f"a field {format_arcmin(lo_arcmin)} to {format_arcmin(hi_arcmin)} wide "
            f"({width:g}x{height:g} pixels at {scale_low:.4g}-{scale_high:.4g} arcsec/pixel)"
        )
    else:
        size = f"a {width:g}x{height:g} pixel image at {scale_low:.4g}+ arcsec/pixel"
    where = ""
    if center is not None and radius is not None:
        where = f" within {radius:.3g} deg of RA {center[0]:.4f} Dec {center[1]:.4f}"
    message = f"no installed index file can match {size}{where}: {describe_coverage(indexes)}"
    if math.isfinite(hi_arcmin) and hi_arcmin > 0:
        command = fix_command(
            max(lo_arcmin, 1e-3) / 60.0,
            hi_arcmin / 60.0,
            installed=indexes,
            center=center,
            radius=radius,
        )
        if command:
            message += f". Install index files for it with: {command}"
    return message


#: With a field likely narrower than ``narrower_than`` degrees, the indexes whose
#: quads are at most this share of that width get a process of their own.
NARROW_QUAD_SHARE = 1.0 / 3.0


def narrow_indexes(indexes: Sequence[IndexFile], narrower_than: float | None) -> list[IndexFile]:
    """The indexes whose quads are at most :data:`NARROW_QUAD_SHARE` of
    ``narrower_than`` degrees, narrowest first (none when it is None)."""
    if narrower_than is None:
        return []
    most = narrower_than * 3600.0 * NARROW_QUAD_SHARE
    by_size = sorted(indexes, key=lambda ix: ix.scale_lower)
    return [ix for ix in by_size if ix.scale_upper <= most * (1.0 + 1e-6)]


def split_for_processes(
    indexes: Sequence[IndexFile], groups: int, *, narrower_than: float | None = None
) -> list[list[IndexFile]]:
    """Deal indexes out to ``groups`` solver processes, alternating by scale.

    Neighbouring scales usually both can solve a field, so alternating gives
    every process a candidate at every scale and roughly equal work (the
    finest indexes are by far the largest; dealing them first spreads them).

    ``narrower_than`` (degrees): the field is likely narrower than that (the
    fast path's blind search of wider fields missed).  The indexes whose quads
    are at most :data:`NARROW_QUAD_SHARE` of it then get one more process of
    their own, first, and the others are dealt to ``groups`` processes as
    without: the narrow ones finish within a fraction of a second, and a wide
    field the fast path missed (a distorted lens) keeps all its processes
    (``oresat_img_7660`` without the fast path and with the wide indexes in one
    process took 3.8-7.3 s, dealt to two 2.3-4.3 s, as without the narrow
    split 2.3-3.3 s; docs/benchmarks.md).  A blind search checks every index at
    each depth of field stars (the engine's ``inparallel``), and the
    wide-quad indexes cost a small field the most: on a 2-degree frame
    (``panoptes_unsolved``) the Tycho-2 indexes 07-09 together answer in
    about 0.1 s, 11 alone in 0.2-0.3 s, 12 not in 120 s, and each of the two
    alternating halves in 0.45-0.6 s (docs/benchmarks.md).
    """
    groups = max(1, min(groups, len(indexes)))
    by_size = sorted(indexes, key=lambda ix: ix.scale_lower)
    if groups >= 2:
        narrow = narrow_indexes(by_size, narrower_than)
        rest = [ix for ix in by_size if ix not in narrow]
        if narrow and rest:
            return [narrow, *split_for_processes(rest, groups)]
    out: list[list[IndexFile]] = [[] for _ in range(groups)]
    for i, ix in enumerate(by_size):
        out[i % groups].append(ix)
    return [g for g in out if g]
