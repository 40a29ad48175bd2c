"""Where the sky is in an all-sky frame: the illuminated image circle, less what is not sky.

All-sky cameras put the sky in a circle (whole, or cut by the frame's top and
bottom) on a dark surround, and the sky's edge is ringed by horizon, trees,
buildings, domes and text overlays.  Those carry sources that are no stars.  A
smoothed, binned copy of the frame separates them: the sky is a smooth, lit
area, the surround is dark, and foreground is darker than the sky around it
(at night) or much brighter (lamps, the Moon's glare).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skysolve.errors import BadInputError

#: Side of the binned copy the mask is found on, pixels (its longer side).
BINNED_SIDE = 240
#: A corner is dark below this share of the frame centre's level (above the floor).
CORNER_LEVEL = 0.25


@dataclass(frozen=True)
class SkyRegion:
    """The sky in a frame.

    ``mask`` is a boolean image at full resolution (True: sky).  ``center_x``,
    ``center_y`` (0-based pixels) and ``radius`` describe the lit image circle:
    the centre is where the optical axis most likely is, the radius where the
    horizon most likely is (for a frame cut by its edges, the largest
    distance of the sky from the centre).
    """

    mask: np.ndarray
    center_x: float
    center_y: float
    radius: float
    sky_fraction: float
    background: float
    contrast: float

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether 0-based pixel positions are on the sky."""
        h, w = self.mask.shape
        xi = np.clip(np.round(np.asarray(x, float)).astype(int), 0, w - 1)
        yi = np.clip(np.round(np.asarray(y, float)).astype(int), 0, h - 1)
        inside = (
            (np.asarray(x) >= -0.5) & (np.asarray(x) < w - 0.5)
            & (np.asarray(y) >= -0.5) & (np.asarray(y) < h - 0.5)
        )  # fmt: skip
        return inside & self.mask[yi, xi]


def gray(data: np.ndarray) -> np.ndarray:
    """A 2-D float image from a 2-D image or one with colour planes last or first."""
    a = np.asarray(data)
    if a.ndim == 3:
        axis = 0 if a.shape[0] in (3, 4) and a.shape[-1] not in (3, 4) else -1
        a = a.mean(axis=axis)
    if a.ndim != 2:
        raise BadInputError(f"expected a 2-D image, got shape {np.shape(data)}")
    return np.asarray(a, dtype=np.float32)


