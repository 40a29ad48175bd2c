"""Hints: where an image probably points and its probable pixel scale.

Cameras and capture programs write what they know into the file: a WCS from an
earlier solve or the mount, the telescope's pointing (``RA``/``DEC``,
``OBJCTRA``/``OBJCTDEC``), focal length and pixel size, or a lens's focal length
in EXIF.  Each narrows the solver's search a lot.  None is trusted blindly:
values that are malformed or out of range are ignored, the bounds are generous,
and :func:`apply_hints` fills only what the user left open.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skysolve.engine.inputs.camera import FOCAL_RANGE_MM, read_camera
from skysolve.engine.inputs.fitscards import HeaderCards, astropy_header
from skysolve.engine.inputs.images import LoadedImage
from skysolve.engine.inputs.tanheader import no_celestial_axes, tan_centre_and_scale
from skysolve.engine.params import FILM_WIDTH_MM, Hints, LearnedHint, SolveParameters

if TYPE_CHECKING:
    from astropy.io import fits

#: Search radius (deg) around a position hint when the field size is unknown.
DEFAULT_RADIUS = 20.0
#: Smallest search radius (deg) around a position hint that is not a WCS.
MIN_POSITION_RADIUS = 5.0
#: A WCS centre is searched within this multiple of the field radius...
WCS_RADIUS_FACTOR = 3.0
#: ...but never within less than this many degrees.
MIN_WCS_RADIUS = 1.0

#: Relative half-widths of the scale range per kind of hint.
WCS_SCALE_TOLERANCE = 0.10
KEYWORD_SCALE_TOLERANCE = 0.10
OPTICS_SCALE_TOLERANCE = 0.15
#: EXIF-based bounds: cropping a picture only makes the true scale finer, so the
#: lower bound is much more generous than the upper.
EXIF_SCALE_LOWER = 0.5
EXIF_SCALE_UPPER = 1.2
#: Crop factors assumed when EXIF gives a focal length but no sensor size.
EXIF_CROP_FACTORS = (1.0, 2.0)

# Plausible ranges; anything outside is a broken keyword, not a strange telescope.
_SCALE_RANGE = (0.01, 20_000.0)  # arcsec per pixel

_ARCSEC_PER_RADIAN_OVER_1000 = 206.264806  # arcsec/px per (micron / mm)


@dataclass(frozen=True)
class _Position:
    ra: float
    dec: float
    source: str
    radius: float | None = None  # set only by a WCS, which knows its own field


@dataclass(frozen=True)
class _Scale:
    lower: float
    upper: float
    source: str


def hints_from_image(image: LoadedImage) -> Hints:
    """Read position and scale hints from a FITS header and EXIF tags.

    Parameters
    ----------
    image : LoadedImage
        A loaded image; its ``header``, ``exif`` and size are used.

    Returns
    -------
    Hints
        Best source first: a celestial WCS gives both position and scale; else
        the position comes from ``RA``/``DEC`` or ``OBJCTRA``/``OBJCTDEC`` and
        the scale from ``SECPIX``/``PIXSCALE``, ``FOCALLEN`` with a pixel size,
        or EXIF focal lengths.  Unusable or implausible values are ignored;
        this function never raises on bad metadata.
    """
    header = image.header
    wcs = _from_wcs(header, image.width, image.height) if header is not None else None
    position = wcs[0] if wcs is not None else None
    if header is not None:
        position = position or _from_ra_dec(header) or _from_objct(header)
    scale = _scale_of(image.header, image.exif, image.width, wcs)
    return _combine(position, scale, width=image.width, height=image.height)


def _scale_of(
    header: fits.Header | HeaderCards | None,
    exif: dict[str, Any],
    width: int,
    wcs: tuple[_Position, _Scale] | None,
) -> _Scale | None:
    """The image's scale from its metadata, best source first: the celestial WCS
    (``wcs``, already read), the scale keywords, the optics, EXIF."""
    scale = wcs[1] if wcs is not None else None
    if header is not None:
        scale = scale or _from_scale_keywords(header) or _from_optics(header)
    if scale is None and exif:
        scale = _from_exif(exif, width)
    return scale


def apply_hints(
    params: SolveParameters, hints: Hints, *, image_width: int
) -> tuple[SolveParameters, dict[str, Any]]:
    """Fill the parameters the user left open with the hints.

    Parameters
    ----------
    params : SolveParameters
        What the user asked for; not changed.  Nothing is applied when
        ``params.use_hints`` is false.
    hints : Hints
        From :func:`hints_from_image`.
    image_width : int
        Width in pixels of the image, to size the search radius from a scale
        the user gave.

    Returns
    -------
    params : SolveParameters
        A copy with the position (``center_ra``, ``center_dec`` and, unless
        given, ``radius``) and/or the scale (as ``arcsecperpix`` lower/upper
        bounds) filled in where the user gave none.
    used : dict
        What was applied and why (``sources``), for the job log and the API;
        empty when nothing was applied.
    """
    if not params.use_hints or hints.empty:
        return params, {}
    changes: dict[str, Any] = {}
    used_sources: list[str] = []
    if not params.has_scale and hints.has_scale:
        changes.update(
            scale_units="arcsecperpix",
            scale_type="ul",
            scale_lower=hints.scale_lower,
            scale_upper=hints.scale_upper,
        )
        used_sources.append(hints.scale_source or "image metadata")
    if not params.has_position and hints.has_position:
        changes.update(center_ra=hints.center_ra, center_dec=hints.center_dec)
        if params.radius is None:
            changes["radius"] = _radius_for(params, hints, image_width=image_width)
        used_sources.append(hints.position_source or "image metadata")
    if not changes:
        return params, {}
    new = params.replace(**changes)
    used: dict[str, Any] = dict(changes)
    used["sources"] = list(dict.fromkeys(used_sources))
    return new, used


def apply_learned(
    params: SolveParameters,
    *,
    image_width: int,
    image_height: int,
    position: bool = True,
) -> tuple[SolveParameters, dict[str, Any]]:
    """Fill what is still open with what an earlier solve found.

    Parameters
    ----------
    params : SolveParameters
        The parameters after the file's hints (:func:`apply_hints`); their
        ``learned_hints`` are the candidates, best first.  Nothing is applied
        when ``use_hints`` is off.
    image_width, image_height : int
        This image's size: only a hint learned on an image of the same size is
        used (a different size is another camera, binning or crop).
    position : bool
        False: use the learned scale only (the retry when the position was wrong).

    Returns
    -------
    params : SolveParameters
        A copy with the scale (arcsec per pixel) and the position filled where
        still open.
    used : dict
        ``{"scale": [lower, upper], "center": [ra, dec], "radius": r,
        "source": "earlier solve of job N"}`` with what was applied; empty when
        nothing was.
    """
    if not params.use_hints:
        return params, {}
    hint = next(
        (
            h
            for h in params.learned_hints
            if (h.image_width, h.image_height) == (image_width, image_height)
        ),
        None,
    )
    if hint is None:
        return params, {}
    changes: dict[str, Any] = {}
    used: dict[str, Any] = {}
    if not params.has_scale:
        changes.update(
            scale_units="arcsecperpix",
            scale_type="ul",
            scale_lower=hint.scale_lower,
            scale_upper=hint.scale_upper,
        )
        used["scale"] = [hint.scale_lower, hint.scale_upper]
    if position and not params.has_position and hint.center_ra is not None:
        assert hint.center_dec is not None
        radius = hint.radius if hint.radius is not None else _learned_radius(hint)
        changes.update(center_ra=hint.center_ra, center_dec=hint.center_dec, radius=radius)
        used["center"] = [hint.center_ra, hint.center_dec]
        used["radius"] = radius
    if not changes:
        return params, {}
    used["source"] = hint.source
    return params.replace(**changes), used


def _learned_radius(hint: LearnedHint) -> float:
    """A couple of field widths around the earlier centre (the mount's repeatability
    and a new target nearby), never less than a degree."""
    field_deg = hint.scale_upper * math.hypot(hint.image_width, hint.image_height) / 3600.0
    return min(180.0, max(MIN_WCS_RADIUS, 2.0 * field_deg))


def _radius_for(params: SolveParameters, hints: Hints, *, image_width: int) -> float:
    """The hint's radius, or a tighter one when the user's own scale sizes the field."""
    assert hints.radius is not None
    if hints.has_scale or not params.has_scale or image_width <= 0:
        return hints.radius
    bounds = params.scale_bounds_arcsec_per_pixel(image_width)
    if bounds is None or not math.isfinite(bounds[1]):
        return hints.radius
    field_deg = bounds[1] * image_width / 3600.0
    return min(hints.radius, max(MIN_POSITION_RADIUS, 2.0 * field_deg), 180.0)


def _combine(position: _Position | None, scale: _Scale | None, *, width: int, height: int) -> Hints:
    sources: list[str] = []
    ra = dec = radius = None
    if position is not None:
        ra, dec = position.ra, position.dec
        if position.radius is not None:
            radius = position.radius
        elif scale is not None:
            field_deg = scale.upper * math.hypot(width, height) / 3600.0
            radius = min(180.0, max(MIN_POSITION_RADIUS, 2.0 * field_deg))
        else:
            radius = DEFAULT_RADIUS
        sources.append(position.source)
    if scale is not None and scale.source not in sources:
        sources.append(scale.source)
    return Hints(
        center_ra=ra,
        center_dec=dec,
        radius=radius,
        scale_lower=None if scale is None else scale.lower,
        scale_upper=None if scale is None else scale.upper,
        sources=tuple(sources),
        position_source=None if position is None else position.source,
        scale_source=None if scale is None else scale.source,
    )


# -- FITS header ----------------------------------------------------------------


def _from_wcs(
    header: fits.Header | HeaderCards, width: int, height: int
) -> tuple[_Position, _Scale] | None:
    if not _wcs_keywords_usable(header):
        return None
    if no_celestial_axes(header):
        return None  # astropy's WCS would have no celestial axes either
    try:
        # A TAN header without astropy.wcs (a quarter of a second to import).
        plain = tan_centre_and_scale(header, width, height)
        ra, dec, pixscale = plain or _astropy_centre_and_scale(header, width, height)
    except Exception:
        return None
    ra, dec = float(ra), float(dec)
    if not (_valid_position(ra, dec) and _plausible_scale(pixscale)):
        return None
    field_radius = pixscale * math.hypot(width, height) / 2.0 / 3600.0
    radius = min(180.0, max(MIN_WCS_RADIUS, WCS_RADIUS_FACTOR * field_radius))
    position = _Position(ra % 360.0, dec, "FITS WCS", radius=radius)
    return position, _around(pixscale, WCS_SCALE_TOLERANCE, "FITS WCS")


def _astropy_centre_and_scale(
    header: fits.Header | HeaderCards, width: int, height: int
) -> tuple[float, float, float]:
    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(astropy_header(header), relax=True).celestial
        if not wcs.has_celestial or wcs.naxis != 2:
            raise ValueError("no celestial WCS")
        ra, dec = wcs.all_pix2world([[(width + 1) / 2.0, (height + 1) / 2.0]], 1)[0]
        scales = wcs.proj_plane_pixel_scales()
    return ra, dec, 3600.0 * math.sqrt(abs(float(scales[0].value) * float(scales[1].value)))


def _wcs_keywords_usable(header: fits.Header | HeaderCards) -> bool:
    """Whether the WCS keywords are numbers; astropy silently defaults broken ones
    (a missing or malformed CD matrix becomes 1 degree per pixel)."""
    if any(_number(header.get(k)) is None for k in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2")):
        return False
    cd = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
    if any(k in header for k in cd):
        present = [header.get(k) for k in cd if k in header]
        return all(_number(v) is not None for v in present)
    return _number(header.get("CDELT1")) is not None and _number(header.get("CDELT2")) is not None


def _from_ra_dec(header: fits.Header | HeaderCards) -> _Position | None:
    ra = _angle(header.get("RA"), hours_if_text=True)
    dec = _angle(header.get("DEC"), hours_if_text=False)
    if ra is None or dec is None or not _valid_position(ra, dec):
        return None
    return _Position(ra % 360.0, dec, "RA/DEC keywords")


def _from_objct(header: fits.Header | HeaderCards) -> _Position | None:
    ra_text, dec_text = header.get("OBJCTRA"), header.get("OBJCTDEC")
    if not isinstance(ra_text, str) or not isinstance(dec_text, str):
        return None
    ra_hours = _sexagesimal(ra_text)
    dec = _sexagesimal(dec_text)
    if ra_hours is None or dec is None:
        return None
    ra = ra_hours * 15.0
    if not _valid_position(ra, dec):
        return None
    return _Position(ra % 360.0, dec, "OBJCTRA/OBJCTDEC")


def largest_scale(image: LoadedImage) -> tuple[float, str] | None:
    """The largest scale (arcsec per pixel) the image's metadata allows, and its source.

    The upper bound of :func:`hints_from_image`'s scale, from the same sources
    in the same order, without the position; None when the metadata says
    nothing of the scale.
    """
    return largest_scale_of(image.header, image.exif, image.width, image.height)


def largest_scale_of(
    header: fits.Header | HeaderCards | None, exif: dict[str, Any], width: int, height: int
) -> tuple[float, str] | None:
    """:func:`largest_scale` of an image's header, EXIF tags and size (an image not read yet)."""
    wcs = _from_wcs(header, width, height) if header is not None else None
    scale = _scale_of(header, exif, width, wcs)
    return None if scale is None else (scale.upper, scale.source)


