import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from skysolve.engine.inputs.hints import apply_hints, hints_from_image, largest_scale
from skysolve.engine.inputs.images import LoadedImage, load_image
from skysolve.engine.params import Hints, SolveParameters

WIDTH, HEIGHT = 800, 600


def _image(header: dict[str, Any] | None = None, exif: dict[str, Any] | None = None) -> LoadedImage:
    fits_header = None
    if header is not None:
        fits_header = fits.Header()
        for key, value in header.items():
            fits_header[key] = value
    return LoadedImage(
        data=np.zeros((HEIGHT, WIDTH), dtype=np.float32),
        format="fits" if header is not None else "jpeg",
        header=fits_header,
        exif=exif or {},
        bottom_up=header is not None,
    )


def _wcs_header(ra: float = 84.5, dec: float = -2.5, scale_arcsec: float = 20.0) -> dict[str, Any]:
    cd = scale_arcsec / 3600.0
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CRPIX1": (WIDTH + 1) / 2.0,
        "CRPIX2": (HEIGHT + 1) / 2.0,
        "CRVAL1": ra,
        "CRVAL2": dec,
        "CD1_1": -cd,
        "CD1_2": 0.0,
        "CD2_1": 0.0,
        "CD2_2": cd,
    }


# -- hints_from_image --------------------------------------------------------------


def test_it_reads_centre_and_scale_from_a_wcs() -> None:
    hints = hints_from_image(_image(_wcs_header()))
    assert hints.center_ra == pytest.approx(84.5) and hints.center_dec == pytest.approx(-2.5)
    assert hints.scale_lower == pytest.approx(18.0) and hints.scale_upper == pytest.approx(22.0)
    field_radius = 20.0 * math.hypot(WIDTH, HEIGHT) / 2 / 3600
    assert hints.radius is not None and hints.radius >= 2 * field_radius
    assert hints.sources == ("FITS WCS",) and not hints.empty


def test_it_prefers_the_wcs_over_pointing_keywords() -> None:
    header = _wcs_header() | {"RA": 10.0, "DEC": 10.0, "FOCALLEN": 1000.0, "XPIXSZ": 5.0}
    hints = hints_from_image(_image(header))
    assert hints.center_ra == pytest.approx(84.5) and hints.position_source == "FITS WCS"


def test_it_ignores_a_wcs_without_a_scale() -> None:
    header = _wcs_header()
    for key in ("CD1_1", "CD1_2", "CD2_1", "CD2_2"):
        del header[key]
    assert hints_from_image(_image(header)).empty


def test_it_reads_ra_dec_in_degrees_and_sexagesimal() -> None:
    hints = hints_from_image(_image({"RA": 187.25, "DEC": 56.5}))
    assert (hints.center_ra, hints.center_dec) == (187.25, 56.5)
    assert hints.radius == 20.0 and hints.sources == ("RA/DEC keywords",)
    text = hints_from_image(_image({"RA": "12 29 00", "DEC": "-43 52 30"}))
    assert text.center_ra == pytest.approx(187.25)
    assert text.center_dec == pytest.approx(-(43 + 52.5 / 60))


def test_it_reads_objctra_and_objctdec() -> None:
    hints = hints_from_image(_image({"OBJCTRA": "08 41 05.7", "OBJCTDEC": "-43 52 27"}))
    assert hints.center_ra == pytest.approx((8 + 41 / 60 + 5.7 / 3600) * 15)
    assert hints.center_dec == pytest.approx(-(43 + 52 / 60 + 27 / 3600))
    assert hints.sources == ("OBJCTRA/OBJCTDEC",)


def test_it_computes_the_scale_from_focal_length_and_pixel_size() -> None:
    hints = hints_from_image(_image({"FOCALLEN": 500.0, "XPIXSZ": 3.76}))
    scale = 206.265 * 3.76 / 500.0
    assert hints.scale_lower == pytest.approx(scale * 0.85, rel=1e-4)
    assert hints.scale_upper == pytest.approx(scale * 1.15, rel=1e-4)
    assert hints.sources == ("FOCALLEN and XPIXSZ",) and hints.center_ra is None
    pixsize = hints_from_image(_image({"FOCALLEN": 500.0, "PIXSIZE1": 3.76}))
    assert pixsize.scale_upper == pytest.approx(hints.scale_upper)


