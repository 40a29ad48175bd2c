"""astrometry.net's healpix tiles: which tiles of the sky a region touches.

The 4200 and 5200 index series split fine scales into healpix tiles and
number them in astrometry.net's own "XY" scheme (``index-5203-07.fits`` is
tile 7), which is neither HEALPix's RING nor its NESTED order.  Rather than
re-deriving that numbering, we ask astrometry.net's ``get-healpix`` (Debian
package astrometry.net, installed with the engine), so our tile numbers are
the engine's by construction.
"""

from __future__ import annotations

import re
import subprocess
from functools import lru_cache

from skysolve.errors import ConfigurationError, InvalidParameterError

_WITHIN = re.compile(r"Healpixes within radius \S+ degrees: \[([0-9 ]*)\]")

#: Binary that prints astrometry.net healpix numbers.
GET_HEALPIX = "get-healpix"


def tile_count(nside: int) -> int:
    """How many tiles cover the sky at this nside (12 nside^2)."""
    return 12 * nside * nside


def healpixes_within(ra: float, dec: float, radius: float, nside: int) -> tuple[int, ...]:
    """Tiles (astrometry.net XY numbering) within ``radius`` degrees of RA/Dec, sorted.

    A radius of 90 degrees or more is the whole sky.
    """
    if not (-90.0 <= dec <= 90.0) or not (radius >= 0.0):
        raise InvalidParameterError(f"bad position: dec {dec}, radius {radius}")
    if nside < 1:
        raise InvalidParameterError(f"bad healpix nside {nside}")
    if radius >= 90.0:
        return tuple(range(tile_count(nside)))
    # Rounding keeps the cache small for hints that differ in the 7th decimal.
    return _within(round(ra % 360.0, 6), round(dec, 6), round(radius, 6), nside)


@lru_cache(maxsize=1024)
def _within(ra: float, dec: float, radius: float, nside: int) -> tuple[int, ...]:
    command = [GET_HEALPIX, "-N", str(nside), "-R", repr(radius), "--", repr(ra), repr(dec)]
    try:
        done = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            command, capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise ConfigurationError(
            f"{GET_HEALPIX} not found: install the Debian package astrometry.net"
        ) from None
    found = _WITHIN.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise ConfigurationError(
            f"{GET_HEALPIX} failed ({done.returncode}): {done.stderr.strip() or done.stdout}"
        )
    return tuple(sorted({int(t) for t in found.group(1).split()}))
