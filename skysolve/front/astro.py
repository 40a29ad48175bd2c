"""Small sky-coordinate helpers for the web pages (no Django, no astropy).

The pages need sexagesimal text, parsing of what people type into RA/Dec boxes,
angular distances for the cone search and a Hammer-Aitoff projection for the
sky map; astropy would do all of it but costs a lot of import time per request
path for very little arithmetic.
"""

from __future__ import annotations

import math
import re

_SEP = re.compile(r"[\s:hdmsHDMS°'\"′″]+")


def ra_hms(ra_deg: float) -> str:
    """RA in degrees as ``12h 28m 44.41s``."""
    total = (ra_deg % 360.0) / 15.0 * 3600.0
    total = round(total, 2)
    if total >= 24 * 3600:
        total -= 24 * 3600
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{int(hours):02d}h {int(minutes):02d}m {seconds:05.2f}s"


def dec_dms(dec_deg: float) -> str:
    """Dec in degrees as ``+56° 42′ 48.1″``."""
    sign = "-" if dec_deg < 0 else "+"
    total = round(abs(dec_deg) * 3600.0, 1)
    degrees, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{int(degrees):02d}° {int(minutes):02d}′ {seconds:04.1f}″"


def angle_text(degrees: float) -> str:
    """A field size in the unit people read most easily at that size."""
    if degrees >= 1.0:
        return f"{degrees:.3g}°"
    if degrees * 60 >= 1.0:
        return f"{degrees * 60:.3g}′"
    return f"{degrees * 3600:.3g}″"


def _sexagesimal(text: str) -> float | None:
    """``dd:mm:ss`` (any separators) as a positive number of units, None if not one."""
    parts = [p for p in _SEP.split(text.strip()) if p]
    if not 1 <= len(parts) <= 3:
        return None
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return None
    if any(v < 0 for v in values) or any(v >= 60 for v in values[1:]):
        return None
    return sum(v / 60**i for i, v in enumerate(values))


def parse_ra(text: str) -> float:
    """RA as decimal degrees, or as hours when written ``hh:mm:ss`` / ``12h28m44s``.

    Raises ValueError with a message fit for a form.
    """
    raw = text.strip()
    try:
        value = float(raw)
    except ValueError:
        hours = _sexagesimal(raw.lstrip("+"))
        if hours is None or hours >= 24:
            raise ValueError(
                "RA must be degrees (187.2) or hours:minutes:seconds (12:28:44)"
            ) from None
        return hours * 15.0
    if not 0.0 <= value < 360.0 or not math.isfinite(value):
        raise ValueError("RA in degrees must be in [0, 360)")
    return value


def parse_dec(text: str) -> float:
    """Dec as decimal degrees, or ``±dd:mm:ss``.  Raises ValueError."""
    raw = text.strip()
    try:
        value = float(raw)
    except ValueError:
        negative = raw.startswith("-") or raw.startswith("−")
        magnitude = _sexagesimal(raw.lstrip("+-−"))
        if magnitude is None:
            raise ValueError(
                "Dec must be degrees (56.7) or degrees:minutes:seconds (+56:42:48)"
            ) from None
        value = -magnitude if negative else magnitude
    if not -90.0 <= value <= 90.0 or not math.isfinite(value):
        raise ValueError("Dec must be in [-90, 90]")
    return value


def angular_distance(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees (haversine: exact for small angles too)."""
    p1, p2 = math.radians(dec1), math.radians(dec2)
    dp = p2 - p1
    dl = math.radians(ra2 - ra1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def ra_ranges(ra: float, dec: float, radius: float) -> list[tuple[float, float]] | None:
    """RA intervals (degrees) that hold every point within ``radius`` of (ra, dec).

    None means every RA (the cone touches a pole).  An interval crossing RA 0
    is split in two so each can be a plain database range filter.
    """
    if abs(dec) + radius >= 89.999:
        return None
    half = math.degrees(
        math.asin(min(1.0, math.sin(math.radians(radius)) / math.cos(math.radians(dec))))
    )
    if half >= 180.0:
        return None
    lo, hi = (ra - half) % 360.0, (ra + half) % 360.0
    if lo <= hi:
        return [(lo, hi)]
    return [(lo, 360.0), (0.0, hi)]


def hammer(ra: float, dec: float) -> tuple[float, float]:
    """Hammer-Aitoff x in [-2√2, 2√2], y in [-√2, √2]; RA 180° at the centre.

    RA grows to the left, as on the sky seen from inside the sphere.
    """
    lam = math.radians(((180.0 - ra) + 180.0) % 360.0 - 180.0)
    phi = math.radians(dec)
    d = math.sqrt(1 + math.cos(phi) * math.cos(lam / 2))
    x = 2 * math.sqrt(2) * math.cos(phi) * math.sin(lam / 2) / d
    y = math.sqrt(2) * math.sin(phi) / d
    return x, y


def small_circle(ra: float, dec: float, radius: float, n: int = 72) -> list[tuple[float, float]]:
    """Points (ra, dec) of the circle at angular ``radius`` around (ra, dec)."""
    a0, d0, r = math.radians(ra), math.radians(dec), math.radians(radius)
    points = []
    for i in range(n + 1):
        bearing = 2 * math.pi * i / n
        d = math.asin(math.sin(d0) * math.cos(r) + math.cos(d0) * math.sin(r) * math.cos(bearing))
        a = a0 + math.atan2(
            math.sin(bearing) * math.sin(r) * math.cos(d0),
            math.cos(r) - math.sin(d0) * math.sin(d),
        )
        points.append((math.degrees(a) % 360.0, math.degrees(d)))
    return points
