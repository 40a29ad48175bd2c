"""Pictures of a solve: annotated, red-green, extraction and RA/Dec grid images.

Every picture shows the image the way a person sees it: arrays arrive in file
row order, and FITS arrays (``bottom_up=True``, row 0 at the bottom) are
flipped so that row 0 is drawn at the bottom, as ds9 shows them.  Positions
given in skysolve's 1-based FITS pixel convention are mapped accordingly: pixel
``(x, y)`` is drawn at column ``x - 1`` and at row ``y - 1`` (top-down files) or
``height - y`` (bottom-up files) of the full-size picture, then scaled.

Two sizes are written: "display" pictures have their longer side scaled down
to :data:`DISPLAY_MAX` (never up), "full" pictures keep the original size up to
:data:`FULL_MAX` on the longer side; larger images are binned by a whole
factor first so memory stays bounded (one float32 copy of the binned image).
The pictures are drawn and encoded side by side on :data:`PICTURE_THREADS`
threads; Pillow and zlib release the GIL for most of that work.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import warnings
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.wcs import WCS
from PIL import Image, ImageDraw, ImageFont

from skysolve.engine.results import Annotation, SourceList
from skysolve.errors import BadInputError

__all__ = [
    "DISPLAY_MAX",
    "FULL_MAX",
    "GRID_STEPS_DEG",
    "choose_grid_step",
    "grid_lines",
    "make_pictures",
    "stretch_for_display",
]

#: Longest side of "display" pictures (nova's display size), pixels.
DISPLAY_MAX = 800
#: Longest side of "full" pictures; larger images are binned down to at most this.
FULL_MAX = 4000


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - not Linux


#: Threads that draw and encode the (up to eight) pictures of one solve: one per
#: usable core, at most four.
PICTURE_THREADS = max(1, min(4, _usable_cores()))
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

# Colours (RGB).
SOURCE_RED = (255, 40, 40)
CATALOG_GREEN = (40, 255, 40)
DEEP_SKY_COLOR = (80, 255, 80)
STAR_COLOR = (255, 230, 60)
CONSTELLATION_COLOR = (120, 200, 255)
GRID_COLOR = (255, 160, 0)
#: Colour of a lens solution's horizon line (green, the colour of the ground).
HORIZON_COLOR = (90, 230, 90)
TEXT_STROKE = (0, 0, 0)

# Percentiles of the stretch: black point and white point.  The white point
# ignores the brightest 0.2 % so a few hot pixels cannot dim the whole picture.
_LOW_PERCENTILE = 1.0
_HIGH_PERCENTILE = 99.8
_ASINH_SOFTENING = 10.0
_STATS_SAMPLE = 1_000_000


# -- stretching -----------------------------------------------------------------


def _robust_limits(data: np.ndarray) -> tuple[float, float]:
    flat = data.reshape(-1)
    step = max(1, flat.size // _STATS_SAMPLE)
    sample = flat[::step]
    if not np.issubdtype(sample.dtype, np.integer):
        sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    if sample.dtype in (np.uint16, np.uint8):
        lo, hi = _integer_percentiles(sample, (_LOW_PERCENTILE, _HIGH_PERCENTILE))
    else:
        lo, hi = np.percentile(sample, [_LOW_PERCENTILE, _HIGH_PERCENTILE])
    if not hi > lo:
        hi = float(sample.max())
        lo = float(sample.min())
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def _integer_percentiles(sample: np.ndarray, percents: Sequence[float]) -> list[float]:
    """``np.percentile(sample, percents)`` (linear) of unsigned 8- or 16-bit integers.

    Counting the values is several times faster than partitioning a camera
    frame; the order statistics are the same, interpolated as numpy does.
    """
    cumulative = np.cumsum(np.bincount(sample.reshape(-1)))
    n = int(cumulative[-1])
    out = []
    for percent in percents:
        index = (n - 1) * (percent / 100.0)
        below = min(math.floor(index), n - 1)
        a, b = np.searchsorted(cumulative, [below, min(below + 1, n - 1)], side="right")
        a, b = float(a), float(b)
        t = index - below
        # numpy's lerp: from the nearer end, so t = 0 and t = 1 are exact.
        out.append(a + (b - a) * t if t < 0.5 else b - (b - a) * (1.0 - t))
    return out


def _asinh_to_uint8(data: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if data.dtype in (np.uint16, np.int16) and data.size > 4 * 65536:
        # A 16-bit camera image has at most 65536 values: map each value once
        # (the same arithmetic, so the same picture) and look the pixels up.
        info = np.iinfo(data.dtype)
        values = np.arange(info.min, info.max + 1, dtype=data.dtype)
        table = _asinh_curve(values, lo, hi)
        offset = data.view(np.uint16) ^ np.uint16(0x8000) if info.min < 0 else data
        return table[offset]
    return _asinh_curve(data, lo, hi)


def _asinh_curve(data: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = (np.asarray(data, dtype=np.float32) - np.float32(lo)) / np.float32(hi - lo)
    t = np.nan_to_num(t, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(t, 0.0, 1.0, out=t)
    a = np.float32(_ASINH_SOFTENING)
    out = np.arcsinh(a * t) / np.arcsinh(a)
    return np.round(out * 255.0).astype(np.uint8)


def stretch_for_display(data: np.ndarray, *, color: np.ndarray | None = None) -> np.ndarray:
    """An 8-bit picture of image data, robust to hot pixels.

    Parameters
    ----------
    data : numpy.ndarray
        2-D image (any numeric dtype), file row order.
    color : numpy.ndarray, optional
        ``(H, W, 3)`` colour version of the same image.  When given, the
        result is colour.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array, ``(H, W)`` or ``(H, W, 3)``.  8-bit input is already
        meant for display (JPEG, PNG) and is returned unchanged (as a copy).
        Other input is mapped from its 1st percentile (black) to its 99.8th
        percentile (white) through an asinh curve, which lifts faint nebulosity
        without burning out stars; colour channels are stretched separately,
        which also neutralises the sky background.  NaNs become black.
    """
    image = np.asarray(data)
    if image.ndim != 2:
        raise BadInputError(f"image data must be 2-D, not {image.ndim}-D")
    if image.size == 0:
        raise BadInputError("image data is empty")
    if color is not None:
        rgb = np.asarray(color)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[:2] != image.shape:
            raise BadInputError(
                f"colour data must have shape {image.shape + (3,)}, not {rgb.shape}"
            )
        if rgb.dtype == np.uint8:
            return rgb.copy()
        channels = [rgb[:, :, i] for i in range(3)]
        return np.stack([_asinh_to_uint8(c, *_robust_limits(c)) for c in channels], axis=-1)
    if image.dtype == np.uint8:
        return image.copy()
    return _asinh_to_uint8(image, *_robust_limits(image))


# -- geometry of the pictures ----------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """Maps 1-based FITS pixel coordinates of the image onto one picture."""

    width: int  # image size
    height: int
    bottom_up: bool
    scale: float  # picture pixels per image pixel

    @property
    def size(self) -> tuple[int, int]:
        return (
            max(1, round(self.width * self.scale)),
            max(1, round(self.height * self.scale)),
        )

    def to_picture(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        col = np.asarray(x, dtype=float) - 1.0
        row = self.height - np.asarray(y, dtype=float) if self.bottom_up else np.asarray(y) - 1.0
        # Pixel centres: index i covers [i, i+1) before scaling.
        return (col + 0.5) * self.scale - 0.5, (row + 0.5) * self.scale - 0.5


def _bin_factor(width: int, height: int) -> int:
    return max(1, math.ceil(max(width, height) / FULL_MAX))


def _bin(array: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return array
    h = array.shape[0] // factor * factor
    w = array.shape[1] // factor * factor
    trimmed = array[:h, :w]
    shape = (h // factor, factor, w // factor, factor) + trimmed.shape[2:]
    return trimmed.reshape(shape).mean(axis=(1, 3), dtype=np.float32)


def _base_picture(image: np.ndarray, color: np.ndarray | None, bottom_up: bool) -> Image.Image:
    factor = _bin_factor(image.shape[1], image.shape[0])
    small = _bin(image, factor)
    small_color = None if color is None else _bin(np.asarray(color), factor)
    if factor > 1 and image.dtype == np.uint8:
        small = small.astype(np.float32)
    pixels = stretch_for_display(small, color=small_color)
    if bottom_up:
        pixels = pixels[::-1]
    mode = "L" if pixels.ndim == 2 else "RGB"
    return Image.fromarray(np.ascontiguousarray(pixels), mode=mode).convert("RGB")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    size = max(8, int(size))
    # DejaVu (Debian's fonts-dejavu-core) has Greek letters for Bayer names;
    # Pillow's bundled font is the fallback.
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        pass
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


class _Painter:
    """Draws on one picture with sizes that follow the picture's size."""

    def __init__(self, picture: Image.Image, frame: _Frame) -> None:
        self.picture = picture
        self.frame = frame
        self.draw = ImageDraw.Draw(picture)
        longest = max(picture.size)
        self.line = max(1, round(longest / 400))
        self.font = _font(round(max(11, longest / 60)))
        self.big_font = _font(round(max(14, longest / 35)))
        self.taken: list[tuple[float, float, float, float]] = []

    def circle(self, x: float, y: float, r: float, color: tuple[int, int, int]) -> None:
        self.draw.ellipse((x - r, y - r, x + r, y + r), outline=color, width=self.line)

    def label(
        self,
        x: float,
        y: float,
        text: str,
        color: tuple[int, int, int],
        *,
        offset: float = 0.0,
        big: bool = False,
        centred: bool = False,
    ) -> bool:
        """Write ``text`` next to (x, y) where it overlaps no earlier label.

        Tries right, left, above and below the point (or centred on it), moves
        the text inside the picture, and gives up (returns False) when every
        place is taken, so crowded wide fields stay readable.
        """
        font = self.big_font if big else self.font
        stroke = max(1, self.line // 2)
        if centred:
            places = [((x, y), "mm")]
        else:
            places = [
                ((x + offset, y), "lm"),
                ((x - offset, y), "rm"),
                ((x, y - offset), "md"),
                ((x, y + offset), "ma"),
            ]
        w, h = self.picture.size
        for (px, py), anchor in places:
            box = self.draw.textbbox((px, py), text, font=font, anchor=anchor, stroke_width=stroke)
            dx = max(0.0, -box[0]) - max(0.0, box[2] - w)
            dy = max(0.0, -box[1]) - max(0.0, box[3] - h)
            box = (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)
            if any(_overlap(box, other) for other in self.taken):
                continue
            self.taken.append(box)
            self.draw.text(
                (px + dx, py + dy),
                text,
                fill=color,
                font=font,
                anchor=anchor,
                stroke_width=stroke,
                stroke_fill=TEXT_STROKE,
            )
            return True
        return False


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# -- overlays ---------------------------------------------------------------------


def _draw_sources(
    painter: _Painter, x: np.ndarray, y: np.ndarray, color: tuple[int, int, int], radius: float
) -> None:
    px, py = painter.frame.to_picture(x, y)
    for cx, cy in zip(px.tolist(), py.tolist(), strict=True):
        painter.circle(cx, cy, radius, color)


#: Colour of the residual arrows (cyan, seen on any sky).
RESIDUAL_CYAN = (0, 230, 255)
#: The 90th-percentile residual arrow is drawn this share of the picture's longer side.
RESIDUAL_ARROW_SHARE = 0.04


def residual_gain(residuals: np.ndarray, longest: float) -> float:
    """Image pixels of arrow per pixel of residual: the 90th-percentile residual
    becomes ``RESIDUAL_ARROW_SHARE`` of the image's longer side ``longest``."""
    length = np.hypot(residuals[:, 2], residuals[:, 3])
    typical = float(np.percentile(length, 90)) if len(length) else 0.0
    return RESIDUAL_ARROW_SHARE * longest / max(typical, 1e-3)


def _draw_residuals(painter: _Painter, residuals: np.ndarray, gain: float) -> None:
    """An arrow from each matched source towards where the fit puts its star,
    ``gain`` times longer than the residual, and a scale bar in the corner."""
    x, y, dx, dy = residuals[:, 0], residuals[:, 1], residuals[:, 2], residuals[:, 3]
    px, py = painter.frame.to_picture(x, y)
    qx, qy = painter.frame.to_picture(x + gain * dx, y + gain * dy)
    dot = max(1.5, painter.line * 1.5)
    for x0, y0, x1, y1 in zip(px.tolist(), py.tolist(), qx.tolist(), qy.tolist(), strict=True):
        painter.draw.line((x0, y0, x1, y1), fill=RESIDUAL_CYAN, width=painter.line)
        painter.draw.ellipse((x0 - dot, y0 - dot, x0 + dot, y0 + dot), fill=RESIDUAL_CYAN)
    # Scale bar: the arrow of a 1-pixel residual (or 0.1 px when arrows are long).
    unit = 1.0 if gain * painter.frame.scale >= 8 else 10.0
    bar = gain * unit * painter.frame.scale
    width, height = painter.picture.size
    margin = max(8.0, width / 60)
    y_bar = height - margin
    painter.draw.line(
        (margin, y_bar, margin + bar, y_bar), fill=RESIDUAL_CYAN, width=painter.line * 2
    )
    painter.label(margin, y_bar - margin, f"{unit:g} px residual", RESIDUAL_CYAN)


def _source_radius(painter: _Painter) -> float:
    return max(4.0, max(painter.picture.size) / 160)


def _short_label(ann: Annotation) -> str:
    """A short label: a star's first name; an object's best designation and common name."""
    if ann.type in ("bright", "hd", "constellation"):
        return ann.names[0].split(" / ")[0]
    designation = ann.names[0]
    rest = ann.names[1:]
    messier = [n for n in rest if n.startswith("M ")]
    if messier:
        designation = messier[0]
    common = [n for n in rest if not n.startswith("M ")]
    return f"{designation} {common[0]}" if common else designation


def _draw_annotations(painter: _Painter, annotations: Sequence[Annotation]) -> None:
    frame = painter.frame
    star_r = max(3.0, max(painter.picture.size) / 250)
    # Constellations first, then in the given order (brightest stars, most
    # notable objects first): later labels give way to earlier ones.
    ordered = sorted(annotations, key=lambda a: a.type != "constellation")
    for ann in ordered:
        if not ann.names:
            continue
        px, py = frame.to_picture(np.array([ann.pixelx]), np.array([ann.pixely]))
        x, y = float(px[0]), float(py[0])
        text = _short_label(ann)
        if ann.type == "constellation":
            painter.label(x, y, text.upper(), CONSTELLATION_COLOR, big=True, centred=True)
        elif ann.type in ("bright", "hd") or ann.radius <= 0:
            color = STAR_COLOR if ann.type in ("bright", "hd") else DEEP_SKY_COLOR
            painter.circle(x, y, star_r, color)
            painter.label(x, y, text, color, offset=star_r + 3)
        else:
            r = max(ann.radius * frame.scale, star_r)
            painter.circle(x, y, r, DEEP_SKY_COLOR)
            # Big circles get their label on the rim, small ones beside them.
            if r > 40:
                painter.label(x + 0.7071 * r, y - 0.7071 * r, text, DEEP_SKY_COLOR, offset=3)
            else:
                painter.label(x, y, text, DEEP_SKY_COLOR, offset=r + 3)


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


def _format_angle(value: float, step: float, *, signed: bool) -> str:
    sign = "-" if value < 0 else ("+" if signed else "")
    minutes = round(abs(value) * 60)
    degrees, arcmin = divmod(minutes, 60)
    if step >= 1.0 or arcmin == 0:
        return f"{sign}{degrees}°"
    return f"{sign}{degrees}°{arcmin:02d}'"


def _draw_grid(painter: _Painter, lines: Sequence[GridLine]) -> None:
    frame = painter.frame
    steps = {
        kind: _spacing([ln.value for ln in lines if ln.kind == kind]) for kind in ("ra", "dec")
    }
    w, h = painter.picture.size
    for line in lines:
        for segment in line.segments:
            px, py = frame.to_picture(segment[:, 0], segment[:, 1])
            points = list(zip(px.tolist(), py.tolist(), strict=True))
            painter.draw.line(points, fill=GRID_COLOR, width=painter.line)
        # Label where the line first enters the picture.
        label = _format_angle(line.value, steps[line.kind], signed=line.kind == "dec")
        for segment in line.segments:
            px, py = frame.to_picture(segment[:, 0], segment[:, 1])
            inside = np.flatnonzero((px >= 0) & (px < w) & (py >= 0) & (py < h))
            if len(inside):
                k = inside[min(len(inside) - 1, 3)]
                painter.label(float(px[k]), float(py[k]), label, GRID_COLOR, offset=3)
                break


@dataclass(frozen=True)
class OverlayLine:
    """A line drawn on the annotated picture: a constellation's stick figure
    (``kind`` "constellation") or the horizon ("horizon"), as 1-based pixel
    polylines, with an optional label at its first point in the picture."""

    kind: str
    segments: list[np.ndarray]  # each (N, 2) x, y
    label: str = ""


def _draw_overlay_lines(painter: _Painter, lines: Sequence[OverlayLine]) -> None:
    w, h = painter.picture.size
    for line in lines:
        color = HORIZON_COLOR if line.kind == "horizon" else CONSTELLATION_COLOR
        labelled = not line.label
        for segment in line.segments:
            px, py = painter.frame.to_picture(segment[:, 0], segment[:, 1])
            points = list(zip(px.tolist(), py.tolist(), strict=True))
            if len(points) >= 2:
                painter.draw.line(points, fill=color, width=painter.line)
            inside = np.flatnonzero((px >= 0) & (px < w) & (py >= 0) & (py < h))
            if not labelled and len(inside):
                k = inside[len(inside) // 2]
                painter.label(float(px[k]), float(py[k]), line.label, color, offset=3)
                labelled = True


def _spacing(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 1.0
    diffs = np.abs(np.diff(np.sort(values)))
    diffs = diffs[diffs > 1e-9]
    return float(diffs.min()) if len(diffs) else 1.0


# -- the pictures ---------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _write_png(picture: Image.Image, path: Path) -> None:
    """Write an RGB picture as PNG: rows unfiltered, zlib level 1.

    Not Pillow's PNG writer: it tries all five row filters on every row, half
    of its time on a noisy sky, and its choice compresses these pictures (grey
    sky repeated in three channels, flat overlays) worse than no filter at all.
    Level 1: a photograph barely compresses further at higher levels.
    """
    rgb = np.asarray(picture.convert("RGB"))
    height, width = rgb.shape[:2]
    rows = np.empty((height, 1 + 3 * width), dtype=np.uint8)
    rows[:, 0] = 0  # filter type None
    rows[:, 1:] = rgb.reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.write(_png_chunk(b"IHDR", header))
        out.write(_png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)))
        out.write(_png_chunk(b"IEND", b""))


def _check_xy(name: str, xy: np.ndarray | None) -> np.ndarray | None:
    if xy is None:
        return None
    arr = np.asarray(xy, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise BadInputError(f"{name} must be an N x 2 array of pixel positions, not {arr.shape}")
    return arr


def make_pictures(
    image: np.ndarray,
    *,
    color: np.ndarray | None,
    bottom_up: bool,
    wcs: WCS | None,
    sources: SourceList | None,
    catalog_xy: np.ndarray | None,
    annotations: Sequence[Annotation],
    out_dir: Path,
    residuals: np.ndarray | None = None,
    overlay: Sequence[OverlayLine] = (),
) -> dict[str, Path]:
    """Write the result pictures of one solve.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image data in file row order (what the extractor saw).
    color : numpy.ndarray or None
        ``(H, W, 3)`` colour version of the image, used for the background of
        every picture when given.
    bottom_up : bool
        True for FITS: stored row 0 is the bottom row on screen, so the
        pictures are flipped vertically.
    wcs : astropy.wcs.WCS or None
        The solution; None for an unsolved image (only the extraction pictures
        are made then).
    sources : SourceList or None
        Detected sources, 1-based FITS pixels.
    catalog_xy : numpy.ndarray or None
        ``N x 2`` 1-based pixel positions of the index stars in the field.
    annotations : sequence of Annotation
        What :func:`skysolve.engine.products.annotations.objects_in_field` returned.
    out_dir : pathlib.Path
        Directory for the files (created when missing).
    residuals : numpy.ndarray, optional
        ``N x 4`` rows of (x, y, dx, dy): matched sources and their fit
        residuals, pixels.  Given with a WCS: ``residuals_display``/
        ``residuals_full`` (PNG) show them as arrows, scaled up.
    overlay : sequence of OverlayLine
        Drawn on the annotated pictures under the labels (a lens solution's
        constellation figures and horizon, curved through the lens).

    Returns
    -------
    dict of str to pathlib.Path
        ``extraction_display``/``extraction_full`` (PNG, sources circled in
        red) always; with a WCS also ``annotated_display``/``annotated_full``
        (JPEG: deep-sky objects circled and named in green, named stars in
        yellow, constellation names in blue), ``red_green_display``/
        ``red_green_full`` (PNG: sources in red, catalogue stars in green) and
        ``grid_display``/``grid_full`` (PNG: RA/Dec lines with labels, orange).
        Display pictures have their longer side at most :data:`DISPLAY_MAX`;
        full ones keep the image size up to :data:`FULL_MAX`.

    Raises
    ------
    skysolve.errors.BadInputError
        Badly shaped arrays.
    """
    data = np.asarray(image)
    if data.ndim != 2 or data.size == 0:
        raise BadInputError(f"image must be a non-empty 2-D array, not shape {data.shape}")
    height, width = data.shape
    if sources is not None and (sources.width, sources.height) != (width, height):
        raise BadInputError(
            f"source list is for a {sources.width}x{sources.height} image, not {width}x{height}"
        )
    cat_xy = _check_xy("catalog_xy", catalog_xy)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    base = _base_picture(data, color, bottom_up)
    full_scale = 1.0 / _bin_factor(width, height)
    display_scale = min(1.0, DISPLAY_MAX / max(width, height))
    # A small image's display and full pictures are the same pixels: draw them
    # once and link the display names to the full files.
    sizes = [("full", full_scale)]
    if display_scale != full_scale:
        sizes.append(("display", display_scale))
    lines = grid_lines(wcs, width, height) if wcs is not None else []
    kinds = ["extraction"] if wcs is None else ["extraction", "red_green", "annotated", "grid"]
    if residuals is not None:
        residuals = np.asarray(residuals, dtype=float).reshape(-1, 4)
        if wcs is not None and len(residuals):
            kinds.append("residuals")
    gain = 1.0
    if residuals is not None and "residuals" in kinds:
        gain = residual_gain(residuals, max(width, height))

    def make(kind: str, size_name: str, background: Image.Image, frame: _Frame) -> Path:
        picture = background.copy()
        painter = _Painter(picture, frame)
        if kind in ("extraction", "red_green") and sources is not None and len(sources):
            _draw_sources(painter, sources.x, sources.y, SOURCE_RED, _source_radius(painter))
        if kind == "red_green" and cat_xy is not None and len(cat_xy):
            radius = _source_radius(painter) * 1.5
            _draw_sources(painter, cat_xy[:, 0], cat_xy[:, 1], CATALOG_GREEN, radius)
        if kind == "annotated":
            _draw_overlay_lines(painter, overlay)
            _draw_annotations(painter, annotations)
        if kind == "grid":
            _draw_grid(painter, lines)
        if kind == "residuals":
            assert residuals is not None
            _draw_residuals(painter, residuals, gain)
        if kind == "annotated":
            path = out_dir / f"{kind}_{size_name}.jpg"
            picture.save(path, format="JPEG", quality=90)
        else:
            path = out_dir / f"{kind}_{size_name}.png"
            _write_png(picture, path)
        return path

    # Pillow releases the GIL while it resizes and encodes, which is most of
    # the work: the pictures are drawn and encoded side by side on the cores.
    made: dict[str, Future[Path]] = {}
    with ThreadPoolExecutor(max_workers=PICTURE_THREADS, thread_name_prefix="picture") as pool:
        for size_name, scale in sizes:
            frame = _Frame(width, height, bottom_up, scale)
            if base.size == frame.size:
                background = base
            else:
                background = base.resize(frame.size, Image.Resampling.LANCZOS)
            for kind in kinds:
                made[f"{kind}_{size_name}"] = pool.submit(make, kind, size_name, background, frame)
        written = {key: future.result() for key, future in made.items()}
    if len(sizes) == 1:
        for key in [k for k in written if k.endswith("_full")]:
            full = written[key]
            display = full.with_name(full.name.replace("_full", "_display"))
            display.unlink(missing_ok=True)
            try:
                os.link(full, display)
            except OSError:
                shutil.copyfile(full, display)
            written[key.replace("_full", "_display")] = display
    return written
