"""Stars measured where a known lens model puts them: the stored profile's quick path.

A camera's stored model predicts where its next frame's catalogue stars are to
a few pixels, so the frame need not be searched whole: a small window about
each prediction is enough to find the star, if it shows, and its centroid.
That replaces sep's detection and deblending over the whole frame (0.13-0.43 s
on a 2-megapixel frame) by work on the windows alone.

Two source lists come out of a frame:

- :func:`bright_sources`, found without the model (sep on a binned copy,
  centroids at full resolution), for the chance test that decides whether the
  model holds: sources found where the model says would prove nothing;
- :func:`predicted_sources`, measured at the model's predictions, for the fit.

Centroids are Gaussian-windowed (SExtractor's ``XWIN``, ``sep.winpos``) on the
frame less its grey opening and sep's background, as the full extraction
measures them; the window is one for all the frame's stars (see :func:`measure`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sep

from skysolve.engine.allsky.model import LensModel
from skysolve.engine.allsky.sky import SkyRegion, binned, less_floor
from skysolve.engine.extraction.base import MAX_ELONGATION
from skysolve.engine.extraction.sep_extractor import SEP_THRESHOLD_SIGMA
from skysolve.engine.results import SourceList

#: Half-width (pixels) of the box a star's moments and significance are read in.
BOX = 3
#: The centroid window's sigma as a share of the stars' median RMS major axis.
WINDOW_SHARE = 0.7
#: Fewest pixels of that box above the threshold for a star (sep's ``minarea``).
MIN_AREA = 5
#: Most pixels of the binned copy the bright sources are found on (the factor
#: at most 4: coarser bins merge too many neighbouring stars).
BINNED_PIXELS = 250_000


@dataclass(frozen=True)
class FlatFrame:
    """The frame as the centroids read it: less its grey opening and sep's background.

    ``filtered`` is ``sub`` through sep's 3x3 detection kernel (edges repeated),
    what the detection rule reads.
    """

    sub: np.ndarray
    rms: float
    filtered: np.ndarray


def flat_frame(image: np.ndarray, *, flat: np.ndarray | None = None) -> FlatFrame:
    """The 2-D float32 ``image`` less its 15-px grey opening and sep's background mesh.

    The same steps as the full extraction's (:func:`~skysolve.engine.allsky.blind.sky_sources`
    and :class:`~skysolve.engine.extraction.SepExtractor`), so a centroid
    measured here is the one measured there.  ``flat``: ``image`` less its
    grey opening (:func:`.less_floor`), when the caller has it.
    """
    flat = np.ascontiguousarray(less_floor(image) if flat is None else flat, dtype=np.float32)
    h, w = flat.shape
    mesh = int(np.clip(min(h, w) // 8, 8, 64))
    bkg = sep.Background(flat, bw=mesh, bh=mesh, fw=3, fh=3)
    sub = flat - bkg.back()
    rms = float(bkg.globalrms)
    if not (math.isfinite(rms) and rms > 0):
        rms = max(1e-3 * float(np.ptp(sub)), 1e-12)
    sub = np.ascontiguousarray(sub, dtype=np.float32)
    # sep's default kernel, [1 2 1] x [1 2 1] / 16: separable, two passes.
    p = np.pad(sub, 1, mode="edge")
    rows = (p[:-2] + 2.0 * p[1:-1] + p[2:]) / 4.0
    filtered = (rows[:, :-2] + 2.0 * rows[:, 1:-1] + rows[:, 2:]) / 4.0
    return FlatFrame(sub=sub, rms=rms, filtered=np.ascontiguousarray(filtered, np.float32))


def _boxes(image: np.ndarray, cx: np.ndarray, cy: np.ndarray, half: int) -> np.ndarray:
    """``(n, 2 half + 1, 2 half + 1)`` windows of ``image`` about (cx, cy), edges repeated."""
    h, w = image.shape
    off = np.arange(-half, half + 1)
    rows = np.clip(cy[:, None] + off, 0, h - 1)
    cols = np.clip(cx[:, None] + off, 0, w - 1)
    return image[rows[:, :, None], cols[:, None, :]]


def measure(
    frame: FlatFrame, x: np.ndarray, y: np.ndarray, *, search: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centroids of the stars within ``search`` pixels of (x, y), 0-based pixels.

    The brightest pixel of the filtered frame within ``search`` pixels is the
    star's rough place; it is a star when it and at least :data:`MIN_AREA`
    pixels of the box about it stand :data:`SEP_THRESHOLD_SIGMA` times the
    background RMS above the sky (sep's detection rule) and it is not a trail
    (major axis at most :data:`MAX_ELONGATION` times the minor).  Returns
    ``(x, y, flux, found)``: the windowed centroid, the box's sum, and whether
    a star was found there (the centroid converged near the rough place).
    """
    sub = frame.sub
    h, w = sub.shape
    n = len(x)
    empty = np.zeros(0)
    if n == 0:
        return empty, empty, empty, np.zeros(0, bool)
    reach = max(1, math.ceil(search))
    cx = np.rint(np.asarray(x, float)).astype(int)
    cy = np.rint(np.asarray(y, float)).astype(int)
    boxes = _boxes(frame.filtered, cx, cy, reach)
    off = np.arange(-reach, reach + 1)
    near = np.hypot(off[:, None], off[None, :]) <= search + 0.5
    scored = np.where(near[None], boxes, -np.inf).reshape(n, -1)
    best = np.argmax(scored, axis=1)
    px = cx + off[best % len(off)]
    py = cy + off[best // len(off)]
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    threshold = SEP_THRESHOLD_SIGMA * frame.rms
    # The box about each peak: filtered (the detection rule) and as it is (the moments).
    around = _boxes(frame.filtered, px, py, BOX)
    above = around > threshold
    area = above.reshape(n, -1).sum(axis=1)
    boff = np.arange(-BOX, BOX + 1, dtype=float)
    raw = _boxes(sub, px, py, BOX).astype(float)
    weight = np.where(above, np.maximum(raw, 0.0), 0.0)
    total = weight.sum(axis=(1, 2))
    safe = np.where(total > 0, total, 1.0)
    mx = (weight * boff[None, None, :]).sum(axis=(1, 2)) / safe
    my = (weight * boff[None, :, None]).sum(axis=(1, 2)) / safe
    dx = boff[None, None, :] - mx[:, None, None]
    dy = boff[None, :, None] - my[:, None, None]
    xx = (weight * dx**2).sum(axis=(1, 2)) / safe
    yy = (weight * dy**2).sum(axis=(1, 2)) / safe
    xy = (weight * dx * dy).sum(axis=(1, 2)) / safe
    # The RMS major and minor axes, as sep's ``a`` and ``b``.
    mean, diff = (xx + yy) / 2.0, np.sqrt(((xx - yy) / 2.0) ** 2 + xy**2)
    a = np.sqrt(np.maximum(mean + diff, 0.0))
    b = np.sqrt(np.maximum(mean - diff, 0.0))
    found = inside & (around[:, BOX, BOX] > threshold) & (area >= MIN_AREA) & (total > 0)
    found &= a <= MAX_ELONGATION * np.maximum(b, 1e-6)
    flux = raw.sum(axis=(1, 2))
    out_x = np.full(n, np.nan)
    out_y = np.full(n, np.nan)
    if found.any():
        # One window for all stars, 0.7 times their median RMS major axis: measured
        # on the corpus's eleven solved frames against each star's own axis (the
        # full extraction's window), the per-star window mixes neighbours and
        # wings into faint stars' centroids (RMS 0.02-0.12 px worse), a common
        # narrower one is at least as good on nine frames of the eleven.
        sig = np.full(int(found.sum()), max(0.5, WINDOW_SHARE * float(np.median(a[found]))))
        sx, sy = px[found].astype(float), py[found].astype(float)
        wx, wy, flag = sep.winpos(sub, sx, sy, sig, subpix=5)
        ok = (flag == 0) & np.isfinite(wx) & np.isfinite(wy)
        ok &= np.hypot(wx - sx, wy - sy) <= np.maximum(2.0, a[found])
        out_x[found] = np.where(ok, wx, np.nan)
        out_y[found] = np.where(ok, wy, np.nan)
        found[found] = ok
    return out_x, out_y, flux, found


def _source_list(
    x: np.ndarray, y: np.ndarray, flux: np.ndarray, region: SkyRegion, width: int, height: int
) -> SourceList:
    """The sources on the sky, each once, brightest first (0-based pixels)."""
    keep = np.isfinite(x) & np.isfinite(y)
    keep[keep] = region.contains(x[keep], y[keep])
    x, y, flux = x[keep], y[keep], flux[keep]
    order = np.argsort(-flux, kind="stable")
    x, y, flux = x[order], y[order], flux[order]
    # Two predictions (or two binned detections) can settle on the same star:
    # it is one source.  Pixels of a tenth are finer than any centroid's error.
    cells = np.column_stack([np.rint(x * 10.0), np.rint(y * 10.0)])
    _, first = np.unique(cells, axis=0, return_index=True)
    first = np.sort(first)
    return SourceList(x[first], y[first], flux[first], width, height)


def bright_sources(frame: FlatFrame, region: SkyRegion, *, most: int = 400) -> SourceList:
    """The frame's brightest sources on the sky, found without any model.

    sep's detection on a binned copy (a sixteenth of the pixels of a
    2-megapixel frame), then each centroid measured at full resolution by
    :func:`measure`.  0-based pixels, brightest first.
    """
    sub = frame.sub
    h, w = sub.shape
    factor = int(np.clip(math.ceil(math.sqrt(h * w / BINNED_PIXELS)), 1, 4))
    small = np.ascontiguousarray(binned(sub, factor), dtype=np.float32)
    # Averaging factor^2 pixels divides white noise by factor; JPEG and
    # demosaicked noise is correlated, so the binned copy's own spread is used.
    spread = float(np.median(np.abs(small - np.median(small)))) * 1.4826
    rms = spread if math.isfinite(spread) and spread > 0 else frame.rms / factor
    objects = sep.extract(
        small, 3.0, err=rms, minarea=2, filter_kernel=sep.default_kernel, clean=True
    )
    if len(objects) == 0:
        return SourceList(np.zeros(0), np.zeros(0), np.zeros(0), w, h)
    objects = objects[np.argsort(-objects["flux"], kind="stable")[: 2 * most]]
    x0 = (np.asarray(objects["x"], float) + 0.5) * factor - 0.5
    y0 = (np.asarray(objects["y"], float) + 0.5) * factor - 0.5
    x, y, flux, found = measure(frame, x0, y0, search=float(factor))
    sources = _source_list(x[found], y[found], flux[found], region, w, h)
    return sources.head(most) if len(sources) > most else sources


def predicted_sources(
    frame: FlatFrame,
    model: LensModel,
    xyz: np.ndarray,
    region: SkyRegion,
    *,
    search: float,
    most: int,
) -> SourceList:
    """The stars measured within ``search`` pixels of where ``model`` puts catalogue stars.

    ``xyz``: the catalogue's unit vectors, brightest first; the ``most``
    brightest that land on the sky region are measured.  0-based pixels,
    brightest (by the box's sum) first.
    """
    h, w = frame.sub.shape
    cam = xyz @ model.rotation.T
    rows = np.flatnonzero(cam[:, 2] >= math.cos(model.max_theta - math.radians(0.5)))
    px, py = model.camera_to_pixel(cam[rows])
    ok = np.isfinite(px) & np.isfinite(py)
    ok[ok] = region.contains(px[ok], py[ok])
    px, py = px[ok][:most], py[ok][:most]
    x, y, flux, found = measure(frame, px, py, search=search)
    return _source_list(x[found], y[found], flux[found], region, w, h)
