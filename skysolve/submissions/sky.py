"""Where a solved field is on the sky, as columns an ordinary B-tree index serves.

Position search uses a HEALPix index (the sky's standard equal-area pixel
grid, nested numbering): each solved job stores the pixel of its centre at a
fine level (:data:`DEPTH`, 3.2″ pixels) in ``Job.sky_pixel`` and a class of
its field radius in ``Job.sky_size``.  A cone on the sky is covered by a few
dozen coarser pixels, and a coarse pixel is one contiguous range of fine
pixel numbers, so "centres within r of a point" is a handful of range scans
of the index ``(sky_size, sky_pixel)`` on SQLite and PostgreSQL alike, with no
database extension.  Rows found by the ranges are then checked with the exact
great-circle distance.  The radius class lets "fields that contain this
point" look for the centres of small fields near the point only, and for
those of wide fields farther out.
"""

from __future__ import annotations

import math
from functools import lru_cache

import astropy.units as u
import numpy as np
from astropy_healpix import HEALPix

#: Level of the stored pixel numbers: nside 2**16, pixels about 3.2 arcsec wide.
DEPTH = 16
#: Upper bound (degrees) of the field radius of each ``sky_size`` class.
SIZE_LIMITS: tuple[float, ...] = (0.25, 1.0, 4.0, 16.0, 180.0)
#: Most ranges a cone is covered by; coarser pixels are used past this.
_MAX_PIXELS = 64


@lru_cache(maxsize=DEPTH + 1)
def _grid(depth: int) -> HEALPix:
    return HEALPix(nside=2**depth, order="nested")


def size_class(radius: float) -> int:
    """The ``sky_size`` of a field of this radius (degrees)."""
    for number, limit in enumerate(SIZE_LIMITS):
        if radius <= limit:
            return number
    return len(SIZE_LIMITS) - 1


def sky_columns(ra: float | None, dec: float | None, radius: float | None) -> dict[str, int | None]:
    """``sky_pixel`` and ``sky_size`` of a field centred at (ra, dec); None without a centre."""
    if ra is None or dec is None or not (math.isfinite(ra) and math.isfinite(dec)):
        return {"sky_pixel": None, "sky_size": None}
    pixels = pixels_of(np.array([ra]), np.array([dec]))
    return {"sky_pixel": int(pixels[0]), "sky_size": size_class(radius or 0.0)}


def pixels_of(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Fine-level pixel numbers of many centres at once (degrees in, int64 out)."""
    lat = np.clip(np.asarray(dec, dtype=float), -90.0, 90.0)
    lon = np.mod(np.asarray(ra, dtype=float), 360.0)
    return np.asarray(_grid(DEPTH).lonlat_to_healpix(lon * u.deg, lat * u.deg), dtype=np.int64)


def cone_ranges(ra: float, dec: float, radius: float) -> list[tuple[int, int]]:
    """Half-open ranges of fine pixel numbers that hold every centre within ``radius``.

    The cone is covered by pixels of the finest level that needs at most
    about :data:`_MAX_PIXELS` of them (astropy-healpix returns every pixel the
    cone touches, so nothing inside is missed); each covers a contiguous run
    of fine pixels, and neighbouring runs are merged.
    """
    radius = min(max(radius, 0.0), 180.0)
    # A pixel of level d is about 58.6 / 2**d degrees wide: pick the level at
    # which the cone spans a few pixels across.
    depth = 0 if radius <= 0 else int(math.floor(math.log2(58.6 / max(radius, 1e-6)))) - 1
    depth = max(0, min(DEPTH, depth))
    while True:
        pixels = _grid(depth).cone_search_lonlat(
            (ra % 360.0) * u.deg, max(-90.0, min(90.0, dec)) * u.deg, radius * u.deg
        )
        if len(pixels) <= _MAX_PIXELS or depth == 0:
            break
        depth -= 1
    shift = 2 * (DEPTH - depth)
    ranges: list[tuple[int, int]] = []
    for pixel in sorted(int(p) for p in pixels):
        lo, hi = pixel << shift, (pixel + 1) << shift
        if ranges and ranges[-1][1] == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges
