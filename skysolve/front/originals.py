"""The image people uploaded: the file itself, and pictures of it for the browser.

Browsers show JPEG, PNG, GIF and WebP but not FITS or most TIFFs, so the site
renders every upload (and every star list, as dots) to a JPEG once, with the
engine's display stretch, and keeps it under ``<data dir>/previews``.  The
original file is served as it was uploaded, under its original name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image, ImageDraw

from skysolve.engine.inputs.formats import sniff_format
from skysolve.engine.inputs.images import load_image
from skysolve.engine.products.stretch import stretch_for_display
from skysolve.errors import NoPicture, SolveError
from skysolve.submissions.models import UserImage

#: Longest side of each rendering, in pixels (display matches the overlays).
SIZES = {"display": 800, "thumbnail": 240}

#: FITS and TIFF uploads larger than this are not rendered in the web process
#: (the engine's reader holds float32 copies: about 16 bytes a pixel in colour).
MAX_RENDER_PIXELS = 40_000_000

CONTENT_TYPES = {
    "fits": "application/fits",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "tiff": "image/tiff",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "webp": "image/webp",
}


__all__ = ["NoPicture"]  # raised here; it lives in skysolve.errors


def original_path(image: UserImage) -> Path | None:
    """The stored file of one image (an archive member, or the submission's file)."""
    relative = image.disk_file or image.submission.disk_file
    if not relative:
        return None
    path = Path(settings.SKYSOLVE_UPLOAD_DIR) / relative
    return path if path.is_file() else None


def original_download(image: UserImage) -> tuple[Path, str, str]:
    """(path, download name, content type) of the uploaded file, or NoPicture."""
    path = original_path(image)
    if path is None:
        raise NoPicture("no stored file for this image (a star list, or not fetched yet)")
    kind = sniff_format(path)
    name = Path(image.original_filename or "").name or path.name
    return path, name, CONTENT_TYPES.get(kind or "", "application/octet-stream")


def preview_path(image: UserImage, size: str) -> Path:
    return Path(settings.DATA_DIR) / "previews" / f"{image.id}-{size}.jpg"


def preview(image: UserImage, size: str) -> Path:
    """A JPEG of the image at most ``SIZES[size]`` pixels across, made once and kept."""
    target = preview_path(image, size)
    if target.is_file():
        return target
    picture = _render(image, SIZES[size])
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed, so a concurrent request never reads half a file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            picture.save(out, "JPEG", quality=88)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _render(image: UserImage, longest: int) -> Image.Image:
    star_list = image.star_list or image.submission.star_list
    if star_list and not (image.disk_file or image.submission.disk_file):
        return _draw_star_list(star_list, longest)
    path = original_path(image)
    if path is None:
        raise NoPicture("no stored file for this image")
    kind = sniff_format(path)
    if kind is None:
        raise NoPicture("the stored file is not an image (an archive, or unreadable)")
    if kind in _BROWSER_FORMATS:
        picture = _render_8bit(path, longest)
        if picture is not None:
            return picture
    try:
        loaded = load_image(path, max_pixels=MAX_RENDER_PIXELS)
    except SolveError as exc:
        raise NoPicture(exc.message) from None
    pixels = stretch_for_display(loaded.data, color=loaded.color)
    if loaded.bottom_up:
        pixels = pixels[::-1]
    mode = "L" if pixels.ndim == 2 else "RGB"
    picture = Image.fromarray(np.ascontiguousarray(pixels), mode=mode).convert("RGB")
    picture.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return picture


#: Formats Pillow shrinks while decoding (JPEG at 1/2, 1/4, 1/8 scale), in 8 bits.
_BROWSER_FORMATS = ("jpeg", "png", "gif", "bmp", "webp")


def _render_8bit(path: Path, longest: int) -> Image.Image | None:
    """An 8-bit picture scaled by Pillow alone, without the float copy the engine makes.

    None for deeper images (16-bit PNG), which need the engine's stretch.
    """
    try:
        with Image.open(path) as img:
            if img.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr"):
                return None
            img.draft("RGB", (longest, longest))
            picture = img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    # Rows as stored, like the overlays (the engine ignores EXIF rotation too).
    picture.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return picture


def _draw_star_list(star_list: dict[str, Any], longest: int) -> Image.Image:
    """White dots on black, brighter stars bigger, as the list places them."""
    width = max(1, int(star_list.get("image_width") or 1))
    height = max(1, int(star_list.get("image_height") or 1))
    scale = longest / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = Image.new("RGB", size, "black")
    draw = ImageDraw.Draw(picture)
    xs, ys = star_list.get("x") or [], star_list.get("y") or []
    count = len(xs)
    flux = star_list.get("flux")
    # Without fluxes the list is taken as brightest first, as clients send it.
    order = np.argsort(-np.asarray(flux, dtype=float)) if flux else np.arange(count)
    rank = np.empty(count)
    rank[order] = np.arange(count) / max(1, count - 1)
    for x, y, r in zip(xs, ys, 1.0 + 3.0 * (1.0 - rank), strict=False):
        cx, cy = (float(x) - 1.0) * scale, (float(y) - 1.0) * scale
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill="white")
    return picture
