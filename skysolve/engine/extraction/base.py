"""The extractor interface and the steps every extractor shares: input checks, binning, output."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from skysolve.engine.results import SourceList
from skysolve.errors import (
    BadInputError,
    InvalidParameterError,
)

#: Images whose longest side is larger than this are binned automatically.
AUTO_DOWNSAMPLE_MAX_SIDE = 4000

#: Largest accepted ``downsample`` factor (nova's limit on ``downsample_factor``).
MAX_DOWNSAMPLE = 64

#: A detection whose 8 neighbouring pixels are on average less than this fraction
#: as bright (above background) as its brightest pixel is a hot pixel or cosmic-ray
#: hit.  A Gaussian star has about 0.08 at FWHM 1.2 px, 0.23 at 1.6 px, 0.6 at 3 px.
_HOT_PIXEL_NEIGHBOUR_RATIO = 0.1

#: Objects more elongated than this (major/minor axis) are trails, diffraction
#: spikes or nebular filaments; their centroids are useless to a solver.
MAX_ELONGATION = 3.0


class SourceExtractor(ABC):
    """One way of finding stars in an image.

    Subclasses implement :meth:`extract`; they share the input checks,
    downsampling and output conventions of this package.
    """

    name: ClassVar[str]

    @abstractmethod
    def extract(
        self,
        data: np.ndarray,
        *,
        max_sources: int = 1000,
        downsample: float | None = None,
        invert: bool = False,
        timeout: float = 120.0,
    ) -> SourceList:
        """Find the stars in ``data``.

        Parameters
        ----------
        data : numpy.ndarray
            2-D image, rows in file order.  Not modified.  Non-finite pixels
            are ignored.
        max_sources : int
            Keep at most this many sources (the brightest).
        downsample : float or None
            Bin by this integer factor before detection (non-integral values are
            rounded); ``None`` bins only very large images (see the package doc).
        invert : bool
            Negate the image first (for negative images: dark stars on a light sky).
        timeout : float
            Wall-clock limit in seconds.

        Returns
        -------
        SourceList
            1-based pixel coordinates of the original ``data``, brightest first,
            with ``width``/``height`` the shape of ``data``.  Empty when nothing
            was found.

        Raises
        ------
        BadInputError
            ``data`` is not a non-empty 2-D numeric array.
        InvalidParameterError
            An option is out of range.
        SolveTimeoutError
            Extraction took longer than ``timeout``.
        """


def check_options(max_sources: int, downsample: float | None, timeout: float) -> None:
    if isinstance(max_sources, bool) or not isinstance(max_sources, int | np.integer):
        raise InvalidParameterError("max_sources must be an integer")
    if max_sources < 1:
        raise InvalidParameterError("max_sources must be at least 1")
    if downsample is not None and not (
        math.isfinite(downsample) and 1 <= downsample <= MAX_DOWNSAMPLE
    ):
        raise InvalidParameterError(f"downsample must be between 1 and {MAX_DOWNSAMPLE}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise InvalidParameterError("timeout must be a positive number of seconds")


def _as_image(data: np.ndarray) -> np.ndarray:
    """A float32, native byte order, C-contiguous copy of a 2-D numeric array."""
    arr = np.asanyarray(data)
    if arr.ndim != 2:
        raise BadInputError(f"source extraction needs a 2-D image, got {arr.ndim} dimensions")
    if arr.size == 0:
        raise BadInputError("source extraction needs a non-empty image")
    if arr.dtype.kind not in "biuf":
        raise BadInputError(f"source extraction needs a numeric image, got dtype {arr.dtype}")
    # Always a copy: callers' arrays (often FITS big-endian memmaps) are never touched.
    return np.array(arr, dtype=np.float32, order="C", copy=True)


def _resolve_downsample(shape: tuple[int, int], downsample: float | None) -> int:
    if downsample is None:
        longest = max(shape)
        return max(1, math.ceil(longest / AUTO_DOWNSAMPLE_MAX_SIDE))
    factor = int(round(downsample))
    if factor > min(shape):
        raise InvalidParameterError(
            f"downsample factor {factor} is larger than the image ({shape[1]}x{shape[0]})"
        )
    return factor


def _bin(image: np.ndarray, factor: int) -> np.ndarray:
    """Block mean over ``factor`` x ``factor`` pixels; NaN where a block is all NaN."""
    if factor == 1:
        return image
    h = image.shape[0] // factor * factor
    w = image.shape[1] // factor * factor
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor)
    finite = np.isfinite(blocks)
    total = np.where(finite, blocks, 0.0).sum(axis=(1, 3), dtype=np.float64)
    count = finite.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return np.ascontiguousarray(mean, dtype=np.float32)


def unbin(coord: np.ndarray, factor: int) -> np.ndarray:
    """Map 1-based coordinates on the binned grid back to the original grid.

    Binned pixel ``k`` (0-based) covers original pixels ``k*f .. k*f+f-1``, so its
    centre is the original 0-based coordinate ``k*f + (f-1)/2``.
    """
    return (np.asarray(coord, dtype=float) - 1.0) * factor + (factor - 1) / 2.0 + 1.0


def prepare_image(
    data: np.ndarray, *, downsample: float | None, invert: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """The working copies of ``data``.

    Returns the full-resolution image (a validated, inverted copy with non-finite
    pixels replaced by the median), the binned image for detection, the mask of
    non-finite binned pixels (``None`` when there are none) and the bin factor.
    """
    image = _as_image(data)
    factor = _resolve_downsample((int(image.shape[0]), int(image.shape[1])), downsample)
    if invert:
        np.negative(image, out=image)
    if factor == 1:
        bad = _fill_non_finite(image)
        return image, image, bad, factor
    binned = _bin(image, factor)
    _fill_non_finite(image)
    return image, binned, _fill_non_finite(binned), factor


def empty_sources(shape: tuple[int, ...], *, with_background: bool = True) -> SourceList:
    zero = np.zeros(0, dtype=float)
    return SourceList(
        x=zero,
        y=zero.copy(),
        flux=zero.copy(),
        width=shape[1],
        height=shape[0],
        background=zero.copy() if with_background else None,
    )


def finish_sources(
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    background: np.ndarray | None,
    *,
    original: np.ndarray,
    factor: int,
    max_sources: int,
    reject_hot_pixels: bool = True,
) -> SourceList:
    """Map 1-based detection-grid positions back, drop hot pixels, sort by flux, cap."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    flux = np.asarray(flux, dtype=float)
    if factor > 1:
        x, y = unbin(x, factor), unbin(y, factor)
        # Flux is a sum over pixels: a binned pixel stands for factor**2 originals.
        # A binned background is a mean per original pixel already: no rescaling.
        flux = flux * factor * factor
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux)
    if reject_hot_pixels:
        ok[ok] &= ~hot_pixels(original, x[ok], y[ok], factor=factor)
    sources = SourceList(
        x=x[ok],
        y=y[ok],
        flux=flux[ok],
        width=int(original.shape[1]),
        height=int(original.shape[0]),
        background=None if background is None else np.asarray(background, dtype=float)[ok],
    )
    return sources.sorted_by_flux().head(max_sources)


