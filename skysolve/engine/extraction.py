"""Source extraction: find the stars in an image and return a :class:`SourceList`.

Three interchangeable extractors sit behind :class:`SourceExtractor`:

``sep``
    In-process Source Extractor algorithms (the ``sep`` library); the default.
``image2xy``
    astrometry.net's ``image2xy`` program, what nova.astrometry.net runs.
``sextractor``
    Debian's ``source-extractor`` program (nova's ``use_sextractor``).

Every extractor takes a 2-D array whose rows are in the order the file stores
them and returns positions in 1-based FITS pixel coordinates of that array (the
centre of ``data[0, 0]`` is (1, 1), ``x`` runs along a row), brightest first.

Downsampling
------------
``downsample=f`` bins the image by the integer ``f`` (block mean; rows and
columns left over at the far edges are dropped) before detection; positions are
mapped back to the original pixel grid.  When ``downsample`` is ``None`` an
image whose longest side exceeds :data:`AUTO_DOWNSAMPLE_MAX_SIDE` pixels is
binned by ``ceil(longest / AUTO_DOWNSAMPLE_MAX_SIDE)`` so extraction time and
memory stay bounded; ``downsample=1`` turns that off.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import sep
from astropy.io import fits

from skysolve.engine.results import SourceList
from skysolve.errors import (
    BadInputError,
    ConfigurationError,
    InvalidParameterError,
    NoStarsError,
    SolverFailedError,
    SolveTimeoutError,
)

__all__ = [
    "AUTO_DOWNSAMPLE_MAX_SIDE",
    "EXTRACTORS",
    "Image2xyExtractor",
    "SEP_THRESHOLD_SIGMA",
    "SOLVER_UNIFORMIZE_CELLS",
    "SExtractorExtractor",
    "SepExtractor",
    "SourceExtractor",
    "extract_bright_sources",
    "resort",
    "extract_sources",
    "get_extractor",
    "uniformize",
]

#: Images whose longest side is larger than this are binned automatically.
AUTO_DOWNSAMPLE_MAX_SIDE = 4000

#: Largest accepted ``downsample`` factor (nova's limit on ``downsample_factor``).
MAX_DOWNSAMPLE = 64

#: Detection threshold of :class:`SepExtractor`, in units of the global background RMS
#: of the unfiltered image.  The threshold is applied to the matched-filtered image,
#: whose noise is about 2.5 times lower for the default kernel, so this is ~4 sigma
#: of the filtered noise: faint enough for hundreds of stars on the shared images,
#: high enough that JPEG block noise and nebulosity do not dominate the list.  On
#: apod3.jpg, the sparsest shared image, 1.5 sigma keeps ~570 sources, 3 sigma ~270.
SEP_THRESHOLD_SIGMA = 1.5

#: A detection whose 8 neighbouring pixels are on average less than this fraction
#: as bright (above background) as its brightest pixel is a hot pixel or cosmic-ray
#: hit.  A Gaussian star has about 0.08 at FWHM 1.2 px, 0.23 at 1.6 px, 0.6 at 3 px.
_HOT_PIXEL_NEIGHBOUR_RATIO = 0.1

#: Objects more elongated than this (major/minor axis) are trails, diffraction
#: spikes or nebular filaments; their centroids are useless to a solver.
_MAX_ELONGATION = 3.0

#: Cells for :func:`uniformize` when handing a source list to a solver
#: (astrometry.net's ``--uniformize`` default).  Measured with ``solve-field
#: --uniformize 0`` on sep's 1000 brightest sources of the shared images (wall
#: clock, loaded 2-core machine), uniformized vs brightest-first: apod2 6.1 vs
#: 18.9 s, apod3 4.6 vs 24.3 s, apod4 0.2 vs 0.1 s.  Extraction itself still
#: returns brightest first (the :class:`SourceList` contract); the solver asks.
SOLVER_UNIFORMIZE_CELLS = 10

_DEBIAN_PACKAGE = {"image2xy": "astrometry.net", "source-extractor": "source-extractor"}


# -- the interface -------------------------------------------------------------


class SourceExtractor(ABC):
    """One way of finding stars in an image.

    Subclasses implement :meth:`extract`; they share the input checks,
    downsampling and output conventions of this module.
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
            rounded); ``None`` bins only very large images (see module doc).
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


# -- shared helpers --------------------------------------------------------------


