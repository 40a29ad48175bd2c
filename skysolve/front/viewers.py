"""Links from a solved image to sky viewers that open in the person's browser.

The server builds URLs from the job's WCS and fetches nothing: the Legacy
Surveys viewer draws the field's outline (``poly=``, the corners as nova
sends them) over its survey images, and WorldWideTelescope's ShowImage page
places the image itself on the sky, which it fetches from this site, so that
link is offered only for public images when ``SITE_ROOT`` is set to an
address the outside world reaches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.engine.results import wcs_from_header

LEGACY_SURVEYS = "https://www.legacysurvey.org/viewer"
WWT_SHOW_IMAGE = "http://www.worldwidetelescope.org/wwtweb/ShowImage.aspx"

#: Arcsec per pixel of the Legacy Surveys viewer at zoom 14 (its native scale).
_LEGACY_ZOOM14_SCALE = 0.262


@dataclass(frozen=True)
class Field:
    """What the links need to know about a solved field."""

    ra: float
    dec: float
    radius: float  # degrees, half the diagonal
    pixscale: float  # arcsec per pixel of the image
    width: int  # pixels of the image
    height: int
    orientation: float  # degrees E of N of the image's +y axis (the API's column)
    parity: float
    bottom_up: bool  # FITS: the first stored row is the bottom when displayed


def outline(field: Field, wcs_file: Path | None) -> list[tuple[float, float]]:
    """The corners (RA, Dec) of the image, closed (the first corner again at the end).

    From the solve's WCS file (SIP included) when it can be read; otherwise from
    a tangent-plane WCS rebuilt from the calibration columns.
    """
    wcs = _read_wcs(wcs_file, field)
    if wcs is None:
        wcs = _linear_wcs(field)
    xs = np.array([1.0, field.width, field.width, 1.0, 1.0])
    ys = np.array([1.0, 1.0, field.height, field.height, 1.0])
    ras, decs = wcs.all_pix2world(xs, ys, 1)
    return [(float(r) % 360.0, float(d)) for r, d in zip(ras, decs, strict=True)]


def _read_wcs(path: Path | None, field: Field) -> WCS | None:
    if path is None or not path.is_file():
        return None
    try:
        with fits.open(path) as hdul:
            header = hdul[0].header
            if "CRVAL1" not in header:
                return None
            return wcs_from_header(header, field.width, field.height)
    except (OSError, ValueError):
        return None


def _linear_wcs(field: Field) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [field.ra, field.dec]
    wcs.wcs.crpix = [(field.width + 1) / 2, (field.height + 1) / 2]
    scale = field.pixscale / 3600.0
    t = math.radians(field.orientation)
    # Tangent-plane unit vectors (East, North) of the pixel axes: +y points to
    # position angle t; +x is +y turned 90° towards West for parity -1
    # (det CD < 0, the sky as seen), towards East otherwise.
    y_axis = (math.sin(t), math.cos(t))
    x_axis = (-math.cos(t), math.sin(t)) if field.parity < 0 else (math.cos(t), -math.sin(t))
    wcs.wcs.cd = [[scale * x_axis[0], scale * y_axis[0]], [scale * x_axis[1], scale * y_axis[1]]]
    return wcs


def legacy_surveys_url(field: Field, corners: list[tuple[float, float]]) -> str:
    """The Legacy Surveys viewer centred on the field, zoomed to fit it, outline drawn."""
    span_arcsec = max(2 * field.radius * 3600.0, 1.0)
    # Zoom z shows 0.262"·2^(14-z) per screen pixel; aim for the field across ~800 px.
    zoom = round(14 - math.log2(span_arcsec / 800.0 / _LEGACY_ZOOM14_SCALE))
    zoom = max(1, min(16, zoom))
    poly = ",".join(f"{r:.5f},{d:.5f}" for r, d in corners)
    query = {
        "ra": f"{field.ra:.5f}",
        "dec": f"{field.dec:.5f}",
        "zoom": str(zoom),
        # nova's layer: unWISE covers the whole sky (the optical surveys do not).
        "layer": "unwise-neo6",
        "poly": poly,
    }
    return f"{LEGACY_SURVEYS}/?{urlencode(query, safe=',')}"


def wwt_url(field: Field, *, name: str, image_url: str, display_size: tuple[int, int]) -> str:
    """WorldWideTelescope's ShowImage page with the display picture placed on the sky.

    ``display_size`` is the picture's size; its scale and centre follow from
    the image's.  ``rotation`` is the position angle of the picture's up
    direction, ``reverseparity`` says whether the picture is mirrored
    (East clockwise from North as displayed).
    """
    w, h = display_size
    scale = field.pixscale * field.width / max(1, w)
    up = field.orientation if field.bottom_up else (field.orientation + 180.0) % 360.0
    # Displayed top-down, a top-down file keeps its parity and a FITS file flips it.
    mirrored = (field.parity > 0) == field.bottom_up
    query = {
        "name": name or "skysolve image",
        "imageurl": image_url,
        "ra": f"{field.ra:.6f}",
        "dec": f"{field.dec:.6f}",
        "x": f"{w / 2:.1f}",
        "y": f"{h / 2:.1f}",
        "scale": f"{scale:.6f}",
        "rotation": f"{up:.2f}",
        "reverseparity": "True" if mirrored else "False",
    }
    return f"{WWT_SHOW_IMAGE}?{urlencode(query)}"