def hot_pixels(image: np.ndarray, x: np.ndarray, y: np.ndarray, *, factor: int) -> np.ndarray:
    """Mask of detections that are a single bright pixel (hot pixel, cosmic ray).

    Judged on the full-resolution ``image``: find the brightest pixel near each
    1-based position, then compare its 8 neighbours with it, both above the local
    background (median of the surrounding 5x5 box's border).  A star spreads
    light into its neighbours (mean neighbour excess about a quarter of the peak's at
    FWHM >= 1.6 px); a hot pixel does not.  Stars sharper than FWHM ~1.3 px can
    be mistaken for hot pixels, which the Nyquist-sampled fields solvers need are not.
    """
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=bool)
    h, w = image.shape
    cx = np.clip(np.rint(x - 1.0).astype(int), 0, w - 1)
    cy = np.clip(np.rint(y - 1.0).astype(int), 0, h - 1)
    # A source found on a binned grid lies within half a bin of its brightest pixel.
    r = min(math.ceil(factor / 2), 8) if factor > 1 else 1
    off = np.arange(-r, r + 1)
    oy, ox = (g.ravel() for g in np.meshgrid(off, off, indexing="ij"))
    sy = np.clip(cy[:, None] + oy[None, :], 0, h - 1)
    sx = np.clip(cx[:, None] + ox[None, :], 0, w - 1)
    best = np.argmax(image[sy, sx], axis=1)
    py, px = sy[np.arange(n), best], sx[np.arange(n), best]

    def around(radius: int, ring: bool) -> np.ndarray:
        d = np.arange(-radius, radius + 1)
        dy, dx = (g.ravel() for g in np.meshgrid(d, d, indexing="ij"))
        keep = (np.maximum(abs(dy), abs(dx)) == radius) if ring else ((dy != 0) | (dx != 0))
        yy = np.clip(py[:, None] + dy[keep][None, :], 0, h - 1)
        xx = np.clip(px[:, None] + dx[keep][None, :], 0, w - 1)
        return np.asarray(image[yy, xx], dtype=float)

    peak = np.asarray(image[py, px], dtype=float)
    local_bg = np.median(around(2, ring=True), axis=1)
    neighbours = around(1, ring=False).mean(axis=1)
    excess = peak - local_bg
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (neighbours - local_bg) / excess
    return np.asarray((excess > 0) & (ratio < _HOT_PIXEL_NEIGHBOUR_RATIO), dtype=bool)


def _fill_non_finite(image: np.ndarray) -> np.ndarray | None:
    """Replace NaN/inf in place by the median of the finite pixels.

    Returns the mask of replaced pixels, ``None`` when there were none.  An all-NaN
    image is filled with zeros (callers then report no sources).
    """
    bad = ~np.isfinite(image)
    if not bad.any():
        return None
    good = image[~bad]
    image[bad] = float(np.median(good)) if good.size else 0.0
    return bad
