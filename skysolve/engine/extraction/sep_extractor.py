"""The default extractor: Source Extractor's algorithms in-process with the ``sep`` library."""

from __future__ import annotations

import math
import time

import numpy as np
import sep

from skysolve.engine.extraction.base import (
    MAX_ELONGATION,
    SourceExtractor,
    check_options,
    empty_sources,
    finish_sources,
    hot_pixels,
    prepare_image,
    unbin,
)
from skysolve.engine.results import SourceList
from skysolve.errors import (
    InvalidParameterError,
    NoStarsError,
    SolverFailedError,
    SolveTimeoutError,
)

#: Detection threshold of :class:`SepExtractor`, in units of the global background RMS
#: of the unfiltered image.  The threshold is applied to the matched-filtered image,
#: whose noise is about 2.5 times lower for the default kernel, so this is ~4 sigma
#: of the filtered noise: faint enough for hundreds of stars on the shared images,
#: high enough that JPEG block noise and nebulosity do not dominate the list.  On
#: apod3.jpg, the sparsest shared image, 1.5 sigma keeps ~570 sources, 3 sigma ~270.
SEP_THRESHOLD_SIGMA = 1.5
#: An object whose peak is this many times smaller a share of its flux than the
#: image's typical object is extended light (a nebula knot, the glow along a
#: horizon), not a star: a knot of 2.5 px sigma beside stars of 1 px is 6 times
#: flatter, a bright star in a stretched JPEG at most 2-3 times.
_FLATTER = 5.0
#: Fewer objects than this give no reliable typical star: none is judged.
_MIN_FOR_CONCENTRATION = 20


class SepExtractor(SourceExtractor):
    """Source extraction in-process with ``sep`` (the default).

    Background: ``sep.Background`` with a mesh of an eighth of the shorter side,
    between 8 and 64 px, and a 3x3 median filter of the mesh, which follows gradients and
    nebulosity without eating stars.  Detection: :data:`SEP_THRESHOLD_SIGMA`
    times the global background RMS on the image convolved with sep's default
    3x3 kernel, at least 5 connected pixels, deblending on.  Positions are
    refined with Gaussian-windowed centroids (SExtractor's ``XWIN``), which are
    unbiased to a few hundredths of a pixel on well-sampled stars.  Hot pixels,
    singular and very elongated objects are dropped, and so is extended light
    (nebula knots, the glow along a horizon) whose peak is a :data:`_FLATTER`
    times smaller share of its flux than the image's typical object's.  The ``timeout`` is checked
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
        check_options(max_sources, downsample, timeout)
        start = time.monotonic()
        original, image, bad, factor = prepare_image(data, downsample=downsample, invert=invert)
        shape = original.shape
        if bad is not None and bad.all():
            return empty_sources(shape)

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
                return empty_sources(shape)
            rms = 1e-3 * spread

        objects = self._detect(sub, rms, bad, start=start, timeout=timeout)
        if objects is None or len(objects) == 0:
            return empty_sources(shape)
        objects = objects[self._plausible(objects)]
        objects = objects[self._compact(objects, sub, back, image)]
        # Refining centroids is the slow step: do it only for the sources kept, i.e.
        # the brightest max_sources that are not hot pixels (judged at rough positions).
        rough_x = unbin(objects["x"] + 1.0, factor)
        rough_y = unbin(objects["y"] + 1.0, factor)
        objects = objects[~hot_pixels(original, rough_x, rough_y, factor=factor)]
        objects = objects[np.argsort(-objects["flux"], kind="stable")[:max_sources]]
        if len(objects) == 0:
            return empty_sources(shape)

        x, y = self._refine(sub, objects, bad)
        iy = np.clip(np.rint(objects["y"]).astype(int), 0, h - 1)
        ix = np.clip(np.rint(objects["x"]).astype(int), 0, w - 1)
        # sep's x/y are 0-based; SourceList is 1-based.
        return finish_sources(
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
            ok &= a <= MAX_ELONGATION * b
        return np.asarray(ok, dtype=bool)

    @staticmethod
    def _compact(
        objects: np.ndarray, sub: np.ndarray, back: np.ndarray, image: np.ndarray
    ) -> np.ndarray:
        """Mask of objects about as concentrated as the image's stars, or saturated.

        Every star of one image has the same profile, so its peak is about the
        same share of its flux; nebula knots, the glow along a horizon and other
        extended light are many times flatter.  The typical share is the median
        over all objects (most of them are faint stars, whatever the brightest
        few are); saturated objects (flat-topped stars) are kept.
        """
        if len(objects) < _MIN_FOR_CONCENTRATION:
            return np.ones(len(objects), dtype=bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.asarray(objects["peak"], dtype=float) / np.asarray(objects["flux"], float)
        typical = float(np.nanmedian(share))
        if not (math.isfinite(typical) and typical > 0):
            return np.ones(len(objects), dtype=bool)
        h, w = sub.shape
        iy = np.clip(np.rint(objects["y"]).astype(int), 0, h - 1)
        ix = np.clip(np.rint(objects["x"]).astype(int), 0, w - 1)
        top = float(np.nanmax(image))
        saturated = objects["peak"] + back[iy, ix] >= top - 0.02 * abs(top)
        return np.asarray((share >= typical / _FLATTER) | saturated, dtype=bool)

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