def _from_scale_keywords(header: fits.Header | HeaderCards) -> _Scale | None:
    for key in ("SECPIX", "PIXSCALE", "SECPIX1"):
        value = _number(header.get(key))
        if value is not None and _plausible_scale(value):
            return _around(value, KEYWORD_SCALE_TOLERANCE, f"{key} keyword")
    return None


def _from_optics(header: fits.Header | HeaderCards) -> _Scale | None:
    camera = read_camera(header)
    focal, pixel = camera.focal_mm, camera.pixel_um
    if focal is None or pixel is None:
        return None
    binning = float(camera.binning or 1)
    unbinned = _ARCSEC_PER_RADIAN_OVER_1000 * pixel / focal
    binned = unbinned * binning
    if not _plausible_scale(binned):
        return None
    source = f"FOCALLEN and {camera.pixel_keyword}"
    if binning == 1:
        return _around(binned, OPTICS_SCALE_TOLERANCE, source)
    # Programs disagree whether the pixel size already includes binning (MaxIm DL's
    # XPIXSZ does), so the range covers both readings.
    return _Scale(
        lower=unbinned * (1.0 - OPTICS_SCALE_TOLERANCE),
        upper=binned * (1.0 + OPTICS_SCALE_TOLERANCE),
        source=f"{source} and XBINNING",
    )


