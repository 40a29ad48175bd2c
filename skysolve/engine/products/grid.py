"""The RA/Dec grid of a picture: its step and the lines a WCS puts across the image.

Pure geometry (no drawing): :func:`choose_grid_step` picks a round step that
gives three to eight lines across the field, :func:`grid_lines` traces the
lines of constant RA and Dec through the image;
:mod:`~skysolve.engine.products.pictures` draws them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from skysolve.errors import BadInputError

#: Candidate RA/Dec grid spacings, degrees.
GRID_STEPS_DEG: tuple[float, ...] = (
    1 / 60,
    2 / 60,
    5 / 60,
    10 / 60,
    15 / 60,
    30 / 60,
    1.0,
    2.0,
    5.0,
    10.0,
    15.0,
    30.0,
)
#: Most grid lines wanted across the field in each direction.
MAX_GRID_LINES = 8


def choose_grid_step(extent_deg: float) -> float:
    """The finest spacing of :data:`GRID_STEPS_DEG` giving at most 8 lines over ``extent_deg``.

    Parameters
    ----------
    extent_deg : float
        Extent of the field along one coordinate, degrees.

    Returns
    -------
    float
        Grid spacing in degrees; fields of any width get 3 to 8 lines except
        fields smaller than 3 arcmin (the finest step is 1') and larger than
        240 degrees (the coarsest is 30).
    """
    if not (extent_deg > 0 and math.isfinite(extent_deg)):
        raise BadInputError(f"field extent must be a positive number, not {extent_deg!r}")
    for step in GRID_STEPS_DEG:
        if extent_deg / step <= MAX_GRID_LINES:
            return step
    return GRID_STEPS_DEG[-1]


def _ra_arc(ra: np.ndarray) -> tuple[float, float]:
    """Start and length (deg) of the shortest RA arc covering all ``ra``."""
    s = np.sort(np.mod(ra, 360.0))
    gaps = np.diff(np.r_[s, s[0] + 360.0])
    k = int(np.argmax(gaps))
    start = s[(k + 1) % len(s)]
    return float(start), float(360.0 - gaps[k])


def _inside_image(wcs: WCS, ra: float, dec: float, width: int, height: int) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pix = wcs.all_world2pix([[ra, dec]], 1, quiet=True)[0]
    if not np.all(np.isfinite(pix)):
        return False
    back = wcs.all_pix2world([pix], 1)[0]
    if abs(back[1] - dec) > 1e-3:
        return False
    return bool(0.5 <= pix[0] <= width + 0.5 and 0.5 <= pix[1] <= height + 0.5)


@dataclass(frozen=True)
class GridLine:
    """One RA or Dec line: its kind ("ra"/"dec"), value (deg) and 1-based pixel polylines."""

    kind: str
    value: float
    segments: list[np.ndarray]  # each (N, 2) x, y


def grid_lines(wcs: WCS, width: int, height: int) -> list[GridLine]:
    """RA and Dec lines crossing an image, as pixel polylines.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial WCS, 1-based FITS pixels; SIP honoured.
    width, height : int
        Image size.

    Returns
    -------
    list of GridLine
        Lines at multiples of :func:`choose_grid_step` spacings (RA spacing
        chosen from the RA extent, which grows towards the poles); polylines
        are cut where they leave the image by more than a tenth of its size or
        where the WCS cannot be inverted.  Fields containing a pole get RA
        lines all round and Dec circles; RA wraps at 0/360.
    """
    nx, ny = 33, 25
    gx, gy = np.meshgrid(np.linspace(0.5, width + 0.5, nx), np.linspace(0.5, height + 0.5, ny))
    world = wcs.all_pix2world(np.column_stack([gx.ravel(), gy.ravel()]), 1)
    world = world[np.all(np.isfinite(world), axis=1)]
    if len(world) == 0:
        return []
    dec_min, dec_max = float(world[:, 1].min()), float(world[:, 1].max())
    north = _inside_image(wcs, 0.0, 90.0, width, height)
    south = _inside_image(wcs, 0.0, -90.0, width, height)
    if north:
        dec_max = 90.0
    if south:
        dec_min = -90.0
    if north or south:
        ra_start, ra_len = 0.0, 360.0
    else:
        ra_start, ra_len = _ra_arc(world[:, 0])
    dec_step = choose_grid_step(dec_max - dec_min)
    ra_step = choose_grid_step(max(ra_len, 1e-6))

    lines: list[GridLine] = []
    margin_x, margin_y = 0.1 * width, 0.1 * height
    pixscale = math.sqrt(abs(float(np.linalg.det(wcs.celestial.pixel_scale_matrix))))

    def trace(ra: np.ndarray, dec: np.ndarray) -> list[np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pix = wcs.all_world2pix(np.column_stack([ra, dec]), 1, quiet=True)
            back = wcs.all_pix2world(pix, 1)
        ok = np.all(np.isfinite(pix), axis=1) & np.all(np.isfinite(back), axis=1)
        ok &= (pix[:, 0] > 0.5 - margin_x) & (pix[:, 0] < width + 0.5 + margin_x)
        ok &= (pix[:, 1] > 0.5 - margin_y) & (pix[:, 1] < height + 0.5 + margin_y)
        # Reject points the (SIP) inverse sent to the wrong place.
        dra = (back[:, 0] - ra + 180.0) % 360.0 - 180.0
        err = np.hypot(dra * np.cos(np.radians(dec)), back[:, 1] - dec)
        ok &= np.nan_to_num(err, nan=np.inf) < max(3 * pixscale, 1 / 3600)
        segments = []
        start = None
        for i, good in enumerate(np.r_[ok, False]):
            if good and start is None:
                start = i
            elif not good and start is not None:
                if i - start >= 2:
                    segments.append(pix[start:i].copy())
                start = None
        return segments

    n_samples = 400
    first_ra = math.ceil(ra_start / ra_step) * ra_step
    ra_values = np.arange(first_ra, ra_start + ra_len + 1e-9, ra_step)
    dec_samples = np.linspace(max(dec_min, -89.999), min(dec_max, 89.999), n_samples)
    for ra in ra_values:
        value = float(ra % 360.0)
        segments = trace(np.full(n_samples, value), dec_samples)
        if segments:
            lines.append(GridLine("ra", value, segments))
    ra_samples = np.linspace(ra_start, ra_start + ra_len, n_samples) % 360.0
    first_dec = math.ceil(dec_min / dec_step) * dec_step
    for dec in np.arange(first_dec, dec_max + 1e-9, dec_step):
        if abs(dec) >= 90.0:
            continue
        segments = trace(ra_samples, np.full(n_samples, float(dec)))
        if segments:
            lines.append(GridLine("dec", float(dec), segments))
    return lines


def format_angle(value: float, step: float, *, signed: bool) -> str:
    sign = "-" if value < 0 else ("+" if signed else "")
    minutes = round(abs(value) * 60)
    degrees, arcmin = divmod(minutes, 60)
    if step >= 1.0 or arcmin == 0:
        return f"{sign}{degrees}°"
    return f"{sign}{degrees}°{arcmin:02d}'"
