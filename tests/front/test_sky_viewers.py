from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import astropy.units as u
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from django.test import Client

from skysolve.front import viewers
from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db

FIELD = viewers.Field(
    ra=10.0, dec=41.0, radius=1.0, pixscale=5.0, width=1200, height=800,
    orientation=30.0, parity=-1.0, bottom_up=True,
)  # fmt: skip


def test_it_outlines_the_field_from_the_wcs_file(tmp_path: Path) -> None:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [10.0, 41.0]
    wcs.wcs.crpix = [600.5, 400.5]
    wcs.wcs.cd = [[-5 / 3600, 0.0], [0.0, 5 / 3600]]
    path = tmp_path / "wcs.fits"
    wcs.to_fits().writeto(path)
    corners = viewers.outline(FIELD, path)
    assert len(corners) == 5 and corners[0] == corners[-1]
    expected = wcs.all_pix2world([[1, 1], [1200, 1], [1200, 800], [1, 800]], 1)
    for (ra, dec), (want_ra, want_dec) in zip(corners, expected, strict=False):
        assert ra == pytest.approx(want_ra, abs=1e-9) and dec == pytest.approx(want_dec, abs=1e-9)


def test_it_falls_back_to_the_calibration_with_the_right_size_and_turn() -> None:
    corners = viewers.outline(FIELD, None)
    (ra0, dec0), (ra1, dec1) = corners[0], corners[1]
    start, end = SkyCoord(ra0 * u.deg, dec0 * u.deg), SkyCoord(ra1 * u.deg, dec1 * u.deg)
    # The bottom edge (+x) is 1199 pixels of 5" long (a tangent plane: nearly) ...
    assert start.separation(end).arcsec == pytest.approx(1199 * 5, rel=1e-3)
    # ... and for parity -1, +x is +y (position angle 30) turned 90° towards the West.
    assert start.position_angle(end).deg == pytest.approx((30.0 - 90.0) % 360, abs=0.5)


def test_it_builds_a_legacy_surveys_link_with_the_outline() -> None:
    url = viewers.legacy_surveys_url(FIELD, viewers.outline(FIELD, None))
    parts = urlparse(url)
    query = parse_qs(parts.query)
    assert parts.netloc == "www.legacysurvey.org"
    assert query["ra"] == ["10.00000"] and query["dec"] == ["41.00000"]
    assert len(query["poly"][0].split(",")) == 10
    # 2° across in ~800 screen pixels: 9"/px, zoom 14 - log2(9 / 0.262) ≈ 9.
    assert query["zoom"] == ["9"]


def test_it_links_a_solved_image_to_the_viewers(client: Client, settings: Any) -> None:
    job = solve(submit(make_user("alice")))
    job.result = {**job.result, "image_width": 719, "image_height": 507}
    job.save()
    settings.SITE_ROOT = "https://sky.example.org"
    body = client.get(f"/results/{job.id}").content.decode()
    assert "https://www.legacysurvey.org/viewer/?ra=187.18500&amp;dec=56.71300" in body
    assert "worldwidetelescope.org/wwtweb/ShowImage.aspx" in body
    assert f"sky.example.org%2Fuser_images%2F{job.user_image.id}%2Fdisplay" in body
    settings.SITE_ROOT = "http://localhost:8000"  # WWT could not fetch the picture
    assert "worldwidetelescope" not in client.get(f"/results/{job.id}").content.decode()


def test_it_offers_wwt_no_private_image(client: Client, settings: Any) -> None:
    alice = make_user("alice")
    job = solve(submit(alice, public=False))
    job.result = {**job.result, "image_width": 719, "image_height": 507}
    job.save()
    settings.SITE_ROOT = "https://sky.example.org"
    client.force_login(alice)
    body = client.get(f"/results/{job.id}").content.decode()
    assert "legacysurvey.org" in body and "worldwidetelescope" not in body
