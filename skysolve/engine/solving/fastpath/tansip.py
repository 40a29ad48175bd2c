"""The fast path's WCS: TAN-SIP evaluated in numpy, its least-squares fit, its FITS header."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from skysolve.engine.inputs.fitscards import format_value

if TYPE_CHECKING:
    from astropy.io import fits


#: The least squares moves the tangent point to the sky position of CRPIX at most
#: this many times...
TANGENT_STEPS = 6
#: ... until the fitted centre lies this close to it (degrees).
TANGENT_SETTLED = 1e-11


def _gnomonic(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    """Tangent-plane (xi East, eta North) in degrees about (ra0, dec0); NaN behind."""
    r, d = np.radians(ra), np.radians(dec)
    r0, d0 = math.radians(ra0), math.radians(dec0)
    cosc = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(r - r0)
    cosc = np.where(cosc > 1e-6, cosc, np.nan)
    xi = np.cos(d) * np.sin(r - r0) / cosc
    eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(r - r0)) / cosc
    return np.degrees(np.column_stack([xi, eta]))


def _deproject(
    xi: np.ndarray, eta: np.ndarray, ra0: float, dec0: float
) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (degrees) of tangent-plane points (degrees) about (ra0, dec0)."""
    x, y = np.radians(np.asarray(xi, float)), np.radians(np.asarray(eta, float))
    d0 = math.radians(dec0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    safe = np.where(rho > 0, rho, 1.0)
    dec = np.arcsin(np.cos(c) * math.sin(d0) + y * np.sin(c) * math.cos(d0) / safe)
    ra = ra0 + np.degrees(
        np.arctan2(x * np.sin(c), safe * math.cos(d0) * np.cos(c) - y * math.sin(d0) * np.sin(c))
    )
    dec = np.where(rho > 0, dec, d0)
    ra = np.where(rho > 0, ra, ra0)
    return ra % 360.0, np.degrees(dec)


def sip_terms(order: int, *, start: int = 0) -> list[tuple[int, int]]:
    """The (p, q) exponents of a polynomial of total degree ``start`` to ``order``,
    in the order :class:`TanSip` stores its coefficients."""
    return [(i, n - i) for n in range(start, order + 1) for i in range(n, -1, -1)]


def sip_design(u: np.ndarray, v: np.ndarray, terms: list[tuple[int, int]], s: float) -> np.ndarray:
    """Design matrix of ``terms`` at pixel offsets (u, v) in units of ``s`` pixels."""
    un, vn = np.asarray(u, float) / s, np.asarray(v, float) / s
    # Each power once (an order-4 fit reuses each of them up to five times),
    # by products: numpy's ``un**3`` calls ``pow`` at 100 ns a value, a
    # catalogue's projection 1-2 ms.
    top = max((max(i, j) for i, j in terms), default=0)
    pu, pv = [np.ones_like(un), un], [np.ones_like(vn), vn]
    for k in range(2, top + 1):
        pu.append(pu[k - 1] * un)
        pv.append(pv[k - 1] * vn)
    out = np.empty((un.size, len(terms)))
    for column, (i, j) in enumerate(terms):
        np.multiply(pu[i], pv[j], out=out[:, column])
    return out


def gnomonic(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    """Tangent-plane (xi East, eta North) rows in degrees about (ra0, dec0); NaN behind."""
    return _gnomonic(ra, dec, ra0, dec0)


def deproject(
    xi: np.ndarray, eta: np.ndarray, ra0: float, dec0: float
) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (degrees) of tangent-plane points (degrees) about (ra0, dec0)."""
    return _deproject(xi, eta, ra0, dec0)


_design = sip_design


@dataclass(frozen=True)
class TanSip:
    """A TAN WCS with optional SIP polynomials, evaluated with numpy alone.

    Building an astropy WCS costs milliseconds; the fast path evaluates this
    model many times and writes the FITS header once.  ``a``/``b`` and
    ``ap``/``bp`` map ``sip_terms(order, start=2)`` resp. ``sip_terms(order)`` to
    coefficients (pixels, in units of ``s`` pixels: see :func:`_design`).
    """

    crval: tuple[float, float]
    crpix: tuple[float, float]
    cd: np.ndarray
    order: int = 1
    s: float = 1.0
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    ap: np.ndarray | None = None
    bp: np.ndarray | None = None

    # The part of astropy's celestial WCS that Calibration.from_wcs and the
    # annotations use: a fast-path answer is described without importing astropy.
    has_celestial: ClassVar[bool] = True
    pixel_n_dim: ClassVar[int] = 2

    @property
    def celestial(self) -> TanSip:
        return self

    @property
    def pixel_scale_matrix(self) -> np.ndarray:
        return np.asarray(self.cd, dtype=float)

    def all_pix2world(self, xy: Any, origin: int) -> np.ndarray:
        """(RA, Dec) rows of (x, y) pixel rows, ``origin`` 1 (FITS) or 0, as astropy's."""
        pix = np.asarray(xy, dtype=float).reshape(-1, 2)
        ra, dec = self.pix2world(pix[:, 0] + (1 - origin), pix[:, 1] + (1 - origin))
        return np.column_stack([ra, dec])

    def all_world2pix(self, radec: Any, origin: int, *, quiet: bool = False) -> np.ndarray:
        """(x, y) pixel rows of (RA, Dec) rows; NaN behind the tangent plane."""
        sky = np.asarray(radec, dtype=float).reshape(-1, 2)
        x, y = self.world2pix(sky[:, 0], sky[:, 1])
        return np.column_stack([x - (1 - origin), y - (1 - origin)])

    @classmethod
    def from_wcs(cls, wcs: Any) -> TanSip:
        """The linear (TAN) part of an astropy celestial WCS."""
        return cls(
            crval=(float(wcs.wcs.crval[0]), float(wcs.wcs.crval[1])),
            crpix=(float(wcs.wcs.crpix[0]), float(wcs.wcs.crpix[1])),
            cd=np.asarray(wcs.pixel_scale_matrix, dtype=float),
        )

    @classmethod
    def from_header(cls, header: Any) -> TanSip | None:
        """The model of a TAN or TAN-SIP header with a CD matrix, as astrometry.net
        writes (its ``wcs.fits``); None for anything else (another projection,
        PC/CDELT, SIP orders that differ, linear SIP terms), which astropy reads.

        An astrometry.net answer's final fit starts from it: astropy's WCS
        would import astropy.wcs, astropy.coordinates and astropy.table (a
        quarter of a second) for four evaluations of a polynomial.
        """
        get = header.get
        if (get("CTYPE1"), get("CTYPE2")) not in (
            ("RA---TAN", "DEC--TAN"),
            ("RA---TAN-SIP", "DEC--TAN-SIP"),
        ):
            return None
        if any(key in header for key in ("PC1_1", "CDELT1", "PV1_1", "PV2_1", "CROTA2")):
            return None
        if float(get("LONPOLE", 180.0)) != 180.0 or str(get("RADESYS", "FK5")) not in (
            "FK5",
            "ICRS",
        ):
            return None
        try:
            crval = (float(header["CRVAL1"]), float(header["CRVAL2"]))
            crpix = (float(header["CRPIX1"]), float(header["CRPIX2"]))
            cd = np.array(
                [
                    [float(header["CD1_1"]), float(header["CD1_2"])],
                    [float(header["CD2_1"]), float(header["CD2_2"])],
                ]
            )
        except (KeyError, TypeError, ValueError):
            return None
        if not np.all(np.isfinite(cd)) or abs(float(np.linalg.det(cd))) == 0.0:
            return None
        if not str(get("CTYPE1")).endswith("-SIP"):
            return cls(crval=crval, crpix=crpix, cd=cd)
        orders = {get(f"{name}_ORDER") for name in ("A", "B", "AP", "BP")}
        if len(orders) != 1:
            return None
        (order,) = orders
        if not isinstance(order, int) or not 2 <= order <= 9:
            return None

        def coefficients(name: str, start: int) -> np.ndarray | None:
            values = [float(get(f"{name}_{i}_{j}", 0.0)) for i, j in sip_terms(order, start=start)]
            below = [float(get(f"{name}_{i}_{j}", 0.0)) for i, j in sip_terms(start - 1)]
            return None if any(below) else np.array(values)

        a, b = coefficients("A", 2), coefficients("B", 2)
        ap, bp = coefficients("AP", 0), coefficients("BP", 0)
        if a is None or b is None or ap is None or bp is None:
            return None
        return cls(crval=crval, crpix=crpix, cd=cd, order=order, a=a, b=b, ap=ap, bp=bp)

    def _distort(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.order < 2 or self.a is None or self.b is None:
            return u, v
        m = _design(u, v, sip_terms(self.order, start=2), self.s)
        return u + m @ self.a, v + m @ self.b

    def pix2world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RA, Dec (degrees) of 1-based pixel positions."""
        u = np.asarray(x, float) - self.crpix[0]
        v = np.asarray(y, float) - self.crpix[1]
        uu, vv = self._distort(u, v)
        xi = self.cd[0, 0] * uu + self.cd[0, 1] * vv
        eta = self.cd[1, 0] * uu + self.cd[1, 1] * vv
        return _deproject(xi, eta, *self.crval)

    def world2pix(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """1-based pixel positions of sky positions (NaN behind the tangent plane)."""
        return self.plane2pix(_gnomonic(np.asarray(ra, float), np.asarray(dec, float), *self.crval))

    def plane2pix(self, plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """1-based pixel positions of tangent-plane rows (xi, eta, degrees) about ``crval``."""
        uv = np.linalg.solve(self.cd, plane.T)
        uu, vv = uv[0], uv[1]
        u, v = uu, vv
        if self.order >= 2 and self.ap is not None and self.bp is not None:
            # Catalogue stars far outside a wide frame run the polynomials far
            # past where they were fitted, to inf or NaN: callers keep the
            # finite positions inside the image.
            with np.errstate(over="ignore", invalid="ignore"):
                m = _design(uu, vv, sip_terms(self.order), self.s)
                u, v = uu + m @ self.ap, vv + m @ self.bp
                for _ in range(3):  # polish the polynomial inverse against the forward SIP
                    fu, fv = self._distort(u, v)
                    u, v = u + (uu - fu), v + (vv - fv)
        return u + self.crpix[0], v + self.crpix[1]

    def to_header(self, width: int, height: int) -> fits.Header:
        """A header like astrometry.net's ``wcs.fits`` (NAXIS = 0, IMAGEW/IMAGEH)."""
        sip = self.order >= 2 and self.a is not None and self.b is not None
        suffix = "-SIP" if sip else ""
        cards: list[tuple[str, Any, str]] = [
            ("WCSAXES", 2, "no comment"),
            ("CTYPE1", "RA---TAN" + suffix, "TAN (gnomic) projection" + (" + SIP" if sip else "")),
            ("CTYPE2", "DEC--TAN" + suffix, "TAN (gnomic) projection" + (" + SIP" if sip else "")),
            ("EQUINOX", 2000.0, "Equatorial coordinates definition (yr)"),
            ("LONPOLE", 180.0, "no comment"),
            ("LATPOLE", 0.0, "no comment"),
            ("CRVAL1", float(self.crval[0]), "RA  of reference point"),
            ("CRVAL2", float(self.crval[1]), "DEC of reference point"),
            ("CRPIX1", float(self.crpix[0]), "X reference pixel"),
            ("CRPIX2", float(self.crpix[1]), "Y reference pixel"),
            ("CUNIT1", "deg", "X pixel scale units"),
            ("CUNIT2", "deg", "Y pixel scale units"),
            ("CD1_1", float(self.cd[0, 0]), "Transformation matrix"),
            ("CD1_2", float(self.cd[0, 1]), "no comment"),
            ("CD2_1", float(self.cd[1, 0]), "no comment"),
            ("CD2_2", float(self.cd[1, 1]), "no comment"),
            ("IMAGEW", int(width), "Image width,  in pixels."),
            ("IMAGEH", int(height), "Image height, in pixels."),
        ]
        if sip:
            assert self.a is not None and self.b is not None
            assert self.ap is not None and self.bp is not None
            for name, coef, start in (
                ("A", self.a, 2),
                ("B", self.b, 2),
                ("AP", self.ap, 0),
                ("BP", self.bp, 0),
            ):
                label = "Inv polynomial order" if name.endswith("P") else "Polynomial order"
                cards.append((f"{name}_ORDER", self.order, label))
                values = dict(zip(sip_terms(self.order, start=start), coef, strict=True))
                for i, j in sip_terms(self.order):
                    value = float(values.get((i, j), 0.0)) / self.s ** (i + j)
                    cards.append((f"{name}_{i}_{j}", value, "no comment"))
        from astropy.io import fits

        # Parsing formatted cards is a tenth of the cost of astropy building them.
        header = fits.Header.fromstring("".join(_header_card(*card) for card in cards))
        header["HISTORY"] = "Created by skysolve's pattern-hash fast path (tetra3rs)."
        return header


def radial_constraint() -> np.ndarray:
    """The 10 coefficients of an order-3 polynomial (``sip_terms(3)``) from 5:
    the constant, the two linear terms and a cubic radial term about CRPIX per
    axis (u r^2, v r^2 with r^2 = u^2 + v^2): a lens's distortion about its axis.

    ``design @ radial_constraint()`` is the constrained design matrix and
    ``radial_constraint() @ coef`` the order-3 coefficients of its fit."""
    terms = sip_terms(3)
    at = {t: i for i, t in enumerate(terms)}
    c = np.zeros((len(terms), 5))
    c[at[(0, 0)], 0] = c[at[(1, 0)], 1] = c[at[(0, 1)], 2] = 1.0
    c[at[(3, 0)], 3] = c[at[(1, 2)], 3] = 1.0  # u r^2 = u^3 + u v^2
    c[at[(2, 1)], 4] = c[at[(0, 3)], 4] = 1.0  # v r^2 = u^2 v + v^3
    return c


def fit_tan_sip(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    *,
    width: int,
    height: int,
    order: int,
    crval: tuple[float, float],
    radial: bool = False,
    weights: np.ndarray | None = None,
) -> TanSip:
    """Least-squares TAN(-SIP) WCS through matched stars, CRPIX at the image centre.

    Parameters
    ----------
    x, y : ndarray
        1-based pixel positions of the matched sources.
    ra, dec : ndarray
        Their catalogue positions, degrees.
    width, height : int
        Image size.
    order : int
        SIP order; below 2 a pure TAN WCS.
    crval : (float, float)
        Starting tangent point (the fit moves it to the sky position of CRPIX).
    radial : bool
        TAN plus a cubic radial term about CRPIX (:func:`radial_constraint`),
        an order-3 SIP of 5 coefficients per axis; ``order`` is then ignored.
    weights : ndarray, optional
        Each star's weight (inverse variance of its centroid, any scale);
        None: all alike.

    Returns
    -------
    TanSip
        With the inverse polynomials AP/BP fitted on a grid when ``order >= 2``.
    """
    crpix = ((width + 1) / 2.0, (height + 1) / 2.0)
    u, v = np.asarray(x, float) - crpix[0], np.asarray(y, float) - crpix[1]
    s = max(width, height) / 2.0
    order = 3 if radial else max(1, order)
    design = _design(u, v, sip_terms(order), s)
    if radial:
        design = design @ radial_constraint()
    return tan_sip_least_squares(
        design, ra, dec, width=width, height=height, order=order, crval=crval, radial=radial,
        weights=weights,
    ).model  # fmt: skip


@dataclass(frozen=True)
class TanSipFit:
    """:func:`tan_sip_least_squares`'s model and its least squares at the model's
    tangent point: ``plane``, the stars' tangent-plane positions about
    ``model.crval`` (degrees), and ``coef``, the weighted least-squares
    coefficients of ``plane`` on the design matrix given (the covariance of the
    fit and its residuals follow from them without another least squares)."""

    model: TanSip
    plane: np.ndarray
    coef: np.ndarray


def tan_sip_least_squares(
    design: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    *,
    width: int,
    height: int,
    order: int,
    crval: tuple[float, float],
    radial: bool = False,
    weights: np.ndarray | None = None,
    plane: np.ndarray | None = None,
) -> TanSipFit:
    """:func:`fit_tan_sip` from the stars' design matrix, which callers that fit the
    same stars more than once compute once.

    ``design``: ``sip_design`` of the stars' pixel offsets from CRPIX (the
    image centre) in units of ``max(width, height) / 2`` at ``order`` (3 and
    times :func:`radial_constraint` when ``radial``); ``plane``: their
    tangent-plane positions about ``crval`` when already known.  The other
    parameters as :func:`fit_tan_sip`'s.
    """
    crpix = ((width + 1) / 2.0, (height + 1) / 2.0)
    s = max(width, height) / 2.0
    order = 3 if radial else max(1, order)
    root = np.ones(len(design)) if weights is None else np.sqrt(np.asarray(weights, float))
    weighted = design * root[:, None]
    ra_arr, dec_arr = np.asarray(ra, float), np.asarray(dec, float)
    ra0, dec0 = crval
    at: np.ndarray | None = plane
    for _ in range(TANGENT_STEPS):
        if at is None:
            at = _gnomonic(ra_arr, dec_arr, ra0, dec0)
        coef, *_ = np.linalg.lstsq(weighted, at * root[:, None], rcond=None)
        xi0, eta0 = float(coef[0, 0]), float(coef[0, 1])
        if math.hypot(xi0, eta0) < TANGENT_SETTLED:
            break
        new_ra, new_dec = _deproject(np.array([xi0]), np.array([eta0]), ra0, dec0)
        ra0, dec0 = float(new_ra[0]), float(new_dec[0])
        at = None
    model = _tan_sip_model(radial_constraint() @ coef if radial else coef, (ra0, dec0), crpix, s,
                           order, width, height)  # fmt: skip
    if at is None:
        # Not settled in ``TANGENT_STEPS``: the model's tangent point moved
        # after the last least squares, so its covariance needs one there.
        at = _gnomonic(ra_arr, dec_arr, ra0, dec0)
        coef, *_ = np.linalg.lstsq(weighted, at * root[:, None], rcond=None)
    return TanSipFit(model, at, coef)


def _tan_sip_model(
    coef: np.ndarray,
    crval: tuple[float, float],
    crpix: tuple[float, float],
    s: float,
    order: int,
    width: int,
    height: int,
) -> TanSip:
    """The TanSip of ``sip_terms(order)`` coefficients (xi, eta columns) about ``crval``."""
    cd = np.array([[coef[1, 0], coef[2, 0]], [coef[1, 1], coef[2, 1]]]) / s
    if order < 2:
        return TanSip(crval=crval, crpix=crpix, cd=cd, order=1, s=s)
    # xi = CD (u + A, v + B): the higher-order part divided by CD, in pixels.
    higher = np.linalg.solve(cd, coef[3:].T)  # (2, n_terms)
    gu, gv, forward = _inverse_grid(width, height, order)
    uu, vv = gu + forward @ higher[0], gv + forward @ higher[1]
    inv = _design(uu, vv, sip_terms(order), s)
    # Both through the normal equations: the grid's design is well conditioned
    # (offsets within about one ``s``), and LAPACK's least squares on 625 rows
    # of an order-4 or 5 polynomial runs threaded, 5-10 ms a call on a busy
    # two-core machine against 0.05 ms for this.
    cuv = np.linalg.solve(inv.T @ inv, inv.T @ np.column_stack([gu - uu, gv - vv]))
    return TanSip(
        crval=crval,
        crpix=crpix,
        cd=cd,
        order=order,
        s=s,
        a=higher[0],
        b=higher[1],
        ap=cuv[:, 0],
        bp=cuv[:, 1],
    )


@functools.lru_cache(maxsize=32)
def _inverse_grid(width: int, height: int, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid the inverse polynomials are fitted on: 25 x 25 pixel offsets from
    CRPIX across the frame, and their forward SIP design (``sip_terms(order,
    start=2)``), the same for every fit of a frame at ``order`` (read-only)."""
    crpix = ((width + 1) / 2.0, (height + 1) / 2.0)
    gx, gy = np.meshgrid(np.linspace(0.5, width + 0.5, 25), np.linspace(0.5, height + 0.5, 25))
    gu, gv = gx.ravel() - crpix[0], gy.ravel() - crpix[1]
    forward = _design(gu, gv, sip_terms(order, start=2), max(width, height) / 2.0)
    for array in (gu, gv, forward):
        array.setflags(write=False)
    return gu, gv, forward


def _header_card(key: str, value: Any, comment: str) -> str:
    """One 80-character header card: ``KEY     = value / comment``."""
    if isinstance(value, float):
        text = f"{repr(value).upper():>20}"  # the shortest exact decimal form
    else:
        text = format_value(value)
    return f"{key:<8}= {text} / {comment}".ljust(80)[:80]
