"""A lens model as a FITS WCS, and as the celestial-WCS object the engine draws with.

The FITS form is the lens's zenithal projection (ARC, ZEA, STG or SIN) about
the optical axis, with a SIP polynomial for the radial terms, the shear, the
decentring and the smooth surface.  It is fitted to the model inside
:data:`WCS_REACH_DEG` of the axis only: a polynomial in pixels cannot follow a
lens to the horizon and beyond (the radial terms grow like theta^5 there), so
past that the FITS file is an approximation and the lens model's JSON is the
answer.  An orthographic (SIN) lens cannot be written past 90 degrees at all.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.engine.allsky.model import PROJECTIONS, LensModel

#: The FITS WCS reproduces the model this far from the axis, degrees.
WCS_REACH_DEG = 70.0
#: Order of the SIP polynomials (forward and inverse); a model's smooth
#: surface raises it to two more than the surface's degree.
SIP_ORDER = 7


class LensWCS:
    """The lens model with the part of astropy's celestial WCS the engine uses.

    Pixel coordinates follow astropy: ``origin`` 1 for FITS (1-based), 0 for
    0-based; the model's own are 0-based.
    """

    has_celestial: ClassVar[bool] = True
    pixel_n_dim: ClassVar[int] = 2

    def __init__(
        self, model: LensModel, width: int, height: int, *, reach_deg: float | None = None
    ) -> None:
        self.model = model
        self.width = width
        self.height = height
        self.pixel_shape = (width, height)
        #: Sky farther than this from the axis (below the horizon the stars
        #: reached) maps to no pixel, so nothing is drawn or named there.
        self.reach_deg = reach_deg

    def _to_pixel(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.model.world_to_pixel(ra, dec)
        if self.reach_deg is not None:
            beyond = self.model.off_axis(ra, dec) > self.reach_deg
            x, y = np.where(beyond, np.nan, x), np.where(beyond, np.nan, y)
        return x, y

    @property
    def celestial(self) -> LensWCS:
        return self

    @property
    def pixel_scale_matrix(self) -> np.ndarray:
        """The CD matrix at the axis, degrees per pixel (the scale is what callers use)."""
        m = self.model
        linear = np.array([[(1.0 + m.a) * m.parity, m.b], [m.b * m.parity, 1.0 - m.a]])
        return np.degrees(1.0 / m.focal) * np.linalg.inv(linear)

    def _to_world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's sky positions; a finite stand-in where it has none.

        Far beyond the horizon (a frame's corners outside the image circle) the
        radial polynomial may not invert; the engine still wants every pixel
        on the sky (the field's extent, the constellations' grid), so those
        pixels get the plain equidistant law's directions, at most 175
        degrees off axis.  Nothing is drawn or named there (``reach_deg``).
        """
        m = self.model
        ra, dec = m.pixel_to_world(x, y)
        ra, dec = np.array(ra, dtype=float), np.array(dec, dtype=float)
        bad = ~(np.isfinite(ra) & np.isfinite(dec))
        if bad.any():
            plain = replace(
                m,
                projection="equidistant",
                k1=0.0,
                k2=0.0,
                a=0.0,
                b=0.0,
                p1=0.0,
                p2=0.0,
                surface_order=0,
                surface=(),
            )
            dx, dy = x[bad] - m.center_x, y[bad] - m.center_y
            r = np.hypot(dx, dy)
            shrink = np.minimum(1.0, plain.focal * math.radians(175.0) / np.maximum(r, 1e-9))
            ra[bad], dec[bad] = plain.pixel_to_world(
                m.center_x + dx * shrink, m.center_y + dy * shrink
            )
        return ra, dec

    def all_pix2world(self, *args: Any, **kwargs: Any) -> Any:
        """As astropy's: ``(xy, origin)`` rows, or ``(x, y, origin)`` arrays."""
        if len(args) == 2:
            xy = np.asarray(args[0], dtype=float).reshape(-1, 2)
            origin = int(args[1])
            ra, dec = self._to_world(xy[:, 0] - origin, xy[:, 1] - origin)
            return np.column_stack([ra, dec])
        x, y, origin = args
        shape = np.shape(x)
        ra, dec = self._to_world(
            np.ravel(np.asarray(x, float)) - int(origin),
            np.ravel(np.asarray(y, float)) - int(origin),
        )
        return ra.reshape(shape), dec.reshape(shape)

    def all_world2pix(self, *args: Any, **kwargs: Any) -> Any:
        """As astropy's: ``(radec, origin)`` rows, or ``(ra, dec, origin)`` arrays."""
        if len(args) == 2:
            radec = np.asarray(args[0], dtype=float).reshape(-1, 2)
            origin = int(args[1])
            x, y = self._to_pixel(radec[:, 0], radec[:, 1])
            return np.column_stack([x + origin, y + origin])
        ra, dec, origin = args
        x, y = self._to_pixel(np.asarray(ra, float), np.asarray(dec, float))
        return x + int(origin), y + int(origin)

    wcs_pix2world = all_pix2world
    wcs_world2pix = all_world2pix