def test_it_gives_the_largest_scale_the_metadata_allows_as_the_hints_would() -> None:
    for header, exif in [
        ({"FOCALLEN": 500.0, "XPIXSZ": 3.76}, None),
        (_wcs_header(scale_arcsec=12.0), None),
        ({**_wcs_header(scale_arcsec=12.0), "PIXSCALE": 11.0}, None),
        (None, {"FocalLength": 50.0}),
    ]:
        image = _image(header, exif)
        found = largest_scale(image)
        assert found is not None
        hints = hints_from_image(image)
        assert found == (pytest.approx(hints.scale_upper), hints.scale_source)
    assert largest_scale(_image({"RA": 10.0, "DEC": 20.0})) is None
    assert largest_scale(_image(None, {})) is None


def test_it_covers_both_readings_of_binned_pixel_sizes() -> None:
    hints = hints_from_image(_image({"FOCALLEN": 500.0, "XPIXSZ": 3.76, "XBINNING": 2}))
    scale = 206.265 * 3.76 / 500.0
    assert hints.scale_lower is not None and hints.scale_upper is not None
    assert hints.scale_lower < scale < 2 * scale < hints.scale_upper
    assert hints.scale_source == "FOCALLEN and XPIXSZ and XBINNING"


def test_it_sizes_the_radius_of_a_pointing_from_the_scale() -> None:
    hints = hints_from_image(
        _image({"RA": 10.0, "DEC": 20.0, "FOCALLEN": 50.0, "XPIXSZ": 6.0})
    )  # ~25 arcsec/px: a 7 deg field
    assert hints.radius is not None and 10.0 < hints.radius < 20.0
    narrow = hints_from_image(_image({"RA": 10.0, "DEC": 20.0, "FOCALLEN": 2000.0, "XPIXSZ": 6.0}))
    assert narrow.radius == 5.0
    assert narrow.sources == ("RA/DEC keywords", "FOCALLEN and XPIXSZ")


