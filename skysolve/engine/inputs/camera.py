"""The one reader of camera keywords: which camera and optics took an image.

Capture programs write the camera and its optics into the FITS header:
``INSTRUME`` and ``TELESCOP`` name them, ``FOCALLEN`` is the focal length in
millimetres, ``XBINNING`` the binning, and the pixel size is in microns under
one of three names: ``XPIXSZ`` (the SBIG convention that MaxIm DL, N.I.N.A.,
SharpCap and ASIAIR write), ``PIXSIZE1`` (INDI, so KStars/Ekos, next to
``XPIXSZ``) and plain ``PIXSIZE`` (older programs).  All three are the same
quantity, microns per pixel along x; MaxIm DL's ``XPIXSZ`` includes the
binning, which :mod:`~skysolve.engine.inputs.hints` allows for.

:func:`read_camera` takes the cards as any mapping (an astropy ``Header`` or
the cards :func:`cards_from_head` parses from the first bytes of a file) so the
hints of one image and the comparison of two images in learned hints read the
same values the same way.  Values outside a plausible range are no reading.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Where the pixel size may be, in the order they are trusted.
PIXEL_SIZE_KEYWORDS = ("XPIXSZ", "PIXSIZE", "PIXSIZE1")
#: Every card :func:`read_camera` looks at.
CAMERA_CARDS = ("INSTRUME", "TELESCOP", "FOCALLEN", *PIXEL_SIZE_KEYWORDS, "XBINNING")
#: Plausible focal lengths (mm) and pixel sizes (microns); anything else is a typo
#: or another unit, and no reading.
FOCAL_RANGE_MM = (1.0, 100_000.0)
PIXEL_RANGE_UM = (0.1, 100.0)
MAX_BINNING = 64


@dataclass(frozen=True)
class Camera:
    """What a header says about the camera; None where it says nothing usable."""

    instrument: str | None = None
    telescope: str | None = None
    focal_mm: float | None = None
    #: Microns per pixel along x, and the keyword it came from.
    pixel_um: float | None = None
    pixel_keyword: str | None = None
    #: Whole binning factor along x; None when absent or implausible.
    binning: int | None = None

    def identity(self) -> dict[str, str | float]:
        """The values that tell one camera and its optics from another, by name."""
        named: dict[str, str | float | None] = {
            "instrument": self.instrument,
            "telescope": self.telescope,
            "focal length": self.focal_mm,
            "pixel size": self.pixel_um,
        }
        return {key: value for key, value in named.items() if value is not None}


def read_camera(cards: Mapping[str, Any]) -> Camera:
    """The camera, optics and binning the header ``cards`` name."""
    focal = _number(cards.get("FOCALLEN"))
    if focal is not None and not FOCAL_RANGE_MM[0] <= focal <= FOCAL_RANGE_MM[1]:
        focal = None
    pixel, pixel_keyword = None, None
    for key in PIXEL_SIZE_KEYWORDS:
        value = _number(cards.get(key))
        if value is not None and PIXEL_RANGE_UM[0] <= value <= PIXEL_RANGE_UM[1]:
            pixel, pixel_keyword = value, key
            break
    binning = _number(cards.get("XBINNING"))
    whole = binning is not None and binning.is_integer() and 1 <= binning <= MAX_BINNING
    return Camera(
        instrument=_text(cards.get("INSTRUME")),
        telescope=_text(cards.get("TELESCOP")),
        focal_mm=focal,
        pixel_um=pixel,
        pixel_keyword=pixel_keyword,
        binning=int(binning) if whole and binning is not None else None,
    )


def cards_from_head(
    head: bytes, start: int, keywords: tuple[str, ...]
) -> tuple[dict[str, Any], int | None]:
    """The values of ``keywords`` in the header that starts at byte ``start`` of ``head``.

    Returns the cards read and the byte after the header's ``END`` card (None
    when ``head`` ends first).  A card that does not parse is skipped, not
    fixed: a damaged header gives what could be read.
    """
    from astropy.io import fits

    cards: dict[str, Any] = {}
    for at in range(start, len(head) - 79, 80):
        keyword = head[at : at + 8].decode("ascii", "replace").strip()
        if keyword == "END":
            return cards, at + 80
        if keyword in keywords:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    card = fits.Card.fromstring(head[at : at + 80].decode("ascii"))
                    cards[keyword] = card.value
            except (ValueError, UnicodeDecodeError, fits.VerifyError):
                continue
    return cards, None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()
