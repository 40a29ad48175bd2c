"""The fast path's extraction: the brightest stars only, with windowed centroids."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from skysolve.engine.extraction.base import (
    MAX_ELONGATION,
    check_options,
    empty_sources,
    finish_sources,
    prepare_image,
)
from skysolve.engine.results import SourceList
from skysolve.errors import (
    InvalidParameterError,
)

#: Detection threshold of :func:`extract_bright_sources`, in sigmas of the
#: matched-filtered noise: only the brightest stars are wanted there.
BRIGHT_THRESHOLD_SIGMA = 5.0
#: A frame with fewer sources than this at :data:`BRIGHT_THRESHOLD_SIGMA` is
#: searched again at :data:`SPARSE_THRESHOLD_SIGMA`: the fast path's
#: verification needs a dozen stars beyond its pattern, and in a sparse frame
#: (a small lens, a roof or trees over half of it) the brightest few include
#: the junk (``cedar_roof.jpg``: 18 sources at 5 sigma, 10 of them stars, the
#: match right but unverifiable; 43 at 3 sigma, 24 of them verified).
SPARSE_SOURCES = 30
SPARSE_THRESHOLD_SIGMA = 3.0


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
    pixels and streaks rejected; a sparse frame again at
    :data:`SPARSE_THRESHOLD_SIGMA`) finds them; its centroids
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
    check_options(count, downsample, 1.0)
    original, image, bad, factor = prepare_image(data, downsample=downsample, invert=invert)
    if bad is not None and bad.all():
        return empty_sources(original.shape)
    h, w = image.shape

    def detect(sigma: float) -> list[Any]:
        return list(
            tetra3rs.extract_centroids(
                image,
                sigma_threshold=sigma,
                min_pixels=3,
                max_centroids=count,
                max_elongation=MAX_ELONGATION,
                deblend="reject",
                # The matched filter finds fainter stars, which are not wanted here; on
                # the test fields it also lost a bright star 15 px from a fainter one.
                matched_filter_sigma=None,
            ).centroids
        )

    found = detect(BRIGHT_THRESHOLD_SIGMA)
    if len(found) < min(count, SPARSE_SOURCES):
        found = detect(SPARSE_THRESHOLD_SIGMA)
    n = len(found)
    if n == 0:
        return empty_sources(original.shape)
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
    return finish_sources(
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