def _check_options(max_sources: int, downsample: float | None, timeout: float) -> None:
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


def _unbin(coord: np.ndarray, factor: int) -> np.ndarray:
    """Map 1-based coordinates on the binned grid back to the original grid.

    Binned pixel ``k`` (0-based) covers original pixels ``k*f .. k*f+f-1``, so its
    centre is the original 0-based coordinate ``k*f + (f-1)/2``.
    """
    return (np.asarray(coord, dtype=float) - 1.0) * factor + (factor - 1) / 2.0 + 1.0


def _prepare(
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


def _empty(shape: tuple[int, ...], *, with_background: bool = True) -> SourceList:
    zero = np.zeros(0, dtype=float)
    return SourceList(
        x=zero,
        y=zero.copy(),
        flux=zero.copy(),
        width=shape[1],
        height=shape[0],
        background=zero.copy() if with_background else None,
    )


def _finish(
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
        x, y = _unbin(x, factor), _unbin(y, factor)
        # Flux is a sum over pixels: a binned pixel stands for factor**2 originals.
        # A binned background is a mean per original pixel already: no rescaling.
        flux = flux * factor * factor
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux)
    if reject_hot_pixels:
        ok[ok] &= ~_hot_pixels(original, x[ok], y[ok], factor=factor)
    sources = SourceList(
        x=x[ok],
        y=y[ok],
        flux=flux[ok],
        width=int(original.shape[1]),
        height=int(original.shape[0]),
        background=None if background is None else np.asarray(background, dtype=float)[ok],
    )
    return sources.sorted_by_flux().head(max_sources)


def _hot_pixels(image: np.ndarray, x: np.ndarray, y: np.ndarray, *, factor: int) -> np.ndarray:
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


# -- sep ---------------------------------------------------------------------------


class SepExtractor(SourceExtractor):
    """Source extraction in-process with ``sep`` (the default).

    Background: ``sep.Background`` with a mesh of an eighth of the shorter side,
    between 8 and 64 px, and a 3x3 median filter of the mesh, which follows gradients and
    nebulosity without eating stars.  Detection: :data:`SEP_THRESHOLD_SIGMA`
    times the global background RMS on the image convolved with sep's default
    3x3 kernel, at least 5 connected pixels, deblending on.  Positions are
    refined with Gaussian-windowed centroids (SExtractor's ``XWIN``), which are
    unbiased to a few hundredths of a pixel on well-sampled stars.  Hot pixels,
    singular and very elongated objects are dropped.  The ``timeout`` is checked
    between retries only (sep runs in-process and cannot be interrupted).
    """

    name = "sep"

    def __init__(self, *, threshold: float = SEP_THRESHOLD_SIGMA) -> None:
        if not (math.isfinite(threshold) and threshold > 0):
            raise InvalidParameterError("threshold must be a positive number of sigmas")
        self.threshold = threshold

    def extract(
        self,
        data: np.ndarray,
        *,
        max_sources: int = 1000,
        downsample: float | None = None,
        invert: bool = False,
        timeout: float = 120.0,
    ) -> SourceList:
        _check_options(max_sources, downsample, timeout)
        start = time.monotonic()
        original, image, bad, factor = _prepare(data, downsample=downsample, invert=invert)
        shape = original.shape
        if bad is not None and bad.all():
            return _empty(shape)

        h, w = image.shape
        mesh = int(np.clip(min(h, w) // 8, 8, 64))
        try:
            bkg = sep.Background(image, mask=bad, bw=mesh, bh=mesh, fw=3, fh=3)
            back = bkg.back()
        except Exception as exc:  # sep raises bare Exception subclasses
            raise SolverFailedError(f"sep background estimation failed: {exc}") from exc
        sub = image - back
        if bad is not None:
            sub[bad] = 0.0
        rms = float(bkg.globalrms)
        if not (math.isfinite(rms) and rms > 0):
            # A noiseless (synthetic) or flat image: fall back to the spread of the data.
            spread = float(np.ptp(sub))
            if not (math.isfinite(spread) and spread > 0):
                return _empty(shape)
            rms = 1e-3 * spread

        objects = self._detect(sub, rms, bad, start=start, timeout=timeout)
        if objects is None or len(objects) == 0:
            return _empty(shape)
        objects = objects[self._plausible(objects)]
        # Refining centroids is the slow step: do it only for the sources kept, i.e.
        # the brightest max_sources that are not hot pixels (judged at rough positions).
        rough_x = _unbin(objects["x"] + 1.0, factor)
        rough_y = _unbin(objects["y"] + 1.0, factor)
        objects = objects[~_hot_pixels(original, rough_x, rough_y, factor=factor)]
        objects = objects[np.argsort(-objects["flux"], kind="stable")[:max_sources]]
        if len(objects) == 0:
            return _empty(shape)

        x, y = self._refine(sub, objects, bad)
        iy = np.clip(np.rint(objects["y"]).astype(int), 0, h - 1)
        ix = np.clip(np.rint(objects["x"]).astype(int), 0, w - 1)
        # sep's x/y are 0-based; SourceList is 1-based.
        return _finish(
            x + 1.0,
            y + 1.0,
            objects["flux"],
            back[iy, ix],
            original=original,
            factor=factor,
            max_sources=max_sources,
            reject_hot_pixels=False,  # done above, before the cap
        )

    def _detect(
        self,
        sub: np.ndarray,
        rms: float,
        mask: np.ndarray | None,
        *,
        start: float,
        timeout: float,
    ) -> np.ndarray | None:
        """Run ``sep.extract``, raising the threshold when sep's buffers overflow."""
        # sep keeps candidate pixels in a global buffer (default 300 000 entries,
        # allocated per call): large enough for a crowded 4000x4000 frame, small
        # enough not to waste memory.  Both settings only ever grow here.
        pixstack = int(np.clip(sub.size // 4, 300_000, 4_000_000))
        if sep.get_extract_pixstack() < pixstack:
            sep.set_extract_pixstack(pixstack)
        if sep.get_sub_object_limit() < 4096:
            sep.set_sub_object_limit(4096)
        threshold = self.threshold
        last_error: Exception | None = None
        for _attempt in range(4):
            if time.monotonic() - start > timeout:
                raise SolveTimeoutError(f"source extraction took longer than {timeout:g} s")
            try:
                return sep.extract(
                    sub,
                    threshold,
                    err=rms,
                    mask=mask,
                    minarea=5,
                    filter_kernel=sep.default_kernel,
                    deblend_nthresh=32,
                    deblend_cont=0.005,
                    clean=True,
                )
            except Exception as exc:  # "internal pixel buffer full", "deblending overflow"
                last_error = exc
                # Overflows come from huge connected regions (nebulae, gradients
                # left over): a higher threshold shrinks them and keeps the stars.
                threshold *= 2.0
        raise NoStarsError(
            f"source extraction failed even at {threshold / 2:g} sigma: {last_error}"
        )

    @staticmethod
    def _plausible(objects: np.ndarray) -> np.ndarray:
        """Mask of objects that look like stars."""
        flux = objects["flux"]
        a = objects["a"]
        b = objects["b"]
        ok = np.isfinite(flux) & (flux > 0) & np.isfinite(a) & np.isfinite(b)
        ok &= (objects["flag"] & sep.OBJ_SINGU) == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ok &= a <= _MAX_ELONGATION * b
        return np.asarray(ok, dtype=bool)

    @staticmethod
    def _refine(
        sub: np.ndarray, objects: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian-windowed centroids, falling back to the isophotal ones."""
        x0 = np.asarray(objects["x"], dtype=float)
        y0 = np.asarray(objects["y"], dtype=float)
        try:
            # The window's sigma should match the star's; the isophotal RMS major axis
            # is a robust estimate of it (SExtractor's 2 * FLUX_RADIUS / 2.35 is
            # pulled up by background residuals within the flux radius' aperture).
            # Capped at 4 px: wider windows (nebular knots, big saturated discs)
            # make winpos slow and help nothing a solver needs.
            sig = np.clip(np.nan_to_num(np.asarray(objects["a"], dtype=float), nan=1.0), 0.5, 4.0)
            x, y, flag = sep.winpos(sub, x0, y0, sig, mask=mask, subpix=5)
        except Exception:  # a centroid refinement failure must not lose the sources
            return x0, y0
        # Keep the isophotal position where the window diverged or wandered off.
        bad = (flag != 0) | ~np.isfinite(x) | ~np.isfinite(y)
        bad |= np.hypot(x - x0, y - y0) > np.maximum(2.0, objects["a"])
        return np.where(bad, x0, x), np.where(bad, y0, y)


# -- the fast path's extraction ----------------------------------------------------

#: Detection threshold of :func:`extract_bright_sources`, in sigmas of the
#: matched-filtered noise: only the brightest stars are wanted there.
BRIGHT_THRESHOLD_SIGMA = 5.0


def extract_bright_sources(
    data: np.ndarray,
    *,
    count: int = 300,
    downsample: float | None = None,
    invert: bool = False,
) -> SourceList:
    """The ``count`` brightest stars, found in a few milliseconds.

    What a pattern-hash solver needs: a few hundred bright stars with accurate
    positions, not the faint ones.  ``tetra3rs``'s single-pass detector
    (:data:`BRIGHT_THRESHOLD_SIGMA` sigma, blends with two peaks dropped, hot
    pixels and streaks rejected) finds them; its centroids
    (a parabola through the peak) are then replaced by Gaussian-windowed ones
    (SExtractor's ``XWIN``, as :class:`SepExtractor` measures) on the local
    background, which brings them to a few hundredths of a pixel on
    well-sampled stars.  :class:`SepExtractor` at 1.5 sigma with deblending
    takes about ten times longer; the full list is for astrometry.net.

    Parameters
    ----------
    data : numpy.ndarray
        2-D image, rows in file order.  Not modified.
    count : int
        Keep at most this many sources (the brightest).
    downsample, invert
        As for :func:`extract_sources`.

    Returns
    -------
    SourceList
        1-based pixel coordinates of ``data``, brightest first; ``background``
        is the local sky level at each source.  Empty when nothing was found.
    """
    import tetra3rs

    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise InvalidParameterError("count must be a whole number of at least 1")
    _check_options(count, downsample, 1.0)
    original, image, bad, factor = _prepare(data, downsample=downsample, invert=invert)
    if bad is not None and bad.all():
        return _empty(original.shape)
    h, w = image.shape
    found = tetra3rs.extract_centroids(
        image,
        sigma_threshold=BRIGHT_THRESHOLD_SIGMA,
        min_pixels=3,
        max_centroids=count,
        max_elongation=_MAX_ELONGATION,
        deblend="reject",
        # The matched filter finds fainter stars, which are not wanted here; on
        # the test fields it also lost a bright star 15 px from a fainter one.
        matched_filter_sigma=None,
    ).centroids
    n = len(found)
    if n == 0:
        return _empty(original.shape)
    # tetra3rs puts the origin at the image centre: x - (w + 1) / 2 in 1-based pixels.
    x0 = np.array([c.x for c in found], dtype=float) + (w - 1) / 2.0
    y0 = np.array([c.y for c in found], dtype=float) + (h - 1) / 2.0
    flux = np.array([c.brightness for c in found], dtype=float)
    # The window's sigma should be the PSF's, the same for every star: the
    # median over the stars of the root mean second moment of their pixels.
    moments = [float(cov[0, 0] + cov[1, 1]) for c in found[:50] if (cov := c.cov) is not None]
    spread = float(np.median(moments)) if moments else 2.0
    psf_sigma = float(np.clip(math.sqrt(max(spread, 0.0) / 2.0), 0.6, 3.0))
    x, y, background = _windowed_centroids(image, x0, y0, np.full(n, psf_sigma))
    return _finish(
        x + 1.0,
        y + 1.0,
        flux,
        background,
        original=original,
        factor=factor,
        max_sources=count,
    )


def _windowed_centroids(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    *,
    iterations: int = 16,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-windowed centroids (SExtractor's ``XWIN``) on a local background.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image (not background-subtracted).
    x, y : numpy.ndarray
        0-based starting positions (column, row).
    sigma : numpy.ndarray
        Window sigma of each source, pixels.

    Returns
    -------
    x, y, background : numpy.ndarray
        0-based refined positions (the start where the window diverged) and
        the local background (median of the border of the cut-out).
    """
    h, w = image.shape
    n = len(x)
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    # One cut-out size for all: about three window sigmas, at least 7x7.
    r = int(np.clip(math.ceil(3.0 * float(np.median(sigma))), 3, 8))
    r = min(r, (min(h, w) - 1) // 2)
    off = np.arange(-r, r + 1)
    cx = np.clip(np.rint(x).astype(np.intp), r, w - 1 - r)
    cy = np.clip(np.rint(y).astype(np.intp), r, h - 1 - r)
    cut = image[cy[:, None, None] + off[None, :, None], cx[:, None, None] + off[None, None, :]]
    cut = cut.astype(np.float32)
    border = np.concatenate(
        [cut[:, 0, :], cut[:, -1, :], cut[:, 1:-1, 0], cut[:, 1:-1, -1]], axis=1
    )
    background = np.median(border, axis=1)
    cut -= background[:, None, None]
    # Positions relative to each cut-out's centre pixel.
    u = np.asarray(x, float) - cx
    v = np.asarray(y, float) - cy
    gx, gy = off[None, None, :].astype(np.float32), off[None, :, None].astype(np.float32)
    inv2s2 = (0.5 / np.asarray(sigma, float) ** 2).astype(np.float32)
    active = np.arange(n)
    for _ in range(iterations):
        # Only the windows still moving are iterated.
        du = gx - u[active, None, None].astype(np.float32)
        dv = gy - v[active, None, None].astype(np.float32)
        weighted = np.exp(-(du * du + dv * dv) * inv2s2[active, None, None]) * cut[active]
        total = weighted.sum(axis=(1, 2), dtype=np.float64)
        good = total > 0
        total = np.where(good, total, np.inf)
        step_u = np.clip(2.0 * (weighted * du).sum(axis=(1, 2), dtype=np.float64) / total, -1, 1)
        step_v = np.clip(2.0 * (weighted * dv).sum(axis=(1, 2), dtype=np.float64) / total, -1, 1)
        u[active] += step_u
        v[active] += step_v
        active = active[good & ((np.abs(step_u) > 2e-4) | (np.abs(step_v) > 2e-4))]
        if len(active) == 0:
            break
    rx, ry = u + cx, v + cy
    # The detector's centroid of a blob of two touching stars lies between them;
    # the window walks to the brighter one.  Where it walked out of the
    # cut-out it has diverged: keep the detector's position.
    lost = ~np.isfinite(rx) | ~np.isfinite(ry) | (np.hypot(rx - x, ry - y) > r)
    return np.where(lost, x, rx), np.where(lost, y, ry), background


# -- external programs ---------------------------------------------------------------


def _find_binary(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise ConfigurationError(
            f"{program} is not installed (Debian package {_DEBIAN_PACKAGE[program]})"
        )
    return path


def _run(argv: list[str], *, timeout: float, cwd: Path) -> None:
    """Run a program without a shell; translate its failures."""
    try:
        # argv is a list (no shell) of a binary found by shutil.which and our temp paths.
        proc = subprocess.run(  # noqa: S603
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SolveTimeoutError(
            f"{Path(argv[0]).name} took longer than {timeout:g} s and was stopped"
        ) from exc
    except OSError as exc:
        raise ConfigurationError(f"cannot run {argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or b"").decode("utf-8", "replace").strip()
        tail = tail[-500:] if tail else "no output"
        raise SolverFailedError(
            f"{Path(argv[0]).name} failed with exit status {proc.returncode}: {tail}"
        )


def _write_fits(path: Path, image: np.ndarray) -> None:
    fits.PrimaryHDU(data=image.astype(np.float32, copy=False)).writeto(path, overwrite=True)


def _read_table(path: Path, hdu: int, columns: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The named columns of a FITS binary table; ``None`` when there are no rows."""
    if not path.exists():
        raise SolverFailedError(f"the source extractor wrote no output file {path.name}")
    try:
        with fits.open(path, memmap=False) as hdul:
            if len(hdul) <= hdu or hdul[hdu].data is None or len(hdul[hdu].data) == 0:
                return None
            table = hdul[hdu].data
            names = {n.upper(): n for n in table.columns.names}
            out = {}
            for col in columns:
                if col.upper() not in names:
                    raise SolverFailedError(f"{path.name} has no column {col}")
                out[col] = np.array(table[names[col.upper()]], dtype=float)
            return out
    except (OSError, ValueError, TypeError) as exc:
        raise SolverFailedError(f"cannot read {path.name}: {exc}") from exc


class _ProgramExtractor(SourceExtractor):
    """An extractor that runs an outside program on a temporary FITS file.

    Subclasses name the ``program`` and implement :meth:`_run_program`, which
    runs it in ``work`` on ``work/image.fits`` and returns its catalogue's
    columns (X, Y, FLUX, BACKGROUND) or None when it found nothing.
    """

    program: ClassVar[str]

    def extract(
        self,
        data: np.ndarray,
        *,
        max_sources: int = 1000,
        downsample: float | None = None,
        invert: bool = False,
        timeout: float = 120.0,
    ) -> SourceList:
        _check_options(max_sources, downsample, timeout)
        binary = _find_binary(self.program)
        original, image, bad, factor = _prepare(data, downsample=downsample, invert=invert)
        shape = original.shape
        if (bad is not None and bad.all()) or float(np.ptp(image)) == 0.0:
            # A flat image has no noise to scale a threshold by: the programs
            # divide by it and report garbage.
            return _empty(shape)
        with tempfile.TemporaryDirectory(prefix=f"skysolve-{self.name}-") as tmp:
            work = Path(tmp)
            _write_fits(work / "image.fits", image)
            found = self._run_program(binary, work, image, timeout)
        if found is None:
            return _empty(shape)
        x, y, flux, background = found
        return _finish(
            x, y, flux, background, original=original, factor=factor, max_sources=max_sources
        )

    @abstractmethod
    def _run_program(
        self, binary: str, work: Path, image: np.ndarray, timeout: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Run the program on ``work/image.fits``; X, Y, FLUX, BACKGROUND or None."""


class Image2xyExtractor(_ProgramExtractor):
    """astrometry.net's ``image2xy`` (``simplexy``), nova's default extractor.

    The (inverted, binned) image is written to a temporary float32 FITS file;
    ``image2xy`` subtracts a median-filtered background and finds peaks at
    8 sigma.  Its X/Y are already 1-based.  Non-finite pixels are replaced by
    the median first, since ``image2xy`` does not skip them.
    """

    name = "image2xy"
    program = "image2xy"

    def _run_program(
        self, binary: str, work: Path, image: np.ndarray, timeout: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        _run(
            [binary, "-O", "-o", str(work / "image.xy.fits"), str(work / "image.fits")],
            timeout=timeout,
            cwd=work,
        )
        cols = _read_table(work / "image.xy.fits", 1, ("X", "Y", "FLUX", "BACKGROUND"))
        if cols is None:
            return None
        return cols["X"], cols["Y"], cols["FLUX"], cols["BACKGROUND"]


#: 5x5 Gaussian convolution kernel, FWHM 2 px (SExtractor's ``gauss_2.0_5x5``
#: values, generated from the formula so no file outside this module is needed).
def _gauss_kernel_text(fwhm: float = 2.0, size: int = 5) -> str:
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    r = np.arange(size) - (size - 1) / 2.0
    kernel = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2.0 * sigma**2))
    rows = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in kernel)
    return f"CONV NORM\n# {size}x{size} Gaussian, FWHM {fwhm:g} px\n{rows}\n"


_SEXTRACTOR_PARAMS = (
    "X_IMAGE",
    "Y_IMAGE",
    "XWIN_IMAGE",
    "YWIN_IMAGE",
    "FLAGS_WIN",
    "FLUX_AUTO",
    "BACKGROUND",
    "FLAGS",
    "ELONGATION",
)


class SExtractorExtractor(_ProgramExtractor):
    """Debian's ``source-extractor`` (SExtractor 2.x), nova's ``use_sextractor``.

    Runs with a configuration written to a temporary directory: 1.5 sigma
    detection on a 5x5 Gaussian-filtered image, 5 pixel minimum area, 64 px
    background mesh, FITS_1.0 catalogue with X_IMAGE, Y_IMAGE (1-based; the
    windowed XWIN_IMAGE/YWIN_IMAGE are used where valid), FLUX_AUTO and
    BACKGROUND.  Non-finite pixels are replaced by the median.
    """

    name = "sextractor"
    program = "source-extractor"

    def _run_program(
        self, binary: str, work: Path, image: np.ndarray, timeout: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        (work / "skysolve.param").write_text("\n".join(_SEXTRACTOR_PARAMS) + "\n")
        (work / "skysolve.conv").write_text(_gauss_kernel_text())
        pixstack = int(np.clip(image.size // 2, 300_000, 8_000_000))
        config = {
            "CATALOG_NAME": str(work / "catalog.fits"),
            "CATALOG_TYPE": "FITS_1.0",
            "PARAMETERS_NAME": str(work / "skysolve.param"),
            "DETECT_TYPE": "CCD",
            "DETECT_MINAREA": "5",
            "DETECT_THRESH": "1.5",
            "ANALYSIS_THRESH": "1.5",
            "FILTER": "Y",
            "FILTER_NAME": str(work / "skysolve.conv"),
            "DEBLEND_NTHRESH": "32",
            "DEBLEND_MINCONT": "0.005",
            "CLEAN": "Y",
            "CLEAN_PARAM": "1.0",
            "MASK_TYPE": "CORRECT",
            "SATUR_LEVEL": "1e29",
            "MAG_ZEROPOINT": "0.0",
            "GAIN": "0.0",
            "PIXEL_SCALE": "1.0",
            "SEEING_FWHM": "2.0",
            "BACK_SIZE": str(int(np.clip(min(image.shape) // 8, 8, 64))),
            "BACK_FILTERSIZE": "3",
            "BACKPHOTO_TYPE": "GLOBAL",
            "CHECKIMAGE_TYPE": "NONE",
            "MEMORY_OBJSTACK": "3000",
            "MEMORY_PIXSTACK": str(pixstack),
            "MEMORY_BUFSIZE": "1024",
            "VERBOSE_TYPE": "QUIET",
            "WRITE_XML": "N",
            "NTHREADS": "1",
        }
        (work / "skysolve.sex").write_text(
            "".join(f"{key:<16} {value}\n" for key, value in config.items())
        )
        _run(
            [binary, str(work / "image.fits"), "-c", str(work / "skysolve.sex")],
            timeout=timeout,
            cwd=work,
        )
        cols = _read_table(work / "catalog.fits", 1, _SEXTRACTOR_PARAMS)
        if cols is None:
            return None
        # Keep neighbours (1), deblended (2), saturated (4) and incomplete Kron
        # apertures (16: a flux problem, not a position one); drop objects cut by
        # the image edge (8) and those with corrupted isophotes or overflows (32+).
        ok = (cols["FLAGS"].astype(int) & ~(1 | 2 | 4 | 16)) == 0
        ok &= cols["ELONGATION"] <= _MAX_ELONGATION
        ok &= cols["FLUX_AUTO"] > 0
        # Windowed centroids are far less biased by neighbours and noise than the
        # isophotal X_IMAGE; keep the isophotal ones where the window failed.
        win_ok = (cols["FLAGS_WIN"] == 0) & np.isfinite(cols["XWIN_IMAGE"])
        win_ok &= (
            np.hypot(cols["XWIN_IMAGE"] - cols["X_IMAGE"], cols["YWIN_IMAGE"] - cols["Y_IMAGE"]) < 2
        )
        x = np.where(win_ok, cols["XWIN_IMAGE"], cols["X_IMAGE"])
        y = np.where(win_ok, cols["YWIN_IMAGE"], cols["Y_IMAGE"])
        return x[ok], y[ok], cols["FLUX_AUTO"][ok], cols["BACKGROUND"][ok]


# -- choosing ------------------------------------------------------------------------

_EXTRACTORS: dict[str, type[SourceExtractor]] = {
    cls.name: cls for cls in (SepExtractor, Image2xyExtractor, SExtractorExtractor)
}

#: Names accepted by :func:`get_extractor`, default first.
EXTRACTORS: tuple[str, ...] = tuple(_EXTRACTORS)


def get_extractor(name: str) -> SourceExtractor:
    """The extractor called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`EXTRACTORS` (``"sep"``, ``"image2xy"``, ``"sextractor"``).

    Returns
    -------
    SourceExtractor
        A new instance with default settings.

    Raises
    ------
    InvalidParameterError
        ``name`` is not a known extractor.
    """
    try:
        cls = _EXTRACTORS[name]
    except (KeyError, TypeError):
        raise InvalidParameterError(
            f"unknown source extractor {name!r}; choose one of {', '.join(EXTRACTORS)}"
        ) from None
    return cls()


def extract_sources(
    data: np.ndarray,
    *,
    method: str = "sep",
    max_sources: int = 1000,
    downsample: float | None = None,
    invert: bool = False,
    timeout: float = 120.0,
    uniformize_cells: int = 0,
) -> SourceList:
    """Find the stars in an image with the extractor called ``method``.

    Parameters
    ----------
    data : numpy.ndarray
        2-D image, rows in file order.  Not modified.
    method : str
        ``"sep"`` (default), ``"image2xy"`` or ``"sextractor"``.
    max_sources : int
        Keep at most this many sources (the brightest).
    downsample : float or None
        Bin by this integer factor first (nova's ``downsample_factor``);
        ``None`` bins only images larger than :data:`AUTO_DOWNSAMPLE_MAX_SIDE`.
    invert : bool
        Negate the image first (negative images).
    timeout : float
        Wall-clock limit in seconds.
    uniformize_cells : int
        0 (default): brightest first.  Otherwise reorder the (capped) list with
        :func:`uniformize` over about this many cells, which is what a solver
        should be given (see :data:`SOLVER_UNIFORMIZE_CELLS`).

    Returns
    -------
    SourceList
        1-based FITS pixel coordinates of ``data``, brightest first unless
        ``uniformize_cells`` asks otherwise.

    Raises
    ------
    InvalidParameterError
        Unknown ``method`` or an option out of range.
    BadInputError
        ``data`` is not a non-empty 2-D numeric array.
    ConfigurationError
        The external program for ``method`` is not installed.
    SolveTimeoutError
        Extraction took longer than ``timeout``.
    """
    if isinstance(uniformize_cells, bool) or not isinstance(uniformize_cells, int | np.integer):
        raise InvalidParameterError("uniformize_cells must be an integer")
    if uniformize_cells < 0:
        raise InvalidParameterError("uniformize_cells must not be negative")
    sources = get_extractor(method).extract(
        data, max_sources=max_sources, downsample=downsample, invert=invert, timeout=timeout
    )
    return uniformize(sources, cells=uniformize_cells) if uniformize_cells else sources


def resort(sources: SourceList) -> SourceList:
    """astrometry.net's ``resort-xylist`` order, which ``solve-field`` applies.

    Two rankings, by flux above the local background and by the raw flux
    (flux + background), interleaved without repeats: brightest-by-flux, then
    brightest-by-raw-flux, and so on.  On processed pictures with nebulae the
    background model swallows part of the stars on the nebula and of the
    saturated bright ones, which the index holds; the raw ranking brings them
    back near the head of the list, where the engine builds its first quads.
    (On apod2.jpg, image2xy's list in flux order needs about 50 s of engine
    time, in this order 3 s.)  A list without backgrounds keeps its order.
    """
    n = len(sources)
    if n == 0 or sources.background is None:
        return sources
    flux = np.asarray(sources.flux, dtype=float)
    raw = flux + np.asarray(sources.background, dtype=float)
    by_flux = np.argsort(-flux, kind="stable")
    by_raw = np.argsort(-raw, kind="stable")
    interleaved = np.column_stack([by_flux, by_raw]).ravel()
    # The first occurrence of each source, in interleaved order.
    _, first = np.unique(interleaved, return_index=True)
    return sources.take(interleaved[np.sort(first)])


def uniformize(sources: SourceList, *, cells: int = 10) -> SourceList:
    """Reorder sources so that the first ones are spread over the whole field.

    The image is cut into about ``cells`` nearly square boxes; the result lists
    the brightest source of every box, then the second brightest of every box,
    and so on (within a round, brighter first).  This is astrometry.net's
    ``--uniformize`` ordering.

    Parameters
    ----------
    sources : SourceList
        Sources, brightest first.
    cells : int
        Approximate number of boxes; ``cells <= 1`` returns ``sources`` unchanged.

    Returns
    -------
    SourceList
        The same sources in the new order.
    """
    n = len(sources)
    if cells <= 1 or n == 0:
        return sources
    w, h = sources.width, sources.height
    nx = max(1, int(round(math.sqrt(cells * w / h))))
    ny = max(1, int(round(cells / nx)))
    x = np.asarray(sources.x, dtype=float)
    y = np.asarray(sources.y, dtype=float)
    ix = np.clip(((x - 0.5) / w * nx).astype(int), 0, nx - 1)
    iy = np.clip(((y - 0.5) / h * ny).astype(int), 0, ny - 1)
    cell = iy * nx + ix
    brightness_rank = np.arange(n)
    rank_in_cell = np.empty(n, dtype=int)
    for c in np.unique(cell):
        members = np.flatnonzero(cell == c)
        rank_in_cell[members] = np.arange(members.size)
    order = np.lexsort((brightness_rank, rank_in_cell))
    return sources.take(order)
