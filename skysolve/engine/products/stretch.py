"""How an image is shown to a person: the display stretch every picture starts from.

An asinh stretch between a black point and a white point taken from robust
percentiles (of a sample, so a huge image costs little); integer images are
counted with a histogram instead of sorted.  The web site's renderings of an
original use the same stretch as the pictures of a solve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from skysolve.errors import BadInputError

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