# -- EXIF -------------------------------------------------------------------------


def _from_exif(exif: dict[str, Any], width: int) -> _Scale | None:
    if width <= 0:
        return None
    equivalent = _number(exif.get("FocalLengthIn35mmFilm"))
    if equivalent is not None and FOCAL_RANGE_MM[0] <= equivalent <= FOCAL_RANGE_MM[1]:
        scale = _film_scale(equivalent, width)
        return _Scale(
            lower=scale * EXIF_SCALE_LOWER,
            upper=scale * EXIF_SCALE_UPPER,
            source="EXIF FocalLengthIn35mmFilm",
        )
    focal = _number(exif.get("FocalLength"))
    if focal is not None and FOCAL_RANGE_MM[0] <= focal <= FOCAL_RANGE_MM[1]:
        low_crop, high_crop = EXIF_CROP_FACTORS
        return _Scale(
            lower=_film_scale(focal * high_crop, width) * EXIF_SCALE_LOWER,
            upper=_film_scale(focal * low_crop, width) * EXIF_SCALE_UPPER,
            source=(
                f"EXIF FocalLength (sensor size unknown: crop factor {low_crop:g} "
                f"to {high_crop:g} assumed)"
            ),
        )
    return None


def _film_scale(focal_35mm: float, width: int) -> float:
    """Arcsec per pixel of a 35 mm frame ``width`` pixels wide behind ``focal_35mm``."""
    field_deg = math.degrees(2.0 * math.atan(FILM_WIDTH_MM / (2.0 * focal_35mm)))
    return field_deg * 3600.0 / width


