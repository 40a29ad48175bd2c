"""Image readers: every picture format a submission may arrive in, as one array.

:func:`load_image` turns FITS (plain, tile-compressed ``.fz``, 3-plane colour
cubes), JPEG, PNG (8 and 16 bit), TIFF (integer and float), GIF, BMP and WebP
files -- also inside a gzip or bzip2 wrapper, recognised by content rather than
by name -- into a :class:`LoadedImage` holding a 2-D float32 luminance array.

Rows stay in the order the file stores them, because pixel coordinates in the
engine follow that order (see :mod:`skysolve.engine.results`): for FITS the
first stored row is the bottom of the displayed picture, for every other format
it is the top.

Files come from strangers, so limits are checked before anything large is
allocated: the declared image size is compared with ``max_pixels`` before
decoding, and compressed wrappers are inflated as a stream that stops at
``max_bytes``.  Whatever goes wrong inside Pillow, astropy, tifffile or the
decompressors is reported as one of the :mod:`skysolve.errors` exceptions.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from skysolve.engine.inputs.exif import exif_tags
from skysolve.engine.inputs.fitscards import HeaderCards, read_plain_image
from skysolve.engine.inputs.formats import (
    HEAD_BYTES,
    IMAGE_FORMATS,
    WRAPPERS,
    describe_head,
    open_decompressed,
    sniff_bytes,
)
from skysolve.errors import (
    BadInputError,
    CorruptFileError,
    ImageTooLargeError,
    InvalidParameterError,
    SolveError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from astropy.io import fits

#: FITS files are searched for image data in at most this many HDUs.
MAX_FITS_HDUS = 1000

#: Rec. 709 luminance weights of R, G and B.
REC709_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


@dataclass(frozen=True)
class LoadedImage:
    """One decoded image: luminance, optional colour planes and metadata.

    Attributes
    ----------
    data : numpy.ndarray
        2-D float32 luminance, rows in file order (FITS: first stored row first,
        which is the bottom when displayed; other formats: top row first).  All
        values are finite.
    format : str
        One of :data:`IMAGE_FORMATS`.
    header : astropy.io.fits.Header, HeaderCards or None
        Header of the FITS HDU the data came from (the image header for a
        tile-compressed HDU): its cards read without astropy for a plain
        primary image (:mod:`~skysolve.engine.inputs.fitscards`; astropy's
        header from :func:`~skysolve.engine.inputs.fitscards.astropy_header`);
        None for other formats.
    exif : dict
        EXIF and TIFF tags by name (``FocalLength``, ``FocalLengthIn35mmFilm``,
        ``Make``, ``Model``, ``DateTimeOriginal``, ...); rationals as floats.
    bottom_up : bool
        True when the first row is the bottom of the displayed image (FITS).
    color : numpy.ndarray or None
        ``(H, W, 3)`` float32 R, G, B planes in file row order for colour
        inputs, else None.
    """

    data: np.ndarray
    format: str
    header: fits.Header | HeaderCards | None = None
    exif: dict[str, Any] = field(default_factory=dict)
    bottom_up: bool = False
    color: np.ndarray | None = None

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    @property
    def height(self) -> int:
        return int(self.data.shape[0])


# -- loading ------------------------------------------------------------------


def load_image(
    path: Path, *, max_pixels: int = 250_000_000, max_bytes: int = 2_000_000_000
) -> LoadedImage:
    """Read an image file into a float32 luminance array with its metadata.

    Parameters
    ----------
    path : pathlib.Path
        FITS, JPEG, PNG, TIFF, GIF, BMP or WebP file, possibly gzip- or
        bzip2-compressed.  The format is taken from the content, not the name.
    max_pixels : int, optional
        Largest accepted width * height, checked against the size the file
        declares before any pixel is decoded.
    max_bytes : int, optional
        Largest accepted file size, after decompression.

    Returns
    -------
    LoadedImage
        Luminance (Rec. 709 weights for colour), colour planes for colour
        inputs, the FITS header or the EXIF tags.  NaN and infinite pixels are
        replaced by the median of the finite ones.

    Raises
    ------
    UnsupportedFormatError
        The content is in no supported format (the message says what it looks like).
    CorruptFileError
        The file is truncated or damaged.
    ImageTooLargeError
        More than ``max_pixels`` pixels or ``max_bytes`` bytes.
    BadInputError
        Empty file, an image smaller than 2x2 pixels, no finite pixel, or no
        image data in a FITS file.
    """
    for name, value in (("max_pixels", max_pixels), ("max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidParameterError(f"{name} must be a positive integer, not {value!r}")
    with open_decompressed(Path(path), max_bytes=max_bytes) as fh:
        head = fh.read(HEAD_BYTES)
        fh.seek(0)
        fmt = sniff_bytes(head)
        if fmt in WRAPPERS:
            raise UnsupportedFormatError(f"the file is compressed twice ({fmt} inside a wrapper)")
        if fmt is None:
            raise UnsupportedFormatError(
                f"unrecognised file format ({describe_head(head)}); "
                f"supported: {', '.join(IMAGE_FORMATS)}"
            )
        try:
            if fmt == "fits":
                return _load_fits(fh, max_pixels=max_pixels)
            if fmt == "tiff":
                return _load_tiff(fh, max_pixels=max_pixels)
            return _load_with_pillow(fh, fmt, max_pixels=max_pixels)
        except MemoryError as exc:
            raise ImageTooLargeError(f"not enough memory to decode this {fmt} image") from exc


def _check_size(width: int, height: int, *, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the {what} image is {width}x{height} = {width * height} pixels, "
            f"more than the limit of {max_pixels}"
        )
    if width < 2 or height < 2:
        raise BadInputError(f"the {what} image is {width}x{height} pixels; at least 2x2 is needed")


def _finish(
    pixels: np.ndarray,
    *,
    fmt: str,
    header: fits.Header | HeaderCards | None = None,
    exif: dict[str, Any] | None = None,
    bottom_up: bool = False,
) -> LoadedImage:
    """Luminance and colour planes from an (H, W) or (H, W, C) array."""
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[2] < 3:
        arr = arr[:, :, 0]  # grey (+ alpha)
    if arr.ndim not in (2, 3) or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise BadInputError(f"the {fmt} image has an unusable shape {arr.shape}")
    color: np.ndarray | None = None
    if arr.ndim == 3:
        color = np.array(arr[:, :, :3], dtype=np.float32)  # alpha and extra planes dropped
        for plane in range(3):
            _replace_non_finite(color[:, :, plane], fmt=fmt)
        luminance = color @ REC709_WEIGHTS
    else:
        luminance = np.array(arr, dtype=np.float32)
        _replace_non_finite(luminance, fmt=fmt)
    return LoadedImage(
        data=np.ascontiguousarray(luminance, dtype=np.float32),
        format=fmt,
        header=header,
        exif=exif or {},
        bottom_up=bottom_up,
        color=color,
    )


def _replace_non_finite(plane: np.ndarray, *, fmt: str) -> None:
    """Set NaN/inf pixels of our own float32 copy to the median of the finite ones."""
    finite = np.isfinite(plane)
    if finite.all():
        return
    if not finite.any():
        raise BadInputError(f"the {fmt} image has no finite pixel values (all NaN or infinite)")
    plane[~finite] = np.median(plane[finite])


# -- FITS ---------------------------------------------------------------------


def _load_fits(fh: IO[bytes], *, max_pixels: int) -> LoadedImage:
    file_size = fh.seek(0, os.SEEK_END)
    fh.seek(0)
    # A plain primary image is read without astropy (its import is most of a
    # small frame's read); anything else by astropy, from the start again.
    plain = read_plain_image(
        fh,
        file_size=file_size,
        check=lambda width, height: _check_size(width, height, max_pixels=max_pixels, what="FITS"),
    )
    if plain is not None:
        data, cards = plain
        if data.ndim == 3:
            data = np.moveaxis(data, 0, -1)
        return _finish(data, fmt="fits", header=cards, bottom_up=True)
    fh.seek(0)
    from astropy.io import fits

    # Readers warn about non-standard headers that are still readable; real damage raises.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with fits.open(fh, memmap=False, lazy_load_hdus=True) as hdul:
                return _first_fits_image(hdul, file_size=file_size, max_pixels=max_pixels)
        except SolveError:
            raise
        except MemoryError:
            raise
        except Exception as exc:
            raise CorruptFileError(f"cannot read the FITS file: {exc}") from exc


def _first_fits_image(hdul: fits.HDUList, *, file_size: int, max_pixels: int) -> LoadedImage:
    from astropy.io import fits

    seen = 0
    skipped: list[str] = []
    for index, hdu in enumerate(hdul):
        if index >= MAX_FITS_HDUS:
            raise BadInputError(
                f"no image data in the first {MAX_FITS_HDUS} HDUs of the FITS file; "
                "put the image in the primary HDU or an early extension"
            )
        seen = index + 1
        if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
            continue
        if isinstance(hdu, fits.GroupsHDU):
            continue
        header = hdu.header
        naxis = int(header.get("NAXIS", 0) or 0)
        dims = [int(header.get(f"NAXIS{k}", 0) or 0) for k in range(1, naxis + 1)]
        if naxis == 0 or 0 in dims:
            continue
        if naxis == 1:
            skipped.append(f"HDU {index} is one-dimensional")
            continue
        if min(dims) < 0:
            raise CorruptFileError(f"FITS HDU {index} declares negative axis lengths {dims}")
        width, height = dims[0], dims[1]
        _check_size(width, height, max_pixels=max_pixels, what="FITS")
        if not isinstance(hdu, fits.CompImageHDU):
            _check_fits_length(hdu, index=index, dims=dims, file_size=file_size)
        return _fits_hdu_to_image(hdu, dims=dims)
    detail = f" ({'; '.join(skipped)})" if skipped else ""
    raise BadInputError(f"the FITS file has no image data in its {seen} HDU(s){detail}")


def _check_fits_length(hdu: Any, *, index: int, dims: list[int], file_size: int) -> None:
    bitpix = int(hdu.header.get("BITPIX", 0) or 0)
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise CorruptFileError(f"FITS HDU {index} has an invalid BITPIX {bitpix}")
    needed = hdu.fileinfo()["datLoc"] + abs(bitpix) // 8 * math.prod(dims)
    if needed > file_size:
        raise CorruptFileError(
            f"the FITS file is truncated: HDU {index} needs {needed} bytes, "
            f"the file has {file_size}"
        )


def _fits_hdu_to_image(hdu: Any, *, dims: list[int]) -> LoadedImage:
    header = hdu.header.copy()
    extra = list(reversed(dims[2:]))  # numpy order: outermost axis first
    colour_axis: int | None = None
    if len(dims) == 3 and dims[2] == 3:
        colour_axis = 0
    if not extra:
        data = np.asarray(hdu.data)
    else:
        # Read only the planes we use: a cube of many planes must not be loaded whole.
        index = tuple(slice(None) if i == colour_axis else 0 for i in range(len(extra)))
        data = np.asarray(hdu.section[index])
    if colour_axis is not None:
        data = np.moveaxis(data, 0, -1)
    blank = header.get("BLANK")
    if (
        isinstance(blank, int)
        and np.issubdtype(data.dtype, np.integer)
        and "BSCALE" not in header
        and "BZERO" not in header
    ):
        data = np.where(data == blank, np.float32(np.nan), data.astype(np.float32))
    return _finish(data, fmt="fits", header=header, bottom_up=True)


# -- TIFF (tifffile keeps 16- and 32-bit and float samples exact) ---------------


class _MissingCodecError(Exception):
    """tifffile needs the optional imagecodecs package for this compression."""


def _load_tiff(fh: IO[bytes], *, max_pixels: int) -> LoadedImage:
    try:
        pixels = _read_tiff_pixels(fh, max_pixels=max_pixels)
    except _MissingCodecError as missing:
        # Pillow (libtiff) decodes LZW, JPEG-in-TIFF and friends, in 8 or 16 bit.
        try:
            return _load_with_pillow(fh, "tiff", max_pixels=max_pixels)
        except SolveError:
            raise UnsupportedFormatError(
                f"TIFF compression {missing} is not supported"
            ) from missing.__cause__
    fh.seek(0)
    return _finish(pixels, fmt="tiff", exif=_pillow_exif_only(fh))


def _read_tiff_pixels(fh: IO[bytes], *, max_pixels: int) -> np.ndarray:
    import tifffile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with tifffile.TiffFile(fh) as tif:
                if not tif.pages:
                    raise CorruptFileError("the TIFF file contains no image")
                page = tif.pages[0]
                if not isinstance(page, tifffile.TiffPage):
                    raise CorruptFileError("the TIFF file's first image cannot be read")
                _check_size(
                    int(page.imagewidth), int(page.imagelength), max_pixels=max_pixels, what="TIFF"
                )
                name = getattr(page.compression, "name", str(page.compression))
                try:
                    pixels = page.asarray()
                except (KeyError, NotImplementedError, ImportError) as exc:
                    raise _MissingCodecError(name) from exc
                except ValueError as exc:
                    if "imagecodecs" in str(exc):
                        raise _MissingCodecError(name) from exc
                    raise
                return _tiff_samples(page, pixels)
        except (SolveError, _MissingCodecError, MemoryError):
            raise
        except Exception as exc:
            raise CorruptFileError(f"cannot read the TIFF file: {exc}") from exc


def _tiff_samples(page: Any, pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, S) samples of a TIFF page, photometric applied."""
    axes = str(page.axes)
    arr = np.asarray(pixels)
    # Keep Y, X and S; take the first entry of any other axis (depth, pages).
    index = tuple(slice(None) if a in "YXS" else 0 for a in axes)
    arr = arr[index]
    kept = [a for a in axes if a in "YXS"]
    if "S" in kept:
        arr = np.moveaxis(arr, kept.index("S"), -1)
    photometric = int(page.photometric)
    if photometric == 0:  # MINISWHITE: 0 is white
        if np.issubdtype(arr.dtype, np.integer):
            arr = np.iinfo(arr.dtype).max - arr.astype(np.float64)
        else:
            arr = np.nanmax(arr) - arr
    elif photometric == 3 and page.colormap is not None:  # palette
        cmap = np.asarray(page.colormap)
        arr = np.moveaxis(cmap[:, np.clip(arr, 0, cmap.shape[1] - 1)], 0, -1)
    elif photometric == 5:  # CMYK
        raise UnsupportedFormatError("CMYK TIFF images are not supported; save as RGB")
    return arr


