"""The centre and pixel scale of a plain TAN header's WCS, without astropy.

A frame whose header carries an earlier solve (a Seestar's after ASTAP, most
solved FITS files) hints its own position and scale; astropy's WCS reads it
with ``astropy.wcs``, ``astropy.io.fits`` and ``astropy.table`` (a quarter of
a second to import, most of a blind solve that astrometry.net answers).  The
common header is simple: ``RA---TAN``/``DEC--TAN``, a CD matrix or PC and
CDELT, degrees, no distortion.  :func:`tan_centre_and_scale` reads such a
header as astropy does; anything else gives None and astropy reads it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_CD = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
_PC = ("PC1_1", "PC1_2", "PC2_1", "PC2_2")
#: Keywords that change what astropy makes of the header: other matrix
#: spellings, rotations, projection parameters, distortions, a third axis.
_OTHER = re.compile(
    r"(CROTA|PC0|CD0|PV\d|PS\d|PROJP|A_|B_|AP_|BP_|CPDIS|CQDIS|DP\d|DQ\d|D2IM|CTYPE[3-9]|WCSAXES)"
)


def tan_centre_and_scale(
    header: Mapping[str, Any], width: int, height: int
) -> tuple[float, float, float] | None:
    """RA and Dec (degrees) of the image centre and the pixel scale (arcsec per
    pixel, the geometric mean of astropy's ``proj_plane_pixel_scales``), or None
    when the header is not a plain TAN WCS."""
    get = header.get
    if (get("CTYPE1"), get("CTYPE2")) != ("RA---TAN", "DEC--TAN"):
        return None
    for key in header:
        if _OTHER.match(key) and not (key == "WCSAXES" and get(key) == 2):
            return None
    if any(get(f"CUNIT{i}", "deg") != "deg" for i in (1, 2)):
        return None
    if _number(get("LONPOLE", 180.0)) != 180.0:
        return None
    if any(key in header for key in _CD):
        if any(key in header for key in (*_PC, "CDELT1", "CDELT2")):
            return None
        matrix = [_number(get(key, 0.0)) for key in _CD]
    else:
        # astropy's defaults: the identity's elements for a missing PC element.
        pc = [_number(get(key, float(key in ("PC1_1", "PC2_2")))) for key in _PC]
        cdelt = [_number(get("CDELT1")), _number(get("CDELT2"))]
        matrix = [
            None if p is None or c is None else c * p
            for p, c in zip(pc, [cdelt[0], cdelt[0], cdelt[1], cdelt[1]], strict=True)
        ]
    numbers = [_number(get(key)) for key in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2")]
    values = [v for v in (*matrix, *numbers) if v is not None]
    if len(values) != 8:
        return None
    c11, c12, c21, c22, ra0, dec0, crpix1, crpix2 = values
    if abs(dec0) >= 90.0 or c11 * c22 - c12 * c21 == 0.0:
        return None
    # The standard coordinates of the centre pixel, then the inverse gnomonic
    # projection about (CRVAL1, CRVAL2) with LONPOLE 180.
    u, v = (width + 1) / 2.0 - crpix1, (height + 1) / 2.0 - crpix2
    xi, eta = math.radians(c11 * u + c12 * v), math.radians(c21 * u + c22 * v)
    d0 = math.radians(dec0)
    across = math.cos(d0) - eta * math.sin(d0)
    ra = (ra0 + math.degrees(math.atan2(xi, across))) % 360.0
    dec = math.degrees(math.atan2(math.sin(d0) + eta * math.cos(d0), math.hypot(xi, across)))
    scale = math.sqrt(math.hypot(c11, c21) * math.hypot(c12, c22)) * 3600.0
    return ra, dec, scale


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