# -- value parsing ----------------------------------------------------------------

_SEXAGESIMAL = re.compile(
    r"""^\s*([+-]?)\s*(\d+(?:\.\d*)?)          # hours or degrees
        (?:\s*[\s:hHdD°]\s*(\d+(?:\.\d*)?)     # minutes
        (?:\s*[\s:mM']\s*(\d+(?:\.\d*)?))?)?   # seconds
        \s*[sS"]?\s*$""",
    re.VERBOSE,
)


def _sexagesimal(text: str) -> float | None:
    """``"HH MM SS.s"``, ``"+DD:MM:SS"``, ``"12h34m56s"`` or a plain number."""
    match = _SEXAGESIMAL.match(text)
    if match is None:
        return None
    sign, whole, minutes, seconds = match.groups()
    m = float(minutes) if minutes else 0.0
    s = float(seconds) if seconds else 0.0
    if m >= 60 or s >= 60:
        return None
    value = float(whole) + m / 60.0 + s / 3600.0
    return -value if sign == "-" else value


def _angle(value: Any, *, hours_if_text: bool) -> float | None:
    """Degrees from a number (degrees) or a sexagesimal string (hours for RA)."""
    number = _number(value)
    if number is not None:
        return number
    if not isinstance(value, str):
        return None
    try:
        return float(value)  # a number written as text: degrees
    except ValueError:
        pass
    parsed = _sexagesimal(value)
    if parsed is None:
        return None
    return parsed * 15.0 if hours_if_text else parsed


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _valid_position(ra: float, dec: float) -> bool:
    return math.isfinite(ra) and math.isfinite(dec) and 0.0 <= ra <= 360.0 and -90.0 <= dec <= 90.0


def _plausible_scale(arcsec_per_pixel: float) -> bool:
    return _SCALE_RANGE[0] <= arcsec_per_pixel <= _SCALE_RANGE[1]


def _around(value: float, tolerance: float, source: str) -> _Scale:
    return _Scale(lower=value * (1.0 - tolerance), upper=value * (1.0 + tolerance), source=source)