# -- Pillow formats -----------------------------------------------------------


#: Pillow's plugin module and image class of each format.  Only the one a file
#: needs is imported: all five cost about 40 ms of a one-image command's start.
_PILLOW_CLASSES: dict[str, tuple[str, str]] = {
    "jpeg": ("JpegImagePlugin", "JpegImageFile"),
    "png": ("PngImagePlugin", "PngImageFile"),
    "gif": ("GifImagePlugin", "GifImageFile"),
    "bmp": ("BmpImagePlugin", "BmpImageFile"),
    "tiff": ("TiffImagePlugin", "TiffImageFile"),
}


def _pillow_class(fmt: str) -> Any:
    import importlib

    if fmt == "webp":
        try:
            from PIL import WebPImagePlugin
        except ImportError as exc:
            raise UnsupportedFormatError("this installation cannot read WebP images") from exc
        return WebPImagePlugin.WebPImageFile
    module, cls = _PILLOW_CLASSES[fmt]
    return getattr(importlib.import_module(f"PIL.{module}"), cls)


def _load_with_pillow(fh: IO[bytes], fmt: str, *, max_pixels: int) -> LoadedImage:
    from PIL import Image

    cls = _pillow_class(fmt)
    fh.seek(0)
    # Pillow's plugin classes are used directly: Image.open would apply Pillow's own
    # global decompression-bomb limit, which we replace with max_pixels.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with cls(fh) as img:
                width, height = img.size
                _check_size(int(width), int(height), max_pixels=max_pixels, what=fmt.upper())
                img.load()
                pixels = _pillow_pixels(img)
                exif = exif_tags(img)
        except SolveError:
            raise
        except MemoryError:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"the {fmt.upper()} image is too large: {exc}") from exc
        except Exception as exc:
            raise CorruptFileError(f"cannot read the {fmt.upper()} file: {exc}") from exc
    return _finish(pixels, fmt=fmt, exif=exif)


def _pillow_pixels(img: Any) -> np.ndarray:
    mode = img.mode
    if mode in ("L", "I", "F") or mode.startswith("I;16"):
        return np.asarray(img)
    if mode in ("LA", "La", "RGB", "RGBA", "RGBa", "RGBX"):
        return np.asarray(img)
    if mode in ("P", "PA"):
        rgb = np.asarray(img.convert("RGB"))
        if np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(
            rgb[:, :, 1], rgb[:, :, 2]
        ):
            return rgb[:, :, 0]  # grey palette: not a colour image
        return rgb
    if mode == "1":
        return np.asarray(img.convert("L"))
    return np.asarray(img.convert("RGB"))


def _pillow_exif_only(fh: IO[bytes]) -> dict[str, Any]:
    """EXIF/TIFF tags of a TIFF file, read with Pillow (tifffile leaves rationals raw)."""
    from PIL import TiffImagePlugin

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with TiffImagePlugin.TiffImageFile(fh) as img:
                return exif_tags(img)
        except Exception:
            return {}
