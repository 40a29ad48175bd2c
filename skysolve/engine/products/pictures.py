"""Pictures of a solve: annotated, red-green, extraction and RA/Dec grid images.

Every picture shows the image the way a person sees it: arrays arrive in file
row order, and FITS arrays (``bottom_up=True``, row 0 at the bottom) are
flipped so that row 0 is drawn at the bottom, as ds9 shows them.  Positions
given in skysolve's 1-based FITS pixel convention are mapped accordingly: pixel
``(x, y)`` is drawn at column ``x - 1`` and at row ``y - 1`` (top-down files) or
``height - y`` (bottom-up files) of the full-size picture, then scaled.

The display stretch is :mod:`~skysolve.engine.products.stretch`'s and the RA/Dec
grid's geometry :mod:`~skysolve.engine.products.grid`'s.

Two sizes are written: "display" pictures have their longer side scaled down
to :data:`DISPLAY_MAX` (never up), "full" pictures keep the original size up to
:data:`FULL_MAX` on the longer side; larger images are binned by a whole
factor first so memory stays bounded (one float32 copy of the binned image).
The pictures are drawn and encoded side by side on :data:`PICTURE_THREADS`
threads; Pillow and zlib release the GIL for most of that work.

Kept whole: with the stretch and the grid's geometry out, what is left draws one
set of pictures: the frame, the painter and the overlays serve
:func:`make_pictures` alone.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.wcs import WCS
from PIL import Image, ImageDraw, ImageFont

from skysolve.engine.products.grid import GridLine, format_angle, grid_lines
from skysolve.engine.products.stretch import stretch_for_display
from skysolve.engine.results import Annotation, SourceList
from skysolve.errors import BadInputError

__all__ = ["DISPLAY_MAX", "FULL_MAX", "make_pictures"]

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


def residual_bar_unit(per_pixel: float, width: float) -> float:
    """The residual the scale bar stands for, pixels: 1, or 10 where a 1-pixel
    residual's arrow (``per_pixel`` picture pixels long) is shorter than 8 pixels,
    or 0.1, 0.01... where it is longer than a quarter of the picture's ``width``
    (a fit to a tenth of a pixel or better, whose arrows are drawn hundreds of
    times longer: a 1-pixel bar would run off the picture)."""
    if per_pixel < 8:
        return 10.0
    unit = 1.0
    while per_pixel * unit > width / 4 and unit > 1e-4:
        unit /= 10.0
    return unit


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
    width, height = painter.picture.size
    unit = residual_bar_unit(gain * painter.frame.scale, width)
    bar = gain * unit * painter.frame.scale
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
        label = format_angle(line.value, steps[line.kind], signed=line.kind == "dec")
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
