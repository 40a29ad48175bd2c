"""How good an answer is: the statistics of its fit, and the image's stars themselves.

:func:`fit_quality` turns a :class:`~skysolve.engine.fitting.refine.Refit` into
the plain numbers every result carries (CLI JSON, the API's job info, the
results page, FITS header cards).  :func:`star_shapes` measures the FWHM and
elongation of the matched stars (the focus and tilt check of capture
programs), :func:`zero_point` the photometric zero point against the
catalogue magnitudes.  :func:`header_cards` and :func:`write_corr` put them in
the files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skysolve.engine.fitting.refine import Refit
from skysolve.engine.solving.fastpath.tables import write_fits_table

#: Fewer matched, unsaturated stars than this give no zero point and no star shapes.
MIN_PHOTOMETRY_STARS = 5
#: Stars measured for their shape at most (the brightest unsaturated ones).
SHAPE_STARS = 50
#: A star whose peak reaches this share of the image's maximum is taken as saturated.
SATURATED_SHARE = 0.9
#: Cells per side of the grid over which the FWHM is given across the frame.
SHAPE_GRID = 3


@dataclass(frozen=True)
class StarShapes:
    """Median FWHM (pixels) and elongation (major over minor axis) of matched stars,
    and the median of each in every cell of a ``SHAPE_GRID`` x ``SHAPE_GRID`` grid
    over the frame (rows from y = 1 up; None where fewer than three stars were
    measured): focus and tilt across the frame."""

    fwhm: float
    elongation: float
    measured: int
    fwhm_grid: list[list[float | None]]
    elongation_grid: list[list[float | None]]


def fit_quality(
    result: Refit, *, band: str, mag: np.ndarray | None, chosen_by: str | None = None
) -> dict[str, Any]:
    """The quality fields of a refit, JSON-ready.

    Parameters
    ----------
    result : Refit
        The final fit.
    band : str
        The catalogue's magnitude band ("G" for Gaia, "VT" for Tycho-2).
    mag : ndarray or None
        The catalogue magnitudes (indexed by ``result.star_rows``).
    chosen_by : str, optional
        How the SIP order was chosen, when not by request or cross-validation.
    """
    fit = result.fit
    distance = np.hypot(fit.residual_x, fit.residual_y)
    scale = fit.scale
    order = fit.model.order if fit.model.order >= 2 else 0
    out: dict[str, Any] = {
        "matched_stars": len(result.source_rows),
        "rms_px": rounded(fit.rms_px, 4),
        "median_px": rounded(float(np.median(distance)), 4),
        "rms_arcsec": rounded(fit.rms_px * scale, 4),
        "median_arcsec": rounded(float(np.median(distance)) * scale, 4),
        "sip_order": order,
        "order_chosen_by": chosen_by
        or ("request" if result.order_requested else "cross-validation"),
        "ra_error_arcsec": rounded(fit.ra_error, 5),
        "dec_error_arcsec": rounded(fit.dec_error, 5),
        "pixscale_error": rounded(fit.scale_error, 7),
        "rotation_error_deg": rounded(fit.rotation_error, 6),
        "match_radius_px": rounded(result.radius, 3),
        "catalogue_stars": result.stars_in_field,
        "band": band,
        "limiting_mag": None,
    }
    if mag is not None and len(result.star_rows):
        matched = np.asarray(mag, float)[result.star_rows]
        matched = matched[np.isfinite(matched)]
        if len(matched):
            out["limiting_mag"] = rounded(float(np.max(matched)), 2)
    return out


def image_figures(
    image: np.ndarray | None, x: np.ndarray, y: np.ndarray, flux: np.ndarray, mag: np.ndarray | None
) -> dict[str, Any]:
    """The image's own quality fields from its matched stars: shapes and zero point.

    Parameters
    ----------
    image : ndarray or None
        The pixels (2-D); None for a star list (no shapes, no saturation flags).
    x, y : ndarray
        1-based positions of the matched sources.
    flux : ndarray
        Their fluxes.
    mag : ndarray or None
        Their catalogue stars' magnitudes, row for row (None: no zero point).

    Returns
    -------
    dict
        ``zero_point``, ``zero_point_scatter``, ``zero_point_stars``, ``fwhm_px``,
        ``elongation``, ``fwhm_grid``, ``elongation_grid``, ``shape_stars`` (None
        and 0 where too few stars could be measured).
    """
    out: dict[str, Any] = {
        "zero_point": None,
        "zero_point_scatter": None,
        "zero_point_stars": 0,
        "fwhm_px": None,
        "elongation": None,
        "fwhm_grid": None,
        "elongation_grid": None,
        "shape_stars": 0,
    }
    x, y, flux = np.asarray(x, float), np.asarray(y, float), np.asarray(flux, float)
    order = np.argsort(-flux, kind="stable")  # brightest first
    x, y, flux = x[order], y[order], flux[order]
    saturated = None
    if image is not None:
        data = np.asarray(image)
        saturated = saturation_flags(data, x, y)
        shapes = star_shapes(data, x[~saturated], y[~saturated])
        if shapes is not None:
            out["fwhm_px"] = round(shapes.fwhm, 3)
            out["elongation"] = round(shapes.elongation, 3)
            out["fwhm_grid"] = shapes.fwhm_grid
            out["elongation_grid"] = shapes.elongation_grid
            out["shape_stars"] = shapes.measured
    if mag is not None:
        zp = zero_point(flux, np.asarray(mag, float)[order], saturated=saturated)
        if zp is not None:
            out["zero_point"] = round(zp[0], 3)
            out["zero_point_scatter"] = round(zp[1], 3)
            out["zero_point_stars"] = zp[2]
    return out


def zero_point(
    flux: np.ndarray, mag: np.ndarray, *, saturated: np.ndarray | None = None
) -> tuple[float, float, int] | None:
    """Photometric zero point ``mag + 2.5 log10(flux)``: median, robust scatter, stars used.

    Stars with no flux, no magnitude or flagged ``saturated`` are left out;
    without saturation flags (a star list has no pixels) the brightest tenth
    is.  None with fewer than ``MIN_PHOTOMETRY_STARS`` stars.
    """
    flux, mag = np.asarray(flux, float), np.asarray(mag, float)
    ok = np.isfinite(flux) & (flux > 0) & np.isfinite(mag)
    if saturated is not None:
        ok &= ~np.asarray(saturated, bool)
    elif np.count_nonzero(ok) >= 2 * MIN_PHOTOMETRY_STARS:
        ok &= flux < np.quantile(flux[ok], 0.9)
    if np.count_nonzero(ok) < MIN_PHOTOMETRY_STARS:
        return None
    zp = mag[ok] + 2.5 * np.log10(flux[ok])
    centre = float(np.median(zp))
    scatter = 1.4826 * float(np.median(np.abs(zp - centre)))
    # One pass of 3-sigma clipping: variables, blends and misidentified stars.
    keep = np.abs(zp - centre) <= max(3.0 * scatter, 1e-6)
    if np.count_nonzero(keep) >= MIN_PHOTOMETRY_STARS:
        centre = float(np.median(zp[keep]))
        scatter = 1.4826 * float(np.median(np.abs(zp[keep] - centre)))
    return centre, scatter, int(np.count_nonzero(keep))


def peaks(data: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The highest pixel within one pixel of each 1-based position (NaN off the image)."""
    h, w = data.shape
    col = np.rint(np.asarray(x, float) - 1.0).astype(np.int64)
    row = np.rint(np.asarray(y, float) - 1.0).astype(np.int64)
    best = np.full(len(col), -np.inf)
    for dc in (-1, 0, 1):
        for dr in (-1, 0, 1):
            c, r = col + dc, row + dr
            inside = (c >= 0) & (c < w) & (r >= 0) & (r < h)
            values = np.full(len(col), -np.inf)
            values[inside] = data[r[inside], c[inside]]
            best = np.maximum(best, values)
    return np.where(np.isfinite(best), best, np.nan)


