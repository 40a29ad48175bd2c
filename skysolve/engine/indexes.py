"""Finding astrometry.net index files and choosing the ones a solve can use.

Each index file stores "quads" (groups of four stars) whose diameter lies in a
known range, written in its primary header as SCALE_L/SCALE_U (radians).  A
field can only be matched by an index whose quads fit inside it and are not
lost in its noise, so the scale range a solve allows decides which indexes are
worth loading.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from astropy.io import fits

from skysolve.errors import ConfigurationError, NoIndexError

#: Where Debian's astrometry-data-* packages put their index files.
DEFAULT_INDEX_DIRS: tuple[Path, ...] = (Path("/usr/share/astrometry"),)

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
    try:
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


@lru_cache(maxsize=16)
def _scan(dirs: tuple[Path, ...]) -> tuple[IndexFile, ...]:
    found: list[IndexFile] = []
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("index-*.fits")):
            found.append(read_index_header(path))
    return tuple(sorted(found, key=lambda ix: (ix.scale_lower, ix.name)))


def find_indexes(dirs: Iterable[Path] = DEFAULT_INDEX_DIRS) -> tuple[IndexFile, ...]:
    """All index files in ``dirs``, finest scale first.

    Raises :class:`~skysolve.errors.ConfigurationError` when there are none, with
    the Debian package that provides them.
    """
    dirs_t = tuple(Path(d) for d in dirs)
    found = _scan(dirs_t)
    if not found:
        where = ", ".join(str(d) for d in dirs_t) or "(no directories configured)"
        raise ConfigurationError(
            f"no astrometry.net index files (index-*.fits) in {where}; "
            "install the Debian package astrometry-data-tycho2 or set SKYSOLVE_INDEX_DIRS"
        )
    return found


def select_indexes(
    indexes: Sequence[IndexFile],
    *,
    width: float,
    height: float,
    scale_low: float,
    scale_high: float,
) -> list[IndexFile]:
    """The indexes whose quads can match an image of this size and scale range.

    Raises :class:`~skysolve.errors.NoIndexError` naming the range the installed
    indexes cover when none can.
    """
    chosen = [
        ix
        for ix in indexes
        if ix.can_match(width=width, height=height, scale_low=scale_low, scale_high=scale_high)
    ]
    if not chosen:
        lo = min(ix.scale_lower for ix in indexes) / 60.0
        hi = max(ix.scale_upper for ix in indexes) / 60.0
        raise NoIndexError(
            f"no index file can match a {width:g}x{height:g} pixel image at "
            f"{scale_low:.4g}-{scale_high:.4g} arcsec/pixel: the installed indexes hold quads "
            f"of {lo:.3g}' to {hi:.3g}'"
        )
    return chosen


def split_for_processes(indexes: Sequence[IndexFile], groups: int) -> list[list[IndexFile]]:
    """Deal indexes out to ``groups`` solver processes, alternating by scale.

    Neighbouring scales usually both can solve a field, so alternating gives
    every process a candidate at every scale and roughly equal work (the
    finest indexes are by far the largest; dealing them first spreads them).
    """
    groups = max(1, min(groups, len(indexes)))
    by_size = sorted(indexes, key=lambda ix: ix.scale_lower)
    out: list[list[IndexFile]] = [[] for _ in range(groups)]
    for i, ix in enumerate(by_size):
        out[i % groups].append(ix)
    return [g for g in out if g]