@pytest.mark.parametrize(
    "header",
    [
        {"RA": 400.0, "DEC": 10.0},
        {"RA": 10.0, "DEC": -95.0},
        {"RA": 10.0},
        {"RA": "not an angle", "DEC": "10 00 00"},
        {"RA": "12 75 00", "DEC": "10 00 00"},
        {"OBJCTRA": "25 00 00", "OBJCTDEC": "10 00 00"},
        {"OBJCTRA": 12.0, "OBJCTDEC": 10.0},
        {"FOCALLEN": 0.0, "XPIXSZ": 5.0},
        {"FOCALLEN": 500.0, "XPIXSZ": -5.0},
        {"FOCALLEN": "long", "XPIXSZ": 5.0},
        {"FOCALLEN": 500.0},
        {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": "x", "CRVAL1": "bad"},
        {"RA": True, "DEC": False},
    ],
)
def test_it_ignores_bad_keywords(header: dict[str, Any]) -> None:
    assert hints_from_image(_image(header)).empty


def test_it_uses_the_35mm_equivalent_focal_length() -> None:
    hints = hints_from_image(_image(exif={"FocalLengthIn35mmFilm": 50, "FocalLength": 33.0}))
    scale = math.degrees(2 * math.atan(36 / 100)) * 3600 / WIDTH
    assert hints.scale_lower is not None and hints.scale_upper is not None
    assert hints.scale_lower < scale < hints.scale_upper
    assert hints.scale_upper == pytest.approx(scale * 1.2)
    assert hints.sources == ("EXIF FocalLengthIn35mmFilm",)


def test_it_widens_the_range_for_a_bare_focal_length() -> None:
    hints = hints_from_image(_image(exif={"FocalLength": 50.0}))
    full_frame = math.degrees(2 * math.atan(36 / 100)) * 3600 / WIDTH
    crop_two = math.degrees(2 * math.atan(36 / 200)) * 3600 / WIDTH
    assert hints.scale_lower is not None and hints.scale_upper is not None
    assert hints.scale_lower < crop_two < full_frame < hints.scale_upper
    assert "sensor size unknown" in hints.sources[0]


def test_it_reads_exif_written_into_a_jpeg(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 24  # FocalLengthIn35mmFilm
    path = tmp_path / "wide.jpg"
    Image.fromarray(np.zeros((60, 80, 3), dtype=np.uint8)).save(path, exif=exif)
    hints = hints_from_image(load_image(path))
    scale = math.degrees(2 * math.atan(36 / 48)) * 3600 / 80
    assert hints.scale_upper == pytest.approx(scale * 1.2)


def test_it_gives_empty_hints_without_metadata() -> None:
    hints = hints_from_image(_image())
    assert hints.empty and hints.sources == ()
    assert hints.to_dict()["center_ra"] is None


def test_it_serialises_hints() -> None:
    data = hints_from_image(_image({"RA": 10.0, "DEC": 20.0})).to_dict()
    assert data["center_ra"] == 10.0 and data["sources"] == ["RA/DEC keywords"]
    assert data["radius"] == 20.0 and data["scale_lower"] is None


# -- apply_hints -------------------------------------------------------------------


def test_it_fills_what_the_user_did_not_give() -> None:
    hints = hints_from_image(_image(_wcs_header()))
    params = SolveParameters()
    new, used = apply_hints(params, hints, image_width=WIDTH)
    assert new.center_ra == pytest.approx(84.5) and new.radius == hints.radius
    assert new.scale_units == "arcsecperpix" and new.scale_type == "ul"
    assert new.scale_lower == pytest.approx(18.0) and new.scale_upper == pytest.approx(22.0)
    assert used["sources"] == ["FITS WCS"] and used["center_ra"] == new.center_ra
    assert params.center_ra is None and params.scale_units == "degwidth"  # input untouched


def test_it_keeps_what_the_user_gave() -> None:
    hints = hints_from_image(_image(_wcs_header()))
    params = SolveParameters(
        center_ra=1.0,
        center_dec=2.0,
        radius=3.0,
        scale_units="degwidth",
        scale_lower=1.0,
        scale_upper=2.0,
    )
    new, used = apply_hints(params, hints, image_width=WIDTH)
    assert new == params and used == {}


def test_it_fills_only_the_missing_half() -> None:
    hints = hints_from_image(_image(_wcs_header()))
    given_scale = SolveParameters(scale_units="degwidth", scale_lower=4.0, scale_upper=5.0)
    new, used = apply_hints(given_scale, hints, image_width=WIDTH)
    assert new.scale_units == "degwidth" and new.scale_lower == 4.0
    assert new.center_ra == pytest.approx(84.5)
    assert "scale_lower" not in used and used["sources"] == ["FITS WCS"]


def test_it_sizes_the_radius_from_the_users_scale() -> None:
    hints = Hints(center_ra=10.0, center_dec=20.0, radius=20.0, sources=("RA/DEC keywords",))
    params = SolveParameters(scale_units="arcsecperpix", scale_lower=1.0, scale_upper=2.0)
    new, used = apply_hints(params, hints, image_width=WIDTH)
    assert new.radius == 5.0 and used["radius"] == 5.0


def test_it_keeps_the_users_radius() -> None:
    hints = Hints(center_ra=10.0, center_dec=20.0, radius=20.0, sources=("RA/DEC keywords",))
    new, used = apply_hints(SolveParameters(radius=2.0), hints, image_width=WIDTH)
    assert new.radius == 2.0 and new.center_ra == 10.0 and "radius" not in used


def test_it_applies_nothing_when_hints_are_off_or_empty() -> None:
    hints = hints_from_image(_image(_wcs_header()))
    off = SolveParameters(use_hints=False)
    assert apply_hints(off, hints, image_width=WIDTH) == (off, {})
    params = SolveParameters()
    assert apply_hints(params, Hints(), image_width=WIDTH) == (params, {})