def saturation_flags(data: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each star's peak reaches ``SATURATED_SHARE`` of the image's maximum."""
    top = float(np.nanmax(data)) if data.size else 0.0
    peak = peaks(data, x, y)
    return ~(peak < SATURATED_SHARE * top)


def star_shapes(data: np.ndarray, x: np.ndarray, y: np.ndarray) -> StarShapes | None:
    """FWHM and elongation of stars at 1-based (x, y), from background-subtracted
    second moments in a window that follows each star's size.

    Parameters
    ----------
    data : ndarray
        The image, 2-D, in file row order.
    x, y : ndarray
        Star positions (brightest first; saturated ones already left out).

    Returns
    -------
    StarShapes or None
        None when fewer than ``MIN_PHOTOMETRY_STARS`` stars could be measured.
    """
    # Each star's window is made float where it is cut (_moments): converting
    # the whole frame first cost a 5-megapixel image 10-20 ms.
    data = np.asarray(data)
    h, w = data.shape
    fwhm, elong, sx, sy = [], [], [], []
    xs, ys = np.asarray(x, float)[:SHAPE_STARS], np.asarray(y, float)[:SHAPE_STARS]
    for xi, yi in zip(xs, ys, strict=True):
        radius = 6.0
        measured = None
        for _ in range(3):  # the window follows the star's size
            measured = _moments(data, xi - 1.0, yi - 1.0, radius, w, h)
            if measured is None:
                break
            new_radius = min(25.0, max(3.0, 2.0 * measured[0]))
            if abs(new_radius - radius) < 0.5:
                break
            radius = new_radius
        if measured is None:
            continue
        fwhm.append(measured[0])
        elong.append(measured[1])
        sx.append(xi)
        sy.append(yi)
    if len(fwhm) < MIN_PHOTOMETRY_STARS:
        return None
    f, e = np.array(fwhm), np.array(elong)
    cx = np.minimum(SHAPE_GRID - 1, (np.array(sx) - 0.5) * SHAPE_GRID // w).astype(int)
    cy = np.minimum(SHAPE_GRID - 1, (np.array(sy) - 0.5) * SHAPE_GRID // h).astype(int)
    return StarShapes(
        fwhm=float(np.median(f)),
        elongation=float(np.median(e)),
        measured=len(f),
        fwhm_grid=_grid_medians(f, cx, cy),
        elongation_grid=_grid_medians(e, cx, cy),
    )


def _grid_medians(values: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> list[list[float | None]]:
    """The median of ``values`` in each grid cell (rows from y = 1 up; None with
    fewer than three)."""
    grid: list[list[float | None]] = []
    for row in range(SHAPE_GRID):
        cells: list[float | None] = []
        for col in range(SHAPE_GRID):
            here = values[(cx == col) & (cy == row)]
            cells.append(rounded(float(np.median(here)), 3) if len(here) >= 3 else None)
        grid.append(cells)
    return grid


def _moments(
    data: np.ndarray, x: float, y: float, radius: float, w: int, h: int
) -> tuple[float, float] | None:
    """(FWHM, elongation) of the star at 0-based (x, y) inside ``radius`` pixels."""
    r = int(math.ceil(radius)) + 2
    x0, x1 = int(round(x)) - r, int(round(x)) + r + 1
    y0, y1 = int(round(y)) - r, int(round(y)) + r + 1
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        return None
    cut = np.asarray(data[y0:y1, x0:x1], dtype=float)
    # The offsets of every pixel of the window, as broadcast rows and columns.
    dx1, dy1 = np.arange(x0, x1) - x, np.arange(y0, y1) - y
    dx, dy = np.broadcast_to(dx1, cut.shape), np.broadcast_to(dy1[:, None], cut.shape)
    d2 = (dx1 * dx1)[None, :] + (dy1 * dy1)[:, None]
    ring = d2 > radius * radius
    if not np.any(ring):
        return None
    background = _median(cut[ring])
    inside = ~ring
    signal = np.maximum(cut[inside] - background, 0.0)
    total = float(signal.sum())
    if not total > 0:
        return None
    dxi, dyi = dx[inside], dy[inside]
    mx = float((signal * dxi).sum()) / total
    my = float((signal * dyi).sum()) / total
    ux, uy = dxi - mx, dyi - my
    ixx = float((signal * ux * ux).sum()) / total
    iyy = float((signal * uy * uy).sum()) / total
    ixy = float((signal * ux * uy).sum()) / total
    trace, diff = ixx + iyy, math.hypot(ixx - iyy, 2.0 * ixy)
    major, minor = (trace + diff) / 2.0, (trace - diff) / 2.0
    if not minor > 0:
        return None
    # A Gaussian's variance per axis is sigma^2; FWHM = 2 sqrt(2 ln 2) sigma.
    fwhm = 2.3548 * math.sqrt((major + minor) / 2.0)
    return fwhm, math.sqrt(major / minor)


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D float array it may reorder, to the bit, without its
    generality (a star's window asks for one 50 times a solve)."""
    n = len(values)
    half = n // 2
    kth = [half - 1, half, n - 1] if n % 2 == 0 else [half, n - 1]
    values.partition(kth)
    if np.isnan(values[-1]):
        return math.nan
    if n % 2:
        return float(values[half])
    return float((values[half - 1] + values[half]) / 2.0)


def header_cards(quality: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """FITS cards (keyword, value, comment) stating the quality of the fit.

    ``CRDER1``/``CRDER2`` are the WCS standard's random error of each axis
    (degrees); the rest are skysolve's own keywords.  ``REFEPOCH`` is the epoch
    of the stars the WCS was fitted to: ``EQUINOX`` (2000, nova's card) stays.
    """
    cards: list[tuple[str, Any, str]] = []

    def add(key: str, name: str, comment: str, factor: float = 1.0) -> None:
        value = quality.get(name)
        if value is not None and not (isinstance(value, float) and not math.isfinite(value)):
            cards.append((key, value * factor if factor != 1.0 else value, comment))

    add("CRDER1", "ra_error_arcsec", "[deg] 1-sigma error of the centre, RA*cos(Dec)", 1 / 3600)
    add("CRDER2", "dec_error_arcsec", "[deg] 1-sigma error of the centre, Dec", 1 / 3600)
    add("FITNSTAR", "matched_stars", "stars matched in the final fit")
    add("FITRMSPX", "rms_px", "[pix] RMS residual of the matched stars")
    add("FITMEDPX", "median_px", "[pix] median residual of the matched stars")
    add("FITRMSAS", "rms_arcsec", "[arcsec] RMS residual of the matched stars")
    add("FITMEDAS", "median_arcsec", "[arcsec] median residual of the matched stars")
    add("FITORDER", "sip_order", "SIP order of the final fit (0: TAN)")
    add("ERRSCALE", "pixscale_error", "[arcsec/pix] 1-sigma error of the pixel scale")
    add("ERRROT", "rotation_error_deg", "[deg] 1-sigma error of the rotation")
    add("LIMMAG", "limiting_mag", "faintest matched catalogue star")
    add("MAGZP", "zero_point", "photometric zero point, mag + 2.5 log10(flux)")
    add("MAGZPSIG", "zero_point_scatter", "scatter of the zero point, mag")
    add("FWHMPIX", "fwhm_px", "[pix] median FWHM of the matched stars")
    add("ELONG", "elongation", "median elongation (major/minor) of the stars")
    # The epoch the WCS means (EQUINOX 2000 names the frame, not the stars' epoch).
    add("REFCAT", "reference_catalogue", "catalogue the WCS was fitted to")
    add("REFEPOCH", "reference_epoch", "[yr] Julian epoch of its star positions")
    return cards


def write_corr(
    path: Path,
    *,
    field_x: np.ndarray,
    field_y: np.ndarray,
    field_ra: np.ndarray,
    field_dec: np.ndarray,
    index_x: np.ndarray,
    index_y: np.ndarray,
    index_ra: np.ndarray,
    index_dec: np.ndarray,
    index_id: np.ndarray,
    field_id: np.ndarray,
    flux: np.ndarray,
    index_mag: np.ndarray,
    pixscale: float,
) -> Path:
    """``corr.fits``: astrometry.net's columns and each star's residual.

    ``residual_x``/``residual_y`` are the catalogue star's pixel position under
    the final WCS minus the source's (pixels); ``residual_arcsec`` their length
    on the sky.
    """
    rx = np.asarray(index_x, float) - np.asarray(field_x, float)
    ry = np.asarray(index_y, float) - np.asarray(field_y, float)
    weight = np.exp(-(rx**2 + ry**2) / 2.0)
    return write_fits_table(
        path,
        [
            ("field_x", "D", "pixels", field_x),
            ("field_y", "D", "pixels", field_y),
            ("field_ra", "D", "degrees", field_ra),
            ("field_dec", "D", "degrees", field_dec),
            ("index_x", "D", "pixels", index_x),
            ("index_y", "D", "pixels", index_y),
            ("index_ra", "D", "degrees", index_ra),
            ("index_dec", "D", "degrees", index_dec),
            ("index_id", "J", "none", index_id),
            ("field_id", "J", "none", field_id),
            ("match_weight", "D", "none", weight),
            ("FLUX", "E", "", flux),
            ("index_mag", "E", "mag", index_mag),
            ("residual_x", "D", "pixels", rx),
            ("residual_y", "D", "pixels", ry),
            ("residual_arcsec", "D", "arcsec", np.hypot(rx, ry) * pixscale),
        ],
    )


def read_residuals(path: Path | None) -> np.ndarray | None:
    """Rows of (x, y, dx, dy) from a ``corr.fits`` written by :func:`write_corr`
    (None when there is none, or it has no residual columns: a solver's own)."""
    if path is None or not Path(path).is_file():
        return None
    from astropy.io import fits

    with fits.open(path) as hdul:
        table = hdul[1].data
        if table is None or "residual_x" not in table.columns.names:
            return None
        columns = ("field_x", "field_y", "residual_x", "residual_y")
        return np.column_stack([np.asarray(table[name], dtype=float) for name in columns])


def rounded(value: float | None, digits: int) -> float | None:
    """``value`` rounded to ``digits`` for JSON, None when it is missing or not finite."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def finite_rms(values: np.ndarray) -> float:
    """The RMS of the finite ``values``; NaN when there are none."""
    values = values[np.isfinite(values)]
    return float(np.sqrt(np.mean(values**2))) if len(values) else math.nan


def finite_median(values: np.ndarray) -> float:
    """The median of the finite ``values``; NaN when there are none."""
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else math.nan
