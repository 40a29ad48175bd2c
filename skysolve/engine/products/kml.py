"""A KML document that lays a solved picture on the sky in Google Earth (Sky mode).

Google Sky reads ordinary KML with ``hint="target=sky"`` on the root element
and maps the celestial sphere onto "longitude" = RA - 180 degrees and
"latitude" = Dec.  The picture is placed with a ``gx:LatLonQuad`` whose four
corners are the image corners, in KML's order: lower-left, lower-right,
upper-right, upper-left *of the picture as displayed*.

The picture referred to is one of :mod:`skysolve.engine.products.pictures`' display
pictures, which show FITS images flipped (row 0 at the bottom).  So for FITS
(``bottom_up=True``) the displayed lower-left corner is the corner of pixel
(1, 1); for JPEG/PNG it is the corner of pixel (1, height).  Corners are the
outer pixel edges: 1-based coordinates 0.5 and width + 0.5 (height + 0.5).

Limits: a quad has straight edges in (longitude, latitude), so fields of many
degrees are drawn slightly wrong away from the corners, and a field containing
a celestial pole cannot be drawn as a quad at all (Google Earth shows it
distorted).  Longitudes are kept in KML's range [-180, 180).
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from astropy.wcs import WCS

from skysolve.errors import BadInputError

__all__ = ["KML_NS", "GX_NS", "kml_corners", "kmz_bytes", "write_kml"]

KML_NS = "http://www.opengis.net/kml/2.2"
GX_NS = "http://www.google.com/kml/ext/2.2"

#: Mean Earth radius, metres: Google Earth's ``range`` is measured on its globe.
_EARTH_RADIUS_M = 6_371_000.0


def _sky_longitude(ra: np.ndarray) -> np.ndarray:
    """Google Sky longitude of right ascension, in [-180, 180)."""
    return np.mod(np.asarray(ra, dtype=float), 360.0) - 180.0


def kml_corners(
    wcs: WCS, width: int, height: int, *, bottom_up: bool = False
) -> list[tuple[float, float]]:
    """The four (longitude, latitude) corners of ``gx:LatLonQuad``.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial WCS, 1-based FITS pixel convention; SIP honoured.
    width, height : int
        Image size in pixels.
    bottom_up : bool, optional
        True for FITS images (stored row 1 is the bottom row on screen).

    Returns
    -------
    list of (float, float)
        Lower-left, lower-right, upper-right and upper-left corner of the
        displayed picture as (RA - 180 wrapped to [-180, 180), Dec), degrees.
    """
    if not isinstance(wcs, WCS) or not wcs.has_celestial:
        raise BadInputError("a celestial WCS is needed to place the image on the sky")
    if int(width) <= 0 or int(height) <= 0:
        raise BadInputError(f"image size must be positive, not {width}x{height}")
    left, right = 0.5, width + 0.5
    bottom, top = (0.5, height + 0.5) if bottom_up else (height + 0.5, 0.5)
    pixels = np.array([[left, bottom], [right, bottom], [right, top], [left, top]])
    world = wcs.all_pix2world(pixels, 1)
    if not np.all(np.isfinite(world)):
        raise BadInputError("the WCS does not map the image corners onto the sky")
    lon = _sky_longitude(world[:, 0])
    return [(float(lo), float(la)) for lo, la in zip(lon, world[:, 1], strict=True)]


def _check_relative_name(name: str) -> str:
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or ":" in name
        or path.is_absolute()
        or ".." in path.parts
        or name != name.strip()
    ):
        raise BadInputError(f"image_name must be a plain relative file name, not {name!r}")
    return name


def write_kml(
    wcs: WCS,
    width: int,
    height: int,
    *,
    image_name: str,
    out_path: Path,
    bottom_up: bool = False,
    title: str | None = None,
) -> Path:
    """Write a Google Sky KML document placing the display picture on the sky.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        The solution (1-based FITS pixels).
    width, height : int
        Size of the solved image in pixels (the display picture may be smaller;
        only its corners matter).
    image_name : str
        Relative name of the picture next to the KML file (the ``Icon/href``),
        e.g. ``"annotated_display.jpg"``.  Absolute paths, URLs and ``..`` are
        refused so the document cannot point elsewhere.
    out_path : pathlib.Path
        Where to write the ``.kml`` file (parent directories are created).
    bottom_up : bool, optional
        True for FITS images, whose pictures are shown flipped.
    title : str, optional
        Name shown in Google Earth; defaults to ``image_name``.

    Returns
    -------
    pathlib.Path
        ``out_path``.
    """
    href = _check_relative_name(image_name)
    corners = kml_corners(wcs, width, height, bottom_up=bottom_up)
    cx, cy = (width + 1) / 2.0, (height + 1) / 2.0
    centre_ra, centre_dec = (float(v) for v in wcs.all_pix2world([[cx, cy]], 1)[0])
    pixscale = math.sqrt(abs(float(np.linalg.det(wcs.celestial.pixel_scale_matrix))))
    field_deg = pixscale * max(width, height)

    ET.register_namespace("", KML_NS)
    ET.register_namespace("gx", GX_NS)

    def k(tag: str) -> str:
        return f"{{{KML_NS}}}{tag}"

    root = ET.Element(k("kml"), {"hint": "target=sky"})
    document = ET.SubElement(root, k("Document"))
    ET.SubElement(document, k("name")).text = title or image_name
    overlay = ET.SubElement(document, k("GroundOverlay"))
    ET.SubElement(overlay, k("name")).text = title or image_name
    look = ET.SubElement(overlay, k("LookAt"))
    ET.SubElement(look, k("longitude")).text = f"{float(_sky_longitude(np.array(centre_ra))):.8f}"
    ET.SubElement(look, k("latitude")).text = f"{centre_dec:.8f}"
    ET.SubElement(look, k("altitude")).text = "0"
    ET.SubElement(look, k("heading")).text = "0"
    ET.SubElement(look, k("tilt")).text = "0"
    # Far enough back to see the whole field.
    view_range = max(1000.0, 2.0 * math.radians(field_deg) * _EARTH_RADIUS_M)
    ET.SubElement(look, k("range")).text = f"{view_range:.0f}"
    icon = ET.SubElement(overlay, k("Icon"))
    ET.SubElement(icon, k("href")).text = href
    quad = ET.SubElement(overlay, f"{{{GX_NS}}}LatLonQuad")
    ET.SubElement(quad, k("coordinates")).text = " ".join(
        f"{lon:.8f},{lat:.8f}" for lon, lat in corners
    )
    ET.indent(root)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out_path, encoding="UTF-8", xml_declaration=True)
    return out_path


def kmz_bytes(kml_path: Path, picture: Path) -> bytes:
    """A self-contained KMZ: the KML document and the picture it lays on the sky.

    A bare KML names its picture by a relative link, which resolves only
    beside the KML file on disk, never from the URL the KML was fetched from.
    A KMZ is a zip whose first entry is the document (``doc.kml``); relative
    links resolve inside the zip, so the picture travels with it.

    Parameters
    ----------
    kml_path : pathlib.Path
        A document written by :func:`write_kml`.
    picture : pathlib.Path
        The picture to embed; the document's ``Icon/href`` is set to its name.

    Returns
    -------
    bytes
        The zip archive (``doc.kml`` first, then the picture, stored uncompressed
        since the picture is compressed already).

    Raises
    ------
    BadInputError
        The document is not a KML with a ground overlay.
    """
    try:
        tree = ET.parse(kml_path)
    except ET.ParseError as exc:
        raise BadInputError(f"not a KML document: {exc}") from None
    href = tree.getroot().find(f".//{{{KML_NS}}}Icon/{{{KML_NS}}}href")
    if href is None:
        raise BadInputError("the KML document has no ground-overlay picture link")
    name = _check_relative_name(Path(picture).name)
    href.text = name
    ET.register_namespace("", KML_NS)
    ET.register_namespace("gx", GX_NS)
    document = io.BytesIO()
    tree.write(document, encoding="UTF-8", xml_declaration=True)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("doc.kml", document.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
        archive.write(picture, name, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()
