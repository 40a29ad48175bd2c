"""A plain TAN header's centre and scale without astropy are astropy's."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.engine.inputs.fitscards import HeaderCards
from skysolve.engine.inputs.tanheader import tan_centre_and_scale

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
    else:
        header["CDELT1"], header["CDELT2"] = -scale, scale
    header["CUNIT1"], header["LONPOLE"], header["RADESYS"] = "deg", 180.0, "FK5"
    return header


@pytest.mark.parametrize("matrix", ["CD", "PC", "CDELT"])
def test_the_centre_and_scale_are_astropys(matrix: str) -> None:
    for _ in range(100):
        header = _header(matrix)
        width, height = (int(n) for n in RNG.integers(100, 6000, 2))
        mine = tan_centre_and_scale(HeaderCards.parse(header.tostring()) or {}, width, height)
        _assert_same(mine, _astropys(header, width, height))


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
        {"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "A_ORDER": 2},
        {"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN"},
        {"CROTA2": 10.0},
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
def test_headers_that_are_not_plain_tan_are_left_to_astropy(change: dict[str, object]) -> None:
    header = _header("CD")
    assert tan_centre_and_scale(header, 100, 100) is not None
    header.update(change)
    assert tan_centre_and_scale(header, 100, 100) is None


def test_a_singular_matrix_gives_nothing() -> None:
    header = _header("CD")
    header["CD1_1"], header["CD1_2"], header["CD2_1"], header["CD2_2"] = 1e-3, 1e-3, 1e-3, 1e-3
    assert tan_centre_and_scale(header, 100, 100) is None