def binned(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean of ``factor`` x ``factor`` blocks (the ragged edge dropped)."""
    h, w = image.shape
    hh, ww = h // factor * factor, w // factor * factor
    return image[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor).mean(axis=(1, 3))


def _sliding(a: np.ndarray, size: int, axis: int, op: np.ufunc) -> np.ndarray:
    """``op`` (minimum or maximum) over windows of ``size`` along ``axis``, centred,
    the edges reflected as :mod:`scipy.ndimage` reflects them (``mode="reflect"``).

    By doubling: windows of 2, 4, 8, then one more step to ``size``, so four
    whole-array operations for 15 instead of a pass per pixel per window.
    """
    half = size // 2
    pad = ((half, half), (0, 0)) if axis == 0 else ((0, 0), (half, half))
    p = np.pad(a, pad, mode="symmetric")

    def step(p: np.ndarray, w: int) -> np.ndarray:
        return op(p[:-w], p[w:]) if axis == 0 else op(p[:, :-w], p[:, w:])

    width = 1
    while width * 2 <= size:
        p = step(p, width)
        width *= 2
    if size > width:
        p = step(p, size - width)
    return p


def grey_opening(image: np.ndarray, size: int = 15) -> np.ndarray:
    """The grey opening of a 2-D image by a ``size`` x ``size`` square (odd ``size``).

    The same values as ``scipy.ndimage.grey_opening(image, size=(size, size))``
    (min and max are exact), three to four times sooner on a 2-megapixel
    frame (16 ms against 55).
    """
    if size < 1 or size % 2 == 0:
        raise ValueError("size must be a positive odd number")
    low = _sliding(_sliding(image, size, 0, np.minimum), size, 1, np.minimum)
    return _sliding(_sliding(low, size, 0, np.maximum), size, 1, np.maximum)


def less_floor(image: np.ndarray) -> np.ndarray:
    """``image`` less its 15-px grey opening: the stars on a flat sky.

    Clouds, glare and the Milky Way vary over tens of pixels, an all-sky
    camera's stars over a few: the opening is the image's floor under
    anything smaller than 15 px.  Both source lists of a frame (the whole
    frame's extraction and the stars measured at a model's predictions) read
    it; a search that makes both takes it once (16 ms on 2 megapixels).
    """
    return image - grey_opening(image, 15)


def find_sky(data: np.ndarray) -> SkyRegion:
    """The sky region of an all-sky or fisheye frame.

    Parameters
    ----------
    data : numpy.ndarray
        The image, 2-D (or with colour planes), rows as numpy indexes them.

    Returns
    -------
    SkyRegion
        The mask (may be empty: a frame with no sky region) and the circle.
    """
    # scipy.ndimage is imported here, not with the module: every image solve
    # runs :func:`looks_like_allsky` (numpy alone), and the import costs a
    # quarter to half a second of a fast-path solve that finds no fisheye.
    from scipy import ndimage

    image = gray(data)
    h, w = image.shape
    factor = max(1, math.ceil(max(h, w) / BINNED_SIDE))
    small = binned(image, factor)
    # A median over a few binned pixels removes the stars but keeps the sky's
    # edge, trees and overlays.
    smooth = ndimage.median_filter(small, size=5)
    lo, hi = np.percentile(smooth, [2.0, 99.0])
    span = max(float(hi - lo), 1e-6)
    # The sky's level where the sky most surely is, the frame's centre, against
    # the darkest level (the surround, or dark foreground): the threshold sits
    # between them, low enough to keep the sky's brighter horizon and a
    # gradient across it (one split of the histogram, like Otsu's, cuts such
    # skies in two).
    bh, bw = smooth.shape
    centre = smooth[bh // 3 : bh - bh // 3, bw // 3 : bw - bw // 3]
    sky_level = float(np.median(centre))
    threshold = lo + 0.45 * (sky_level - lo)
    lit = smooth > threshold
    # Lamps and glare: far brighter than the sky's typical level.
    spread = float(np.median(np.abs(centre - sky_level))) + 1e-6
    lit &= smooth < sky_level + max(20.0 * spread, 0.5 * (hi - sky_level) + 3.0 * spread)
    lit = ndimage.binary_opening(lit, iterations=2)
    labels, count = ndimage.label(lit)
    if count:
        sizes = ndimage.sum(lit, labels, index=np.arange(1, count + 1))
        lit = labels == (1 + int(np.argmax(sizes)))
        lit = ndimage.binary_fill_holes(lit)
        # Stay clear of the region's edge, where trees and the horizon blur in.
        lit = ndimage.binary_erosion(lit, iterations=2, border_value=1)
    fraction = float(lit.mean())
    if lit.any():
        ys, xs = np.nonzero(lit)
        cx = (xs.mean() + 0.5) * factor - 0.5
        cy = (ys.mean() + 0.5) * factor - 0.5
        # The frame's centre is the better guess of the axis when the circle is
        # cut by the frame (its centroid moves away from the cut side).
        touches = lit[0].any() or lit[-1].any() or lit[:, 0].any() or lit[:, -1].any()
        if touches:
            cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        dist = np.hypot((xs + 0.5) * factor - 0.5 - cx, (ys + 0.5) * factor - 0.5 - cy)
        radius = float(np.percentile(dist, 99.5)) + factor
        background = float(np.median(small[lit]))
    else:
        cx, cy, radius, background = (w - 1) / 2.0, (h - 1) / 2.0, 0.0, float(np.median(small))
    mask = np.zeros((h, w), dtype=bool)
    up = np.repeat(np.repeat(lit, factor, axis=0), factor, axis=1)
    mask[: up.shape[0], : up.shape[1]] = up
    return SkyRegion(
        mask=mask,
        center_x=float(cx),
        center_y=float(cy),
        radius=radius,
        sky_fraction=fraction,
        background=background,
        contrast=span,
    )


def _otsu(values: np.ndarray, lo: float, hi: float, bins: int = 128) -> float:
    """Otsu's threshold of ``values`` between ``lo`` and ``hi``."""
    hist, edges = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi + 1e-9))
    centres = (edges[:-1] + edges[1:]) / 2.0
    weight = np.cumsum(hist)
    total = weight[-1]
    mean = np.cumsum(hist * centres)
    w0 = weight[:-1]
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean[-1] * w0 / total - mean[:-1]) ** 2 / (w0 * w1 / total)
    between = np.where(np.isfinite(between), between, -1.0)
    return float(centres[int(np.argmax(between))])


def looks_like_allsky(data: np.ndarray) -> bool:
    """Whether a frame looks like a fisheye's: at least three of its corners dark.

    An all-sky lens draws the sky as a disc (or a disc cut by the frame's top
    and bottom) on the dark of the sensor beyond it; trees and buildings on the
    horizon darken the corners of the cut ones.  Measured on the shared corpus:
    10 of its 15 all-sky frames and 1 of its 26 others (a vignetted comet
    photograph, which the all-sky attempt leaves to the ordinary solvers)
    have three or four corners below a quarter of the centre's level.
    """
    a = np.asarray(data)
    step = max(1, math.ceil(max(a.shape[0], a.shape[1]) / BINNED_SIDE))
    # Every step-th pixel: this runs before every solve, and a strided view
    # costs nothing on a 10-megapixel frame where a binned copy takes 40 ms.
    small = gray(a[::step, ::step]) if a.ndim == 2 else gray(a)[::step, ::step]
    bh, bw = small.shape
    c = max(2, min(bh, bw) // 12)
    floor = float(np.percentile(small, 1.0))
    centre = float(np.median(small[bh // 3 : bh - bh // 3, bw // 3 : bw - bw // 3])) - floor
    if centre <= 0:
        return False
    corners = [small[:c, :c], small[:c, -c:], small[-c:, :c], small[-c:, -c:]]
    dark = sum((float(np.median(k)) - floor) < CORNER_LEVEL * centre for k in corners)
    return dark >= 3
