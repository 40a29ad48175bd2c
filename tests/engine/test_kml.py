"""Google Sky KML of a solved image."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy.wcs import WCS

from skysolve.engine.products.kml import GX_NS, KML_NS, kml_corners, kmz_bytes, write_kml
from skysolve.errors import BadInputError
from tests.engine.test_annotations import APOD2_SIZE, apod2_wcs, tan_wcs

NS = {"k": KML_NS, "gx": GX_NS}


def read_corners(path: Path) -> np.ndarray:
    root = ET.parse(path).getroot()
    text = root.find("k:Document/k:GroundOverlay/gx:LatLonQuad/k:coordinates", NS)
    assert text is not None and text.text is not None
    return np.array([[float(v) for v in pair.split(",")] for pair in text.text.split()])


def test_it_writes_a_google_sky_document(tmp_path: Path) -> None:
    path = write_kml(
        apod2_wcs(), *APOD2_SIZE, image_name="annotated_display.jpg", out_path=tmp_path / "a.kml"
    )
    assert path == tmp_path / "a.kml"
    root = ET.parse(path).getroot()
    assert root.tag == f"{{{KML_NS}}}kml"
    assert root.get("hint") == "target=sky"
    href = root.find("k:Document/k:GroundOverlay/k:Icon/k:href", NS)
    assert href is not None and href.text == "annotated_display.jpg"
    assert path.read_bytes().startswith(b"<?xml")


def test_it_puts_the_corners_where_the_wcs_says(tmp_path: Path) -> None:
    wcs = apod2_wcs()
    width, height = APOD2_SIZE
    corners = read_corners(
        write_kml(wcs, width, height, image_name="x.jpg", out_path=tmp_path / "a.kml")
    )
    assert corners.shape == (4, 2)
    # JPEG: the displayed lower-left corner is the outer corner of pixel (1, height).
    pixels = [[0.5, height + 0.5], [width + 0.5, height + 0.5], [width + 0.5, 0.5], [0.5, 0.5]]
    world = wcs.all_pix2world(pixels, 1)
    assert np.allclose((corners[:, 0] + 180.0) % 360.0, world[:, 0] % 360.0, atol=1e-6)
    assert np.allclose(corners[:, 1], world[:, 1], atol=1e-6)
    # The Horsehead field is at RA ~84.6: longitude ~ -95.4.
    assert np.all((corners[:, 0] > -98) & (corners[:, 0] < -93))


def test_it_flips_fits_corners() -> None:
    wcs = tan_wcs(84.0, -2.0, 20.0, 800, 600)
    top_down = kml_corners(wcs, 800, 600)
    bottom_up = kml_corners(wcs, 800, 600, bottom_up=True)
    # Same four corners, with lower and upper edges swapped.
    assert bottom_up == [top_down[3], top_down[2], top_down[1], top_down[0]]
    # North-up east-left FITS picture: the lower-left corner is south-east.
    lower_left, lower_right, _, upper_left = bottom_up
    assert lower_left[1] < upper_left[1]
    assert lower_left[0] > lower_right[0]


def test_it_keeps_longitudes_in_range_across_ra_zero() -> None:
    corners = np.array(kml_corners(tan_wcs(0.1, 10.0, 20.0, 800, 600), 800, 600))
    assert np.all((corners[:, 0] >= -180) & (corners[:, 0] < 180))
    assert (corners[:, 0] < -170).any() and (corners[:, 0] > 170).any()


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../up.jpg", "http://x/y.jpg", "a\\b.jpg"])
def test_it_refuses_names_that_leave_the_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInputError, match="relative file name"):
        write_kml(apod2_wcs(), *APOD2_SIZE, image_name=name, out_path=tmp_path / "a.kml")


def test_it_escapes_titles(tmp_path: Path) -> None:
    path = write_kml(
        apod2_wcs(),
        *APOD2_SIZE,
        image_name="p.png",
        out_path=tmp_path / "sub" / "a.kml",
        title="M 42 <& friends>",
    )
    root = ET.parse(path).getroot()
    name = root.find("k:Document/k:name", NS)
    assert name is not None and name.text == "M 42 <& friends>"


def test_it_rejects_a_non_celestial_wcs(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="celestial"):
        write_kml(WCS(naxis=2), 10, 10, image_name="p.png", out_path=tmp_path / "a.kml")


def test_it_packs_the_document_and_its_picture_into_a_kmz(tmp_path: Path) -> None:
    kml = write_kml(
        apod2_wcs(), *APOD2_SIZE, image_name="annotated_display.jpg", out_path=tmp_path / "a.kml"
    )
    picture = tmp_path / "annotated_display.jpg"
    picture.write_bytes(b"\xff\xd8\xff\xe0 a picture")
    with zipfile.ZipFile(io.BytesIO(kmz_bytes(kml, picture))) as archive:
        assert archive.namelist() == ["doc.kml", "annotated_display.jpg"]
        assert archive.read("annotated_display.jpg") == picture.read_bytes()
        root = ET.fromstring(archive.read("doc.kml"))
    href = root.find("k:Document/k:GroundOverlay/k:Icon/k:href", NS)
    assert href is not None and href.text == "annotated_display.jpg"
    # The corners are the document's own.
    quad = root.find("k:Document/k:GroundOverlay/gx:LatLonQuad/k:coordinates", NS)
    assert quad is not None and quad.text is not None
    assert np.allclose(
        [[float(v) for v in pair.split(",")] for pair in quad.text.split()], read_corners(kml)
    )


def test_it_links_the_picture_by_its_own_name(tmp_path: Path) -> None:
    kml = write_kml(apod2_wcs(), *APOD2_SIZE, image_name="other.jpg", out_path=tmp_path / "a.kml")
    picture = tmp_path / "annotated_display.png"
    picture.write_bytes(b"\x89PNG picture")
    with zipfile.ZipFile(io.BytesIO(kmz_bytes(kml, picture))) as archive:
        root = ET.fromstring(archive.read("doc.kml"))
        assert "annotated_display.png" in archive.namelist()
    href = root.find("k:Document/k:GroundOverlay/k:Icon/k:href", NS)
    assert href is not None and href.text == "annotated_display.png"


def test_it_refuses_a_document_without_an_overlay(tmp_path: Path) -> None:
    bad = tmp_path / "bad.kml"
    bad.write_text(f'<kml xmlns="{KML_NS}"><Document/></kml>')
    picture = tmp_path / "p.jpg"
    picture.write_bytes(b"x")
    with pytest.raises(BadInputError, match="no ground-overlay picture link"):
        kmz_bytes(bad, picture)
    bad.write_text("<kml")
    with pytest.raises(BadInputError, match="not a KML document"):
        kmz_bytes(bad, picture)
