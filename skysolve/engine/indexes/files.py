"""Reading astrometry.net index files' headers and finding the installed ones.

Each index file stores "quads" (groups of four stars) whose diameter lies in a
known range, written in its primary header as SCALE_L/SCALE_U (radians).  A
field can only be matched by an index whose quads fit inside it and are not
lost in its noise, so the scale range a solve allows decides which indexes are
worth loading (:mod:`~skysolve.engine.indexes.choosing`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skysolve.engine.config import DEFAULT_INDEX_DIRS
from skysolve.errors import ConfigurationError

log = logging.getLogger(__name__)


#: astrometry.net skips quads smaller than this fraction of the image's smaller side.
MIN_QUAD_FRACTION = 0.1

RAD_TO_ARCSEC = 180.0 / math.pi * 3600.0


@dataclass(frozen=True)
class IndexFile:
    """One index file and the quad diameters it holds, in arcseconds."""

    path: Path
    index_id: int
    scale_lower: float
    scale_upper: float
    healpix: int
    nside: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    @property
    def series(self) -> int | None:
        """astrometry.net's series (4100, 4200, 5200...): the index id without its scale."""
        return (self.index_id // 100) * 100 if self.index_id >= 100 else None

    @property
    def scale_number(self) -> int | None:
        """The scale number (0-19): the last two digits of the index id."""
        return self.index_id % 100 if self.index_id >= 100 else None

    @property
    def tiled(self) -> bool:
        """Whether this file holds one healpix tile of the sky rather than all of it."""
        return self.healpix >= 0 and self.nside > 0

    def can_match(
        self, *, width: float, height: float, scale_low: float, scale_high: float
    ) -> bool:
        """Whether quads of this index can appear in an image of this size.

        ``scale_low``/``scale_high`` are the pixel-scale bounds in arcsec/pixel
        (``scale_high`` may be infinite).
        """
        smallest_useful = MIN_QUAD_FRACTION * min(width, height) * scale_low
        largest_possible = math.hypot(width, height) * scale_high
        return self.scale_upper >= smallest_useful and self.scale_lower <= largest_possible


def read_index_header(path: Path) -> IndexFile:
    """Read an index file's identity and scale range from its primary header."""
    from skysolve.engine.inputs.fitscards import HeaderCards

    header: Any = None
    try:
        with open(path, "rb") as fh:
            # Read without astropy (its import is a quarter of a second of a
            # blind solve that astrometry.net answers); astropy reads the rest.
            header = HeaderCards.read(fh)
        if header is None:
            from astropy.io import fits

            header = fits.getheader(path, 0)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"{path} is not a readable astrometry.net index file: {exc}"
        ) from None
    try:
        lower = float(header["SCALE_L"]) * RAD_TO_ARCSEC
        upper = float(header["SCALE_U"]) * RAD_TO_ARCSEC
        index_id = int(header.get("INDEXID", -1))
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError(f"{path} has no SCALE_L/SCALE_U: not an index file") from None
    return IndexFile(
        path=path,
        index_id=index_id,
        scale_lower=lower,
        scale_upper=upper,
        healpix=int(header.get("HEALPIX", -1)),
        nside=int(header.get("HPNSIDE", 0)),
    )


#: Headers already read, by path, size and modification time: a directory
#: listing is re-read on every solve (so a running service sees files that
#: ``skysolve index fetch`` moved in), but an unchanged file's header is not.
_HEADERS: dict[tuple[Path, int, int], IndexFile] = {}


def _scan(dirs: tuple[Path, ...]) -> tuple[IndexFile, ...]:
    found: list[IndexFile] = []
    seen: set[tuple[Path, int, int]] = set()
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("index-*.fits")):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # removed while we listed the directory
            key = (path, st.st_size, st.st_mtime_ns)
            seen.add(key)
            index = _HEADERS.get(key)
            if index is None:
                try:
                    index = _HEADERS[key] = read_index_header(path)
                except ConfigurationError as exc:
                    # One damaged file must not stop every solve; `skysolve
                    # index verify` names it.
                    log.warning("skipping %s", exc)
                    continue
            found.append(index)
    for stale in set(_HEADERS) - seen:
        if stale[0].parent in dirs:
            del _HEADERS[stale]
    return tuple(sorted(found, key=lambda ix: (ix.scale_lower, ix.name)))


def find_indexes(
    dirs: Iterable[Path] = DEFAULT_INDEX_DIRS, *, allow_empty: bool = False
) -> tuple[IndexFile, ...]:
    """All index files in ``dirs``, finest scale first.

    The directories are listed on every call, so files added or removed while
    a service runs are seen by its next solve.  Raises
    :class:`~skysolve.errors.ConfigurationError` when there are none (unless
    ``allow_empty``), with the Debian package that provides them.
    """
    dirs_t = tuple(Path(d) for d in dirs)
    found = _scan(dirs_t)
    if not found and not allow_empty:
        where = ", ".join(str(d) for d in dirs_t) or "(no directories configured)"
        raise ConfigurationError(
            f"no astrometry.net index files (index-*.fits) in {where}; "
            "install the Debian package astrometry-data-tycho2, run "
            "`skysolve index recommend` to see which files to fetch, "
            "or set SKYSOLVE_INDEX_DIRS"
        )
    return found


def field_range_arcmin(indexes: Sequence[IndexFile]) -> tuple[float, float]:
    """The field widths (arcmin) these indexes serve, by astrometry.net's rule.

    A field is served by an index whose quads are 10% to 100% of its size, so
    quads of ``lo``-``hi`` serve fields of ``lo`` to ``10 * hi`` (capped at the
    whole sky's 180 degrees).
    """
    lo = min(ix.scale_lower for ix in indexes) / 60.0
    hi = max(ix.scale_upper for ix in indexes) / 60.0
    return lo, min(10.0 * hi, 180.0 * 60.0)


def describe_coverage(indexes: Sequence[IndexFile]) -> str:
    """ "fields of about 22' to 180 deg (quads of 22' to 2000')", for messages."""
    if not indexes:
        return "no index files are installed"
    lo, hi = field_range_arcmin(indexes)
    qlo = min(ix.scale_lower for ix in indexes) / 60.0
    qhi = max(ix.scale_upper for ix in indexes) / 60.0
    return (
        f"the installed index files cover fields of about {format_arcmin(lo)} to "
        f"{format_arcmin(hi)} (quads of {format_arcmin(qlo)} to {format_arcmin(qhi)})"
    )


def format_arcmin(arcmin: float) -> str:
    """An angle for people: arcminutes below 2 degrees, degrees above."""
    if arcmin >= 120.0:
        return f"{arcmin / 60.0:.3g} deg"
    return f"{arcmin:.3g}'"
