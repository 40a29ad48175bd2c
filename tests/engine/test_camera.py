"""The one reader of camera keywords (engine/inputs/camera.py)."""

from __future__ import annotations

import pytest
from astropy.io import fits

from skysolve.engine.inputs.camera import CAMERA_CARDS, Camera, cards_from_head, read_camera


def _header(**cards: object) -> fits.Header:
    header = fits.PrimaryHDU().header
    for key, value in cards.items():
        header[key] = value
    return header


@pytest.mark.parametrize("keyword", ["XPIXSZ", "PIXSIZE", "PIXSIZE1"])
def test_it_reads_every_pixel_size_keyword_as_microns(keyword: str) -> None:
    camera = read_camera(_header(FOCALLEN=400.0, **{keyword: 3.76}))
    assert camera.pixel_um == 3.76
    assert camera.pixel_keyword == keyword
    assert camera.identity() == {"focal length": 400.0, "pixel size": 3.76}


def test_it_trusts_xpixsz_first_and_skips_implausible_values() -> None:
    camera = read_camera(_header(XPIXSZ=3.76, PIXSIZE=9.0, FOCALLEN=400.0))
    assert (camera.pixel_um, camera.pixel_keyword) == (3.76, "XPIXSZ")
    camera = read_camera(_header(XPIXSZ=3760.0, PIXSIZE1=3.76, FOCALLEN=0.2, XBINNING=2.5))
    assert (camera.pixel_um, camera.pixel_keyword) == (3.76, "PIXSIZE1")
    assert camera.focal_mm is None
    assert camera.binning is None


def test_it_reads_the_same_camera_from_an_astropy_header_and_from_raw_cards() -> None:
    header = _header(
        INSTRUME="ZWO ASI294MC", TELESCOP="RedCat 51", FOCALLEN=250.0, PIXSIZE=4.63, XBINNING=2
    )
    head = header.tostring().encode("ascii")
    cards, end = cards_from_head(head, 0, CAMERA_CARDS)
    assert end is not None and head[end - 80 : end].startswith(b"END ")
    assert read_camera(cards) == read_camera(header)
    assert read_camera(header) == Camera(
        instrument="ZWO ASI294MC",
        telescope="RedCat 51",
        focal_mm=250.0,
        pixel_um=4.63,
        pixel_keyword="PIXSIZE",
        binning=2,
    )


def test_it_reads_nothing_from_no_cards() -> None:
    assert read_camera({}) == Camera()
    assert read_camera({}).identity() == {}
    assert cards_from_head(b"", 0, CAMERA_CARDS) == ({}, None)
