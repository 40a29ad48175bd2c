"""EXIF tags of a camera picture, as plain JSON-ready values.

What Pillow reads from a JPEG, TIFF or WebP: the camera's tags (focal length,
35 mm equivalent, exposure, date...) the hints read and the GPS tags (an
all-sky frame's site and time), less the TIFF tags that describe the pixel
layout rather than the picture.
"""

from __future__ import annotations

import math
from typing import Any

# TIFF tags that describe the pixel layout rather than the picture.
_LAYOUT_TAGS = frozenset(
    {
        "ImageWidth",
        "ImageLength",
        "BitsPerSample",
        "Compression",
        "PhotometricInterpretation",
        "StripOffsets",
        "StripByteCounts",
        "RowsPerStrip",
        "PlanarConfiguration",
        "SamplesPerPixel",
        "TileOffsets",
        "TileByteCounts",
        "TileWidth",
        "TileLength",
        "SampleFormat",
        "ExtraSamples",
        "ColorMap",
        "JPEGTables",
        "Predictor",
        "FillOrder",
        "JpegIFOffset",
        "JpegIFByteCount",
        "ExifOffset",
        "GPSInfo",
    }
)


def exif_tags(img: Any) -> dict[str, Any]:
    """EXIF tags (main IFD, Exif and GPS sub-IFDs) by name; unreadable EXIF gives {}.

    The GPS tags keep EXIF's names (``GPSLatitude``, ``GPSLatitudeRef``,
    ``GPSDateStamp``...): an all-sky frame's site and time come from them.
    """
    from PIL import ExifTags

    try:
        exif = img.getexif()
        items = list(exif.items())
        items += list(exif.get_ifd(ExifTags.IFD.Exif).items())
        gps = list(exif.get_ifd(ExifTags.IFD.GPSInfo).items())
    except Exception:
        return {}
    out: dict[str, Any] = {}
    named = [(ExifTags.TAGS.get(tag), tag, value) for tag, value in items]
    named += [(ExifTags.GPSTAGS.get(tag), None, value) for tag, value in gps]
    for name, tag, value in named:
        if name is None or name in _LAYOUT_TAGS or tag in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
            continue
        converted = _exif_value(value)
        if converted is not None:
            out[name] = converted
    return out


def _exif_value(value: Any) -> Any:
    """A JSON-friendly EXIF value, or None for binary blobs and broken rationals."""
    from PIL.TiffImagePlugin import IFDRational

    if isinstance(value, IFDRational):
        if value.denominator == 0:
            return None
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.strip("\x00 ")
    if isinstance(value, tuple) and 0 < len(value) <= 16:
        items = [_exif_value(v) for v in value]
        return None if any(v is None for v in items) else tuple(items)
    return None
