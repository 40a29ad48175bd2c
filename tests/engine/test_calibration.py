"""Calibration fields, especially orientation and parity, against astropy."""

import math

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.engine.results import Calibration, nova_orientation, wcs_from_header


def tan(ra: float, dec: float, cd: np.ndarray, width: int, height: int) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(width + 1) / 2, (height + 1) / 2]
    w.wcs.cd = cd
    return w


def cd_for(scale_deg: float, rotation: float, parity: int) -> np.ndarray:
    r = math.radians(rotation)
    return scale_deg * np.array(
        [[parity * math.cos(r), math.sin(r)], [-parity * math.sin(r), math.cos(r)]]
    )


def position_angle_of_axis(w: WCS, x: float, y: float, dx: float, dy: float) -> float:
    """Position angle (deg E of N) of the pixel direction (dx, dy) at (x, y), by astropy."""
    a, b = w.all_pix2world([[x, y], [x + dx, y + dy]], 1)
    p, q = SkyCoord(a[0], a[1], unit="deg"), SkyCoord(b[0], b[1], unit="deg")
    return float(p.position_angle(q).deg) % 360.0


def angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize("parity", [1, -1])
@pytest.mark.parametrize("rotation", [0.0, 33.0, 90.0, 161.0, 250.0, 359.0])
def test_it_reports_the_position_angle_of_the_y_axis(parity: int, rotation: float) -> None:
    w = tan(40.0, 20.0, cd_for(10 / 3600, rotation, parity), 800, 600)
    cal = Calibration.from_wcs(w, 800, 600)
    assert cal.parity == float(parity)
    assert angle_diff(cal.orientation, rotation) < 1e-6
    pa = position_angle_of_axis(w, 400.5, 300.5, 0.0, 1.0)
    assert angle_diff(cal.orientation, pa) < 1e-3


@pytest.mark.parametrize("parity", [1, -1])
def test_it_flips_for_top_down_row_order(parity: int) -> None:
    """The same picture stored bottom-up (FITS) and top-down (JPEG/PNG).

    Flipping the rows negates the y column of CD: parity changes sign and the
    orientation turns by 180 degrees, so "display up" (FITS: +y, JPEG: -y)
    points the same way on the sky, at ``orientation + 180`` for the JPEG.
    (nova reports neither for JPEGs: see test_it_mirrors_like_nova_for_jpeglike_inputs.)
    """
    width, height = 719, 507
    fits_wcs = tan(187.0, 56.0, cd_for(0.05, 65.0, parity), width, height)
    jpeg_wcs = fits_wcs.deepcopy()
    jpeg_wcs.wcs.cd = fits_wcs.wcs.cd @ np.diag([1.0, -1.0])
    jpeg_wcs.wcs.crpix = [fits_wcs.wcs.crpix[0], height + 1 - fits_wcs.wcs.crpix[1]]
    a = Calibration.from_wcs(fits_wcs, width, height)
    b = Calibration.from_wcs(jpeg_wcs, width, height)
    assert a.parity == -b.parity
    assert angle_diff(a.orientation, b.orientation + 180.0) < 1e-6
    assert a.ra == pytest.approx(b.ra) and a.dec == pytest.approx(b.dec)
    up_fits = position_angle_of_axis(fits_wcs, 360, 254, 0, 1)
    up_jpeg = position_angle_of_axis(jpeg_wcs, 360, 254, 0, -1)
    assert angle_diff(up_fits, up_jpeg) < 1e-3
    assert angle_diff(up_jpeg, b.orientation + 180.0) < 0.05


def test_it_measures_size_scale_and_centre() -> None:
    w = tan(10.0, -30.0, cd_for(2 / 3600, 10.0, 1), 1000, 500)
    cal = Calibration.from_wcs(w, 1000, 500)
    assert cal.pixscale == pytest.approx(2.0)
    assert cal.width_arcsec == pytest.approx(2000.0) and cal.height_arcsec == pytest.approx(1000.0)
    assert cal.radius == pytest.approx(2.0 * math.hypot(1000, 500) / 2 / 3600)
    assert cal.ra == pytest.approx(10.0) and cal.dec == pytest.approx(-30.0)
    assert set(cal.to_nova()) == {
        "ra",
        "dec",
        "radius",
        "pixscale",
        "orientation",
        "parity",
        "width_arcsec",
        "height_arcsec",
    }


def test_it_evaluates_off_centre_reference_pixels_at_the_centre() -> None:
    """A wide solution with CRPIX far from the centre reports the centre's angle."""
    w = tan(187.0, 56.7, cd_for(0.047, 60.0, 1), 719, 507)
    w.wcs.crpix = [360.0, 60.0]
    cal = Calibration.from_wcs(w, 719, 507)
    at_centre = position_angle_of_axis(w, 360.0, 254.0, 0.0, 0.01)
    at_crpix = position_angle_of_axis(w, 360.0, 60.0, 0.0, 0.01)
    assert angle_diff(cal.orientation, at_centre) < 0.01
    assert angle_diff(at_centre, at_crpix) > 1.0  # the distinction matters on wide fields


def test_it_reads_a_solver_header_with_no_image_axes() -> None:
    h = fits.Header()
    h["NAXIS"] = 0
    w = tan(84.0, -2.0, cd_for(20 / 3600, 90.0, 1), 800, 600)
    h.update(w.to_header())
    back = wcs_from_header(h, 800, 600)
    assert Calibration.from_wcs(back, 800, 600).pixscale == pytest.approx(20.0)


@pytest.mark.parametrize("image_format", ["jpeg", "png", "gif"])
@pytest.mark.parametrize("rotation", [0.0, 33.0, 90.0, 161.0, 250.0])
def test_it_mirrors_like_nova_for_jpeglike_inputs(image_format: str, rotation: float) -> None:
    """nova's Calibration.get_orientation: (180 - t) mod 360 for JPEG, PNG and GIF inputs."""
    width, height = 719, 507
    w = tan(187.0, 56.0, cd_for(0.05, rotation, 1), width, height)
    t = Calibration.from_wcs(w, width, height).orientation
    reported = nova_orientation(t, image_format)
    assert 0.0 <= reported < 360.0
    assert angle_diff(reported, 180.0 - rotation) < 1e-6
    # The displayed picture's "up" (-y for these formats) is at t + 180: the two
    # agree only when t is 0 or 180, so nova's number is not that direction.
    up = position_angle_of_axis(w, 360, 254, 0, -1)
    assert angle_diff(up, t + 180.0) < 0.05
    assert (angle_diff(reported, up) < 0.05) == (angle_diff(rotation % 180.0, 0.0) < 1e-6)


@pytest.mark.parametrize("image_format", ["fits", "tiff", "bmp", "webp", None])
def test_it_reports_the_wcsinfo_angle_for_other_inputs(image_format: str | None) -> None:
    assert nova_orientation(-58.5, image_format) == -58.5
    assert nova_orientation(121.0, image_format) == 121.0