def _terms(order: int, start: int) -> list[tuple[int, int]]:
    return [(p, n - p) for n in range(start, order + 1) for p in range(n, -1, -1)]


def _design(u: np.ndarray, v: np.ndarray, terms: list[tuple[int, int]]) -> np.ndarray:
    return np.column_stack([u**p * v**q for p, q in terms])


def _grid(model: LensModel, width: int, height: int, reach_deg: float) -> np.ndarray:
    """0-based pixels on a grid over the frame, those within ``reach_deg`` of the axis."""
    xs = np.linspace(0, width - 1, 60)
    ys = np.linspace(0, height - 1, 60)
    mx, my = np.meshgrid(xs, ys)
    gx, gy = mx.ravel(), my.ravel()
    ra, dec = model.pixel_to_world(gx, gy)
    ok = np.isfinite(ra)
    ok[ok] = model.off_axis(ra[ok], dec[ok]) <= reach_deg
    return np.column_stack([gx[ok], gy[ok]])


def to_fits_header(
    model: LensModel, width: int, height: int, *, reach_deg: float = WCS_REACH_DEG
) -> tuple[fits.Header, float]:
    """The FITS WCS of ``model`` and its largest error (pixels) inside ``reach_deg``.

    Parameters
    ----------
    model : LensModel
        The lens model.
    width, height : int
        The image size.
    reach_deg : float
        The polynomial is fitted to the model within this angle of the axis.

    Returns
    -------
    (astropy.io.fits.Header, float)
        The header (zenithal projection with SIP, astropy and DS9 read it) and
        the largest distance, in pixels, between where it and the model put
        the same sky position, on a grid inside ``reach_deg``.
    """
    code = PROJECTIONS[model.projection]
    crpix = (model.center_x + 1.0, model.center_y + 1.0)
    plain = WCS(naxis=2)
    plain.wcs.ctype = [f"RA---{code}", f"DEC--{code}"]
    plain.wcs.crval = [model.ra, model.dec]
    plain.wcs.crpix = [0.0, 0.0]
    plain.wcs.cd = np.eye(2)
    plain.wcs.set()
    pix = _grid(model, width, height, reach_deg)
    ra, dec = model.pixel_to_world(pix[:, 0], pix[:, 1])
    # Intermediate world coordinates (degrees) of the grid: with CRPIX 0 and CD
    # the identity, astropy's "pixels" are exactly those.
    xw, yw = plain.wcs_world2pix(ra, dec, 1)
    u = pix[:, 0] + 1.0 - crpix[0]
    v = pix[:, 1] + 1.0 - crpix[1]
    s = max(float(np.max(np.hypot(u, v))), 1.0)
    # The SIP runs from pixels to the sky, the surface the other way: the
    # inverse of a polynomial warp needs a few more degrees than the warp.
    order = max(SIP_ORDER, model.surface_order + 2 if model.surface_order else 0)
    terms = _terms(order, 1)
    design = _design(u / s, v / s, terms)
    cx, *_ = np.linalg.lstsq(design, xw, rcond=None)
    cy, *_ = np.linalg.lstsq(design, yw, rcond=None)
    scale = np.array([s ** (p + q) for p, q in terms])
    cx, cy = cx / scale, cy / scale
    cd = np.array([[cx[0], cx[1]], [cy[0], cy[1]]])
    inv = np.linalg.inv(cd)
    # Forward SIP: CD (u + A, v + B) = the polynomial; A, B from its terms of order 2 up.
    a_b = inv @ np.vstack([cx[2:], cy[2:]])
    header = fits.Header()
    header["WCSAXES"] = 2
    header["CTYPE1"] = (f"RA---{code}-SIP", f"{model.projection} lens model + SIP")
    header["CTYPE2"] = (f"DEC--{code}-SIP", f"{model.projection} lens model + SIP")
    header["EQUINOX"] = 2000.0
    header["RADESYS"] = "ICRS"
    header["CRVAL1"] = model.ra
    header["CRVAL2"] = model.dec
    header["CRPIX1"] = crpix[0]
    header["CRPIX2"] = crpix[1]
    header["CD1_1"], header["CD1_2"] = float(cd[0, 0]), float(cd[0, 1])
    header["CD2_1"], header["CD2_2"] = float(cd[1, 0]), float(cd[1, 1])
    header["CUNIT1"], header["CUNIT2"] = "deg", "deg"
    header["IMAGEW"], header["IMAGEH"] = width, height
    header["A_ORDER"] = order
    header["B_ORDER"] = order
    for k, (p, q) in enumerate(terms[2:]):
        header[f"A_{p}_{q}"] = float(a_b[0, k])
        header[f"B_{p}_{q}"] = float(a_b[1, k])
    # Inverse SIP: from the intermediate pixel (u + A, v + B) back to (u, v).
    fu = u + _design(u, v, terms[2:]) @ a_b[0]
    fv = v + _design(u, v, terms[2:]) @ a_b[1]
    inv_terms = _terms(order, 1)
    sf = max(float(np.max(np.hypot(fu, fv))), 1.0)
    d2 = _design(fu / sf, fv / sf, inv_terms)
    iscale = np.array([sf ** (p + q) for p, q in inv_terms])
    ap, *_ = np.linalg.lstsq(d2, u - fu, rcond=None)
    bp, *_ = np.linalg.lstsq(d2, v - fv, rcond=None)
    ap, bp = ap / iscale, bp / iscale
    header["AP_ORDER"] = order
    header["BP_ORDER"] = order
    for k, (p, q) in enumerate(inv_terms):
        header[f"AP_{p}_{q}"] = float(ap[k])
        header[f"BP_{p}_{q}"] = float(bp[k])
    header.add_comment(
        f"All-sky lens model: {model.projection}, focal {model.focal:.3f} px/rad, "
        f"k1 {model.k1:.3g}, k2 {model.k2:.3g}, decentring p1 {model.p1:.3g}, "
        f"p2 {model.p2:.3g}, surface of degree {model.surface_order}; "
        f"SIP fitted within {reach_deg:g} deg of the axis only "
        "(the lens model JSON holds the whole field)."
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check = WCS(header)
        sra, sdec = check.all_pix2world(pix[:, 0] + 1.0, pix[:, 1] + 1.0, 1)
    mx, my = model.world_to_pixel(np.asarray(sra), np.asarray(sdec))
    error = float(np.nanmax(np.hypot(mx - pix[:, 0], my - pix[:, 1]))) if len(pix) else math.nan
    header["ASERRMAX"] = (
        round(error, 4),
        f"max px error vs the lens model within {reach_deg:g} deg",
    )
    return header, error
