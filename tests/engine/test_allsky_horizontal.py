"""An all-sky frame in altitude and azimuth: the horizontal frame, lens.json's part, altaz.fits."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from skysolve.engine.allsky.blind import AllskySolution, MatchedStars
from skysolve.engine.allsky.horizontal import (
    Horizon,
    altaz_planes,
    altaz_to_pixel,
    exif_site,
    exif_time,
    horizon_at,
    horizontal_model,
    pixel_to_altaz,
    write_altaz_fits,
)
from skysolve.engine.allsky.model import LensModel
from skysolve.engine.allsky.solver import lens_document
from skysolve.engine.solving.fastpath.database import default_db_path
from testfields.allsky import render_allsky

WHEN = "2018-08-17T03:38:28"
LA_PALMA = (28.7619, -17.8906)
SOUTH_POLE = (-89.9944, -63.453)
POLARIS = (37.95456067, 89.26410897)  # J2000
FOCAL = 215.0 / (math.pi / 2)  # equidistant: the horizon 215 px from the axis


@pytest.fixture(autouse=True)
def offline_astropy() -> Iterator[None]:
    from astropy.utils import iers

    # The tests compare with astropy's AltAz offline: its bundled Earth
    # orientation tables, no download.
    with iers.conf.set_temp("auto_download", False), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _astropy_altaz(
    ra: np.ndarray, dec: np.ndarray, when: str, site: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord
    from astropy.time import Time

    where = EarthLocation(lat=site[0] * u.deg, lon=site[1] * u.deg)
    frame = AltAz(obstime=Time(when), location=where, pressure=0 * u.hPa)
    got = SkyCoord(ra * u.deg, dec * u.deg).transform_to(frame)
    return np.asarray(got.alt.deg), np.asarray(got.az.deg)


def _separation(alt1: np.ndarray, az1: np.ndarray, alt2: np.ndarray, az2: np.ndarray) -> np.ndarray:
    a1, z1, a2, z2 = (np.radians(np.asarray(v, float)) for v in (alt1, az1, alt2, az2))
    cos = np.sin(a1) * np.sin(a2) + np.cos(a1) * np.cos(a2) * np.cos(z1 - z2)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _camera(
    horizon: Horizon,
    az: float,
    alt: float,
    roll: float = 0.0,
    projection: str = "equidistant",
    **lens: float,
) -> LensModel:
    """A camera pointed at (az, alt), built in the horizontal frame and turned to J2000."""
    local = LensModel(projection, 238.0, 244.0, (360.0 - az) % 360.0, alt, roll, FOCAL, **lens)  # type: ignore[arg-type]
    to_nwu = np.diag([1.0, -1.0, 1.0]) @ horizon.matrix
    return local.with_rotation(local.rotation @ to_nwu)


@pytest.mark.parametrize(("when", "site"), [(WHEN, LA_PALMA), ("2017-05-03T03:12:04", SOUTH_POLE)])
def test_the_horizontal_frame_agrees_with_astropys_altaz(
    when: str, site: tuple[float, float]
) -> None:
    rng = np.random.default_rng(4)
    ra = rng.uniform(0.0, 360.0, 500)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 500)))
    horizon = horizon_at(when, *site)
    alt, az = horizon.altaz(ra, dec)
    ref_alt, ref_az = _astropy_altaz(ra, dec, when, site)
    # Arcseconds: UT1 - UTC and polar motion, which the frame leaves out.
    assert np.max(_separation(alt, az, ref_alt, ref_az)) * 3600.0 < 10.0
    back_ra, back_dec = horizon.radec(alt, az)
    assert np.max(_separation(back_dec, back_ra, dec, ra)) * 3600.0 < 0.01


def test_pixels_go_to_altitude_and_azimuth_and_back() -> None:
    horizon = horizon_at(WHEN, *LA_PALMA)
    model = _camera(horizon, az=200.0, alt=80.0, roll=25.0, k1=0.01, a=0.002)
    y, x = np.mgrid[30:460:7, 30:460:7].astype(float)
    alt, az = pixel_to_altaz(model, horizon, x, y)
    up = alt > 0.0
    assert up.sum() > 2000
    x2, y2 = altaz_to_pixel(model, horizon, alt[up], az[up])
    assert np.max(np.hypot(x2 - x[up], y2 - y[up])) < 1e-6


def test_polaris_is_at_the_sites_latitude_due_north() -> None:
    horizon = horizon_at(WHEN, *LA_PALMA)
    model = _camera(horizon, az=0.0, alt=90.0, roll=0.0)
    px, py = model.world_to_pixel(np.array([POLARIS[0]]), np.array([POLARIS[1]]))
    alt, az = pixel_to_altaz(model, horizon, px, py)
    # Polaris circles the pole 0.7 degrees off it.
    assert abs(float(alt[0]) - LA_PALMA[0]) < 0.8
    assert abs((float(az[0]) + 180.0) % 360.0 - 180.0) < 1.5
    ref_alt, ref_az = _astropy_altaz(np.array([POLARIS[0]]), np.array([POLARIS[1]]), WHEN, LA_PALMA)
    assert _separation(alt, az, ref_alt, ref_az)[0] * 3600.0 < 5.0


def _document(
    model: LensModel, header: dict[str, object], exif: dict[str, object] | None = None
) -> dict[str, object]:
    rng = np.random.default_rng(3)
    ra = rng.uniform(0, 360, 4000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 4000)))
    keep = model.off_axis(ra, dec) < 60.0
    ra, dec = ra[keep][:30], dec[keep][:30]
    x, y = model.world_to_pixel(ra, dec)
    zero = np.zeros(len(ra))
    matched = MatchedStars(x, y, ra, dec, zero, zero, zero, model.off_axis(ra, dec), zero)
    solution = AllskySolution(model=model, matched=matched)
    return lens_document(solution, 480, 480, header=header, exif=exif)


HEADER = {"DATE-OBS": WHEN, "SITELAT": LA_PALMA[0], "SITELONG": LA_PALMA[1]}


def test_a_camera_looking_up_with_north_at_the_top_has_its_compass_where_the_sky_puts_it() -> None:
    horizon = horizon_at(WHEN, *LA_PALMA)
    model = _camera(horizon, az=0.0, alt=90.0, roll=0.0)
    doc = _document(model, HEADER)
    h = doc["horizontal"]
    assert isinstance(h, dict)
    # The camera is built with a rotation, which leaves out the annual aberration:
    # 21 arcseconds, 0.006 degrees, 0.014 px at most.
    assert h["pointing"]["altitude_deg"] == pytest.approx(90.0, abs=0.01)
    assert h["zenith"]["x"] == pytest.approx(238.0, abs=0.02)
    assert h["zenith"]["y"] == pytest.approx(244.0, abs=0.02)
    assert h["image_up_azimuth_deg"] == pytest.approx(0.0, abs=0.05)
    # Seen from below, north at the top: east on the left, west on the right.
    r = FOCAL * math.pi / 2
    expected = {"north": (238, 244 - r), "east": (238 - r, 244), "south": (238, 244 + r)}
    expected["west"] = (238 + r, 244)
    for name, (x, y) in expected.items():
        point = h["horizon_points"][name]
        assert point["x"] == pytest.approx(x, abs=0.02) and point["y"] == pytest.approx(y, abs=0.02)
    pole = h["celestial_pole"]
    assert pole["pole"] == "north" and pole["altitude_deg"] == pytest.approx(LA_PALMA[0])
    assert pole["y"] == pytest.approx(244.0 - FOCAL * math.radians(90.0 - LA_PALMA[0]), abs=0.02)
    assert h["refraction"] is False and h["time"] == WHEN
    # Without a site there is no horizontal frame (the site below the axis is a guess).
    assert "horizontal" not in _document(model, {"DATE-OBS": WHEN})


def test_the_map_is_for_the_middle_of_the_exposure() -> None:
    horizon = horizon_at(WHEN, *LA_PALMA)
    model = _camera(horizon, az=0.0, alt=90.0)
    instant = _document(model, HEADER)
    exposed = _document(model, {**HEADER, "EXPTIME": 60.0})
    h = exposed["horizontal"]
    assert isinstance(h, dict) and h["time"] == "2018-08-17T03:38:58.000"
    assert "EXPTIME" in h["time_source"] and exposed["time"] == WHEN
    # 30 s later the zenith is 30 sidereal seconds further east: 0.1253 degree of RA.
    zenith_then, zenith_now = instant["zenith"], exposed["zenith"]
    assert isinstance(zenith_then, dict) and isinstance(zenith_now, dict)
    assert zenith_now["ra"] - zenith_then["ra"] == pytest.approx(0.1253, abs=0.0005)
    averaged = _document(model, {**HEADER, "EXPTIME": 60.0, "DATE-AVG": "2018-08-17T03:39:00"})
    assert averaged["horizontal"]["time"] == "2018-08-17T03:39:00.000"  # type: ignore[index]


def test_a_jpegs_gps_tags_give_the_site_and_the_time(tmp_path: Path) -> None:
    from PIL import ExifTags, Image

    from skysolve.engine.inputs.images import load_image

    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: (28.0, 45.0, 42.84), 3: "W", 4: (17.0, 53.0, 26.16)})
    gps.update({29: "2018:08:17", 7: (3.0, 38.0, 28.0)})
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ExposureTime] = 30.0
    path = tmp_path / "allsky.jpg"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(path, exif=exif)
    tags = load_image(path).exif
    assert exif_site(tags) == pytest.approx(LA_PALMA, abs=1e-6)
    assert exif_time(tags) == "2018-08-17T03:38:28.000"
    model = _camera(horizon_at(WHEN, *LA_PALMA), az=0.0, alt=90.0)
    doc = _document(model, {}, exif=tags)
    h = doc["horizontal"]
    assert isinstance(h, dict) and isinstance(doc["site"], dict)
    assert doc["site"]["source"] == "EXIF GPS" and doc["time"] == "2018-08-17T03:38:28.000"
    assert h["time"] == "2018-08-17T03:38:43.000" and "ExposureTime" in h["time_source"]


def test_a_cameras_clock_counts_only_with_its_offset_from_utc() -> None:
    local = {"DateTimeOriginal": "2018:08:17 04:38:28"}
    assert exif_time(local) is None  # a time zone nobody knows
    assert exif_time({**local, "OffsetTimeOriginal": "+01:00"}) == "2018-08-17T03:38:28.000"
    assert exif_site({"GPSLatitude": (28.0, 45.0, 42.84), "GPSLatitudeRef": "N"}) is None
    south_west = {"GPSLatitude": 33.5, "GPSLatitudeRef": "S", "GPSLongitude": 70.25}
    assert exif_site({**south_west, "GPSLongitudeRef": "W"}) == (-33.5, -70.25)


def test_the_lens_file_gives_a_tilted_cameras_pointing_grid_and_model_in_altaz() -> None:
    horizon = horizon_at(WHEN, *LA_PALMA)
    model = _camera(horizon, az=340.0, alt=60.0, roll=0.0, k1=0.01)
    h = _document(model, HEADER)["horizontal"]
    assert isinstance(h, dict)
    assert h["pointing"]["altitude_deg"] == pytest.approx(60.0, abs=0.01)
    assert h["pointing"]["azimuth_deg"] == pytest.approx(340.0, abs=0.01)
    # Camera y along rising altitude: the image's up is down the sky.
    assert h["roll_deg"] == pytest.approx(180.0, abs=0.02)
    grid = h["grid"]
    alt, az = np.meshgrid(grid["altitude_deg"], grid["azimuth_deg"], indexing="ij")
    gx = np.array(grid["x"], dtype=float)
    gy = np.array(grid["y"], dtype=float)
    seen = np.isfinite(gx)
    assert seen.sum() > 500
    back_alt, back_az = pixel_to_altaz(model, horizon, gx[seen], gy[seen])
    # The grid's pixels are rounded to 0.01 px, 0.004 degrees here.
    assert np.max(_separation(back_alt, back_az, alt[seen], az[seen])) < 0.005
    # The model in alt/az, as a client evaluates it: world_to_pixel(360 - az, alt).
    local = LensModel.from_dict(h["model"])
    lx, ly = local.world_to_pixel((360.0 - az[seen]) % 360.0, alt[seen])
    assert np.max(np.hypot(lx - gx[seen], ly - gy[seen])) < 0.05
    assert local.dec == pytest.approx(60.0, abs=0.01)
    assert horizontal_model(model, horizon).ra == pytest.approx(20.0, abs=0.01)


@pytest.mark.parametrize("projection", ["equidistant", "orthographic"])
def test_altaz_fits_holds_every_pixels_altitude_and_azimuth(
    tmp_path: Path, projection: str
) -> None:
    horizon = horizon_at(WHEN, *LA_PALMA)
    # The orthographic lens ends 215 px from the axis, inside the frame and the
    # circle: the pixels next to its end get the model's own values.
    model = _camera(horizon, 100.0, 75.0, 40.0, projection, k1=0.01, k2=-0.002)
    circle = (238.0, 244.0, 230.0)
    path = write_altaz_fits(tmp_path / "altaz.fits", model, horizon, 480, 400, circle=circle)
    alt, az = fits.getdata(path).astype(float)
    header = fits.getheader(path)
    assert alt.shape == (400, 480)
    assert header["PLANE1"] == "ALTITUDE" and header["PLANE2"] == "AZIMUTH"
    assert header["DATE-OBS"] == WHEN and header["SITELAT"] == pytest.approx(LA_PALMA[0])
    assert header["REFRACT"] is False
    # Interpolated between model points 4 px apart: against the model at every pixel.
    exact = altaz_planes(model, horizon, 480, 400, circle=circle, step=1)
    differ = np.isnan(alt) != np.isnan(exact[0])
    # Only on the horizon itself, where the two fall either side of altitude 0.
    assert np.all(np.abs(np.nan_to_num(alt[differ]) + np.nan_to_num(exact[0][differ])) < 0.005)
    y, x = np.mgrid[0:400, 0:480]
    # Within 0.02 px of the model (its tolerance), measured in pixels: taken back through it.
    seen = np.isfinite(alt)
    bx, by = altaz_to_pixel(model, horizon, alt[seen], az[seen])
    miss = np.hypot(bx - x[seen], by - y[seen])
    assert np.isfinite(miss).mean() > 0.999 and np.nanmax(miss) < 0.03
    assert np.all(np.isnan(alt[np.hypot(x - 238.0, y - 244.0) > 230.0]))
    assert np.nanmin(alt) >= 0.0 and np.isnan(alt).any()
    # A pixel where the model itself was evaluated: the file is indexed [y, x].
    a, z = pixel_to_altaz(model, horizon, np.array([300.0]), np.array([152.0]))
    assert _separation(alt[152, 300], az[152, 300], a[0], z[0]) < 1e-4


@pytest.mark.skipif(not default_db_path().is_file(), reason="the fast-path database is not built")
def test_a_solved_frame_with_time_and_site_gets_altaz_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skysolve.engine.params import SolveParameters
    from skysolve.engine.pipeline import EngineConfig, solve

    monkeypatch.setenv("SKYSOLVE_ALLSKY_PROFILES", str(tmp_path / "profiles"))
    horizon = horizon_at(WHEN, *LA_PALMA)
    model = _camera(horizon, az=30.0, alt=88.0, roll=15.0)
    frame = tmp_path / "allsky.fits"
    header = fits.Header()
    header["DATE-OBS"], header["SITELAT"], header["SITELONG"] = WHEN, "28 45 42.8", "-17 53 26"
    fits.PrimaryHDU(render_allsky(model, 480, 480, seed=5), header=header).writeto(frame)
    result = solve(
        frame, SolveParameters(), tmp_path / "out", config=EngineConfig(make_pictures=False)
    )
    assert result.solved
    path = result.files["altaz"]
    assert path.parent == tmp_path / "out" and path.name == "altaz.fits"
    alt, az = fits.getdata(path).astype(float)
    doc = json.loads(result.files["lens"].read_text())
    zx, zy = doc["horizontal"]["zenith"]["x"], doc["horizontal"]["zenith"]["y"]
    assert alt[round(zy), round(zx)] > 89.5
    # The solved camera points where it was put.
    assert doc["horizontal"]["pointing"]["altitude_deg"] == pytest.approx(88.0, abs=0.1)
    truth_alt, truth_az = pixel_to_altaz(model, horizon, np.array([300.0]), np.array([120.0]))
    assert _separation(alt[120, 300], az[120, 300], truth_alt[0], truth_az[0]) < 0.1
