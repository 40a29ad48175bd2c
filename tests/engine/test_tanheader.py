"""A TAN, TAN-SIP or TPV header's centre and scale without astropy are astropy's."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.engine.inputs.fitscards import HeaderCards
from skysolve.engine.inputs.tanheader import no_celestial_axes, tan_centre_and_scale
from tests.conftest import fresh_python

RNG = np.random.default_rng(23)


def _astropys(header: fits.Header, width: int, height: int) -> tuple[float, float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(header, relax=True).celestial
    ra, dec = wcs.all_pix2world([[(width + 1) / 2.0, (height + 1) / 2.0]], 1)[0]
    scales = wcs.proj_plane_pixel_scales()
    return float(ra), float(dec), 3600.0 * math.sqrt(float(scales[0].value * scales[1].value))


def _assert_same(mine: tuple[float, float, float] | None, theirs: tuple[float, ...]) -> None:
    assert mine is not None
    ra, dec, scale = mine
    off = ((ra - theirs[0] + 180.0) % 360.0 - 180.0) * math.cos(math.radians(dec))
    assert math.hypot(off, dec - theirs[1]) * 3600.0 < 1e-6
    assert scale == pytest.approx(theirs[2], rel=1e-12)


def _header(matrix: str) -> fits.Header:
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = RNG.uniform(0, 360), RNG.uniform(-89.9, 89.9)
    header["CRPIX1"], header["CRPIX2"] = RNG.uniform(-500, 2500, 2)
    scale, turn = 10 ** RNG.uniform(-4.5, -0.5), RNG.uniform(0, 2 * math.pi)
    flip = np.diag([RNG.choice([-1.0, 1.0]), RNG.uniform(0.9, 1.1)])
    rotation = np.array([[-math.cos(turn), math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    cd = scale * rotation @ flip
    if matrix == "CD":
        for (i, j), value in np.ndenumerate(cd):
            header[f"CD{i + 1}_{j + 1}"] = value
    elif matrix == "PC":
        header["CDELT1"], header["CDELT2"] = scale, -1.01 * scale
        for (i, j), value in np.ndenumerate(cd):
            header[f"PC{i + 1}_{j + 1}"] = value / header[f"CDELT{i + 1}"]
    elif matrix == "CROTA":
        # AIPS's rotation: wcslib reads CROTA2, and CROTA1 not at all.
        header["CDELT1"], header["CDELT2"] = -scale, RNG.choice([-1.0, 1.0]) * 1.01 * scale
        turns = RNG.uniform(-360.0, 360.0, 2)
        # CROTA2 alone, CROTA1 alone (no turn), both alike, both unlike.
        case = int(RNG.integers(4))
        keys = [["CROTA2"], ["CROTA1"], ["CROTA1", "CROTA2"], ["CROTA1", "CROTA2"]][case]
        for key, turn in zip(keys, [turns[0], turns[case // 3]], strict=False):
            header[key] = turn
    else:
        header["CDELT1"], header["CDELT2"] = -scale, scale
    header["CUNIT1"], header["LONPOLE"], header["RADESYS"] = "deg", 180.0, "FK5"
    return header


def _with_sip(header: fits.Header) -> fits.Header:
    """``header`` with SIP polynomials of random orders that move pixels by up
    to some tens of pixels a couple of thousand pixels out (and an inverse
    the forward transformation does not use)."""
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    for name in ("A", "B", "AP", "BP"):
        order = int(RNG.integers(2, 6))
        header[f"{name}_ORDER"] = order
        for p in range(order + 1):
            for q in range(order - p + 1):
                if RNG.random() < 0.8:
                    header[f"{name}_{p}_{q}"] = RNG.normal() * 5.0 / 2000.0 ** (p + q - 1)
    return header


def _with_tpv(header: fits.Header, projection: str) -> fits.Header:
    """``header`` with TPV polynomials near the identity that move the field's
    edge by a few thousandths of its size, under CTYPE ``RA---TPV`` or
    SCAMP's ``RA---TAN`` (astropy reads TPV there when a term beyond the
    fourth is given)."""
    header["CTYPE1"], header["CTYPE2"] = f"RA---{projection}", f"DEC--{projection}"
    # wcslib's TPV acts before CDELT: on degrees under CD, on pixels under PC.
    first = [header.get(f"CD{i}_1", header.get(f"PC{i}_1", float(i == 1))) for i in (1, 2)]
    field = 3000.0 * math.hypot(*first)
    degrees = [n for n in range(8) for _ in range(n + 1 + n % 2)]
    for axis in (1, 2):
        for k, degree in enumerate(degrees):
            if RNG.random() < 0.6 or k == 5:
                small = RNG.normal() * 1e-3 * field ** (1 - degree)
                header[f"PV{axis}_{k}"] = float(k in (1, 2) and k == axis) + small
    return header


def _distorted(header: fits.Header, distortion: str) -> fits.Header:
    if distortion == "SIP":
        return _with_sip(header)
    return _with_tpv(header, distortion) if distortion else header


def _undistorted(header: fits.Header) -> fits.Header:
    plain = header.copy()
    for key in list(plain):
        if key.split("_")[0] in ("A", "B", "AP", "BP", "PV1", "PV2"):
            del plain[key]
    plain["CTYPE1"], plain["CTYPE2"] = "RA---TAN", "DEC--TAN"
    return plain


@pytest.mark.parametrize("matrix", ["CD", "PC", "CDELT", "CROTA"])
@pytest.mark.parametrize("distortion", ["", "SIP", "TPV", "TAN"])
def test_the_centre_and_scale_are_astropys(matrix: str, distortion: str) -> None:
    for _ in range(100):
        header = _distorted(_header(matrix), distortion)
        width, height = (int(n) for n in RNG.integers(100, 6000, 2))
        mine = tan_centre_and_scale(HeaderCards.parse(header.tostring()) or {}, width, height)
        _assert_same(mine, _astropys(header, width, height))
        if distortion:  # the polynomial moved the centre
            plain = _astropys(_undistorted(header), width, height)
            assert mine is not None and abs(mine[1] - plain[1]) + abs(mine[0] - plain[0]) > 1e-9


def test_a_seestar_frames_solve_is_read_as_astropy_reads_it(shared_images: Path) -> None:
    path = shared_images / "corpus" / "seestar_ngc7023_10s.fit"
    with open(path, "rb") as fh:
        cards = HeaderCards.read(fh)
    assert cards is not None and "PC1_1" in cards  # an ASTAP solve, PC and CDELT
    mine = tan_centre_and_scale(cards, 1080, 1920)
    _assert_same(mine, _astropys(fits.getheader(path), 1080, 1920))
    assert mine is not None and mine[2] == pytest.approx(2.4, abs=0.05)


@pytest.mark.parametrize(
    "change",
    [
        {"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "A_ORDER": 2},  # no B_ORDER
        {"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "A_ORDER": 1, "B_ORDER": 1},
        {"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "A_ORDER": 2.0, "B_ORDER": 2},
        {
            "CTYPE1": "RA---TAN-SIP",
            "CTYPE2": "DEC--TAN-SIP",
            "A_ORDER": 2,
            "B_ORDER": 2,
            "AP_ORDER": 2,
        },  # fmt: skip
        {
            "CTYPE1": "RA---TAN-SIP",
            "CTYPE2": "DEC--TAN-SIP",
            "A_ORDER": 2,
            "B_ORDER": 2,
            "A_2_0": "x",
        },  # fmt: skip
        {
            "CTYPE1": "RA---TAN-SIP",
            "CTYPE2": "DEC--TAN-SIP",
            "A_ORDER": 2,
            "B_ORDER": 2,
            "A_DMAX": 1.0,
        },  # fmt: skip
        {"A_ORDER": 2, "B_ORDER": 2, "A_2_0": 1e-6},  # SIP without -SIP: astropy warns
        {"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN"},
        {"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV", "PV1_40": 1e-3},  # wcslib refuses it
        {"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV", "PV1_1": "x"},
        {"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV", "PV3_1": 1.0},
        {"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV", "A_ORDER": 2, "B_ORDER": 2},
        {"PV1_5": 1e-3, "A_ORDER": 2, "B_ORDER": 2},  # SCAMP's TPV: astropy drops SIP
        {"PV1_4": 1e-3},  # TAN's own parameters, not TPV
        {"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN"},
        {"CROTA2": 10.0},  # beside CD
        {"CUNIT1": "arcsec"},
        {"PV2_1": 0.1},
        {"LONPOLE": 0.0},
        {"CRVAL2": 90.0},
        {"PC1_1": 1.0},  # PC beside CD
        {"CDELT1": 1e-3},  # CDELT beside CD
        {"CD1_1": "x"},
        {"CTYPE3": "FREQ"},
        {"WCSAXES": 3},
    ],
)
def test_headers_it_does_not_read_are_left_to_astropy(change: dict[str, object]) -> None:
    header = _header("CD")
    assert tan_centre_and_scale(header, 100, 100) is not None
    header.update(change)
    assert tan_centre_and_scale(header, 100, 100) is None


def test_a_singular_matrix_gives_nothing() -> None:
    header = _header("CD")
    header["CD1_1"], header["CD1_2"], header["CD2_1"], header["CD2_2"] = 1e-3, 1e-3, 1e-3, 1e-3
    assert tan_centre_and_scale(header, 100, 100) is None


@pytest.mark.parametrize(
    ("cards", "none"),
    [
        ({"CTYPE1": "", "CTYPE2": "  ", "CRVAL1": 1.0, "CDELT1": 1.0}, True),  # ESO-MIDAS's
        ({"CRVAL1": 1.0, "CRPIX1": 1.0, "CDELT1": 1.0}, True),
        ({"CTYPE1": "RA---TAN", "CTYPE2": ""}, False),
        ({"CTYPE1": "", "CTYPE3": "GLAT-CAR"}, False),
        ({"CTYPE1": 5}, False),  # not a string: astropy's to judge
    ],
)
def test_a_header_without_celestial_axes_is_told_without_astropy(
    cards: dict[str, object], none: bool
) -> None:
    header = fits.Header(cards)
    assert no_celestial_axes(header) is none
    if none:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert not WCS(header, relax=True).has_celestial


#: The shared files with a WCS in their header, and how it is read.
SHARED_WCS = {
    "panoptes_pole.fits": "TAN-SIP",
    "panoptes_solved_fz.fits.fz": "TAN-SIP",
    "seestar_ngc7023_10s.fit": "TAN",
    "sep_image.fits": "no celestial axes",  # ESO-MIDAS's blank CTYPEs
}


def test_every_shared_fits_files_wcs_is_read_as_astropy_reads_it(shared_images: Path) -> None:
    """Every HDU with a CTYPE in every FITS file under the shared images: its
    header as astropy gives it and as this project's card reader does."""
    found: dict[str, str] = {}
    suffixes = (".fit", ".fits", ".fts", ".fits.fz", ".fits.gz")
    for path in sorted(p for p in shared_images.rglob("*") if p.name.endswith(suffixes)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdul = fits.open(path)
            headers = [hdu.header for hdu in hdul if any(k.startswith("CTYPE") for k in hdu.header)]
        for header in headers:
            width, height = header["NAXIS1"], header["NAXIS2"]
            cards = HeaderCards.parse(header.tostring())
            assert cards is not None, path.name
            if no_celestial_axes(cards):
                assert no_celestial_axes(header)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    assert not WCS(header, relax=True).has_celestial
                found[path.name] = "no celestial axes"
                continue
            astropys = _astropys(header, width, height)
            _assert_same(tan_centre_and_scale(cards, width, height), astropys)
            _assert_same(tan_centre_and_scale(header, width, height), astropys)
            found[path.name] = "TAN-SIP" if "A_ORDER" in header else "TAN"
        hdul.close()
    assert found == SHARED_WCS


def test_the_shared_files_hints_are_read_without_astropy(shared_images: Path) -> None:
    """In a subprocess: the plain FITS files among them, image and hints."""
    names = [name for name in SHARED_WCS if name.endswith((".fit", ".fits"))]
    script = f"""
import sys
from pathlib import Path
from skysolve.engine.inputs.hints import hints_from_image
from skysolve.engine.inputs.images import load_image
for name in {names!r}:
    hints = hints_from_image(load_image(Path({str(shared_images / "corpus")!r}) / name))
    print(name, hints.position_source, hints.scale_source)
print(sorted(name for name in sys.modules if name.startswith("astropy")))
"""
    assert fresh_python(script) == [
        "panoptes_pole.fits FITS WCS FITS WCS",
        "seestar_ngc7023_10s.fit FITS WCS FITS WCS",
        "sep_image.fits RA/DEC keywords None",
        "[]",
    ]
