"""The centre and pixel scale of a TAN header's WCS, without astropy.

A frame whose header carries an earlier solve (a Seestar's after ASTAP, most
solved FITS files) hints its own position and scale; astropy's WCS reads it
with ``astropy.wcs``, ``astropy.io.fits`` and ``astropy.table`` (a quarter of
a second to import, most of a blind solve that astrometry.net answers).  The
common headers are simple: ``RA---TAN``/``DEC--TAN`` in degrees, a CD matrix,
PC and CDELT, or CDELT and the old ``CROTA2``; astrometry.net's and other
solvers' ``-SIP`` polynomial or SCAMP's TPV polynomial on top.
:func:`tan_centre_and_scale` reads such a header as astropy does
(``all_pix2world``, the polynomial applied, and ``proj_plane_pixel_scales``);
anything else gives None and astropy reads it.  :func:`no_celestial_axes`
tells a header whose WCS astropy would find not celestial at all
(ESO-MIDAS's blank ``CTYPE``), which hints nothing either.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_CD = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
_PC = ("PC1_1", "PC1_2", "PC2_1", "PC2_2")
#: Keywords that change what astropy makes of the header: other matrix
#: spellings, projection parameters, distortions, a third axis.  (CROTAn, and
#: the SIP and TPV keywords under their CTYPEs, are read below.)
_OTHER = re.compile(
    r"(PC0|CD0|PV\d|PS\d|PROJP|A_|B_|AP_|BP_|CPDIS|CQDIS|DP\d|DQ\d|D2IM|CTYPE[3-9]|WCSAXES)"
)
#: The SIP keywords astropy reads, or takes out before wcslib sees the header.
_SIP = re.compile(r"(A|B|AP|BP)_(ORDER|1?[0-9]_1?[0-9])")
#: TPV's coefficients: ``PVi_k`` of axis i, term k (0 to 39).
_PV = re.compile(r"PV[12]_(0|[1-9][0-9]?)")
#: The projections read here, by (CTYPE1, CTYPE2).
_KINDS: dict[tuple[Any, Any], str] = {
    ("RA---TAN", "DEC--TAN"): "TAN",
    ("RA---TAN-SIP", "DEC--TAN-SIP"): "SIP",
    ("RA---TPV", "DEC--TPV"): "TPV",
}
#: TPV's terms in order: the powers of its own axis's coordinate, the other
#: axis's and the radius (the radius alone at each odd degree), to degree 7.
_TPV_TERMS = [
    term
    for degree in range(8)
    for term in [(degree - j, j, 0) for j in range(degree + 1)]
    + ([(0, 0, degree)] if degree % 2 else [])
]
_CTYPE = re.compile(r"CTYPE[0-9]+")


def tan_centre_and_scale(
    header: Mapping[str, Any], width: int, height: int
) -> tuple[float, float, float] | None:
    """RA and Dec (degrees) of the image centre and the pixel scale (arcsec per
    pixel, the geometric mean of astropy's ``proj_plane_pixel_scales``), or None
    when the header is not a TAN WCS read here."""
    get = header.get
    kind = _KINDS.get((get("CTYPE1"), get("CTYPE2")))
    pv = {key: _number(get(key)) for key in header if _OTHER.match(key) and key[:2] == "PV"}
    if kind == "TAN" and any(_PV.fullmatch(key) and int(key[4:]) >= 5 for key in pv):
        kind = "TPV"  # astropy's reading of SCAMP's TAN and polynomial
    sip = _sip_polynomials(header) if kind == "SIP" else None
    tpv = _tpv_coefficients(pv) if kind == "TPV" else None
    if kind is None or (kind == "SIP" and sip is None) or (kind == "TPV" and tpv is None):
        return None
    for key in header:
        if (sip is not None and _SIP.fullmatch(key)) or (tpv is not None and key in pv):
            continue
        if _OTHER.match(key) and not (key == "WCSAXES" and get(key) == 2):
            return None
    if any(get(f"CUNIT{i}", "deg") != "deg" for i in (1, 2)):
        return None
    if _number(get("LONPOLE", 180.0)) != 180.0:
        return None
    linear = _linear(header)
    numbers = [_number(get(key)) for key in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2")]
    if linear is None or None in numbers:
        return None
    (p11, p12, p21, p22), (cdelt1, cdelt2) = linear
    ra0, dec0, crpix1, crpix2 = (float(n or 0.0) for n in numbers)
    if abs(dec0) >= 90.0 or (p11 * p22 - p12 * p21) * cdelt1 * cdelt2 == 0.0:
        return None
    # The centre pixel's offset from CRPIX, SIP's polynomial added (astropy's
    # "focal plane" coordinates), turned by PC, TPV's polynomial of that where
    # it has one (wcslib's place for it, before CDELT), scaled by CDELT: the
    # intermediate world coordinates; then the inverse gnomonic projection
    # about (CRVAL1, CRVAL2) with LONPOLE 180.
    u, v = (width + 1) / 2.0 - crpix1, (height + 1) / 2.0 - crpix2
    if sip is not None:
        u, v = u + _polynomial(sip[0], u, v), v + _polynomial(sip[1], u, v)
    x, y = p11 * u + p12 * v, p21 * u + p22 * v
    if tpv is not None:
        x, y = _tpv(tpv[0], x, y), _tpv(tpv[1], y, x)
    x, y = cdelt1 * x, cdelt2 * y
    xi, eta = math.radians(x), math.radians(y)
    d0 = math.radians(dec0)
    across = math.cos(d0) - eta * math.sin(d0)
    ra = (ra0 + math.degrees(math.atan2(xi, across))) % 360.0
    dec = math.degrees(math.atan2(math.sin(d0) + eta * math.cos(d0), math.hypot(xi, across)))
    columns = math.hypot(cdelt1 * p11, cdelt2 * p21) * math.hypot(cdelt1 * p12, cdelt2 * p22)
    scale = math.sqrt(columns) * 3600.0
    return ra, dec, scale


def no_celestial_axes(header: Mapping[str, Any]) -> bool:
    """Whether the header's WCS has no axis astropy could take for celestial:
    every ``CTYPEn`` missing or blank.  False when one is not a string."""
    types = [header.get(key) for key in header if _CTYPE.fullmatch(key)]
    return all(isinstance(value, str) and not value.strip() for value in types)


def _linear(header: Mapping[str, Any]) -> tuple[list[float], list[float]] | None:
    """The PC matrix and CDELT as wcslib makes them of CD (CDELT one), of PC
    and CDELT, or of CDELT and CROTA2; None for a mixture of those spellings
    or a value that is not a number."""
    get = header.get
    crota = [key for key in ("CROTA1", "CROTA2") if key in header]
    if any(key in header for key in _CD):
        if crota or any(key in header for key in (*_PC, "CDELT1", "CDELT2")):
            return None
        pc = [_number(get(key, 0.0)) for key in _CD]
        cdelt: list[float | None] = [1.0, 1.0]
    elif crota:
        # The AIPS convention as wcslib reads it: CROTA of the latitude axis
        # (CROTA2) turns CDELT; a CROTA1 on its own changes nothing.
        numbers = [_number(get(key)) for key in ("CDELT1", "CDELT2", *crota)]
        if any(key in header for key in _PC) or None in numbers or 0.0 in numbers[:2]:
            return None
        cdelt = numbers[:2]
        ratio = float(numbers[1] or 0.0) / float(numbers[0] or 0.0)
        rho = math.radians(_number(get("CROTA2", 0.0)) or 0.0)
        cos, sin = math.cos(rho), math.sin(rho)
        pc = [cos, -sin * ratio, sin / ratio, cos]
    else:
        # astropy's defaults: the identity's elements for a missing PC element.
        pc = [_number(get(key, float(key in ("PC1_1", "PC2_2")))) for key in _PC]
        cdelt = [_number(get("CDELT1")), _number(get("CDELT2"))]
    values = [v for v in (*pc, *cdelt) if v is not None]
    return (values[:4], values[4:]) if len(values) == 6 else None


#: A SIP polynomial: (p, q, coefficient of u**p v**q) for each term.
Polynomial = list[tuple[int, int, float]]


def _sip_polynomials(header: Mapping[str, Any]) -> tuple[Polynomial, Polynomial] | None:
    """SIP's forward polynomials A and B as astropy reads them (every
    ``A_p_q`` with p + q up to ``A_ORDER``, the rest ignored); None for
    headers astropy reads otherwise or may refuse: an order below 2, above 9
    or missing, an inverse order without its pair, a value that is not a
    number (the inverse's included)."""
    for key in header:
        if _SIP.fullmatch(key):
            value = header.get(key)
            whole = isinstance(value, int) and not isinstance(value, bool)
            if _number(value) is None or (key.endswith("ORDER") and not whole):
                return None
    if ("AP_ORDER" in header) != ("BP_ORDER" in header):
        return None
    polynomials: list[Polynomial] = []
    for name in ("A", "B"):
        order = header.get(f"{name}_ORDER")
        if not isinstance(order, int) or not 2 <= order <= 9:
            return None
        terms: Polynomial = []
        for p in range(order + 1):
            for q in range(order - p + 1):
                if f"{name}_{p}_{q}" in header:
                    terms.append((p, q, float(header[f"{name}_{p}_{q}"])))
        polynomials.append(terms)
    return polynomials[0], polynomials[1]


def _tpv_coefficients(pv: dict[str, float | None]) -> tuple[list[float], list[float]] | None:
    """The 40 coefficients of each axis's TPV polynomial, a missing one zero
    (as wcslib takes it); None when one is not a number or not one of them
    (wcslib refuses term 40 and beyond)."""
    coefficients = [[0.0] * len(_TPV_TERMS), [0.0] * len(_TPV_TERMS)]
    for key, value in pv.items():
        if not _PV.fullmatch(key) or value is None or int(key[4:]) >= len(_TPV_TERMS):
            return None
        coefficients[int(key[2]) - 1][int(key[4:])] = value
    return coefficients[0], coefficients[1]


def _tpv(coefficients: list[float], own: float, other: float) -> float:
    radius = math.hypot(own, other)
    return sum(
        c * own**p * other**q * radius**m
        for c, (p, q, m) in zip(coefficients, _TPV_TERMS, strict=True)
        if c
    )


def _polynomial(terms: Polynomial, u: float, v: float) -> float:
    return sum(c * u**p * v**q for p, q, c in terms)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
