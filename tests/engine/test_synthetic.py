import math
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from skysolve.engine.indexes.catalog import StarCatalog, read_index_stars
from skysolve.engine.results import Calibration
from skysolve.errors import InvalidParameterError
from testfields.synthetic import (
    BENCH_SIZES,
    SATURATION,
    FieldSpec,
    SyntheticField,
    make_field,
    make_wcs,
    random_specs,
    write_fits,
    write_png,
    write_xyls,
)
from tests.gates import needs_binary, needs_file

INDEX_DIR = Path("/usr/share/astrometry")
# A mid-density index (363k stars) keeps these tests fast; 5-degree fields get ~200 stars.
MEDIUM_INDEX = INDEX_DIR / "index-tycho2-10.littleendian.fits"

needs_index = needs_file(MEDIUM_INDEX)

EMPTY = StarCatalog(ra=np.zeros(0), dec=np.zeros(0), mag=np.zeros(0), source="empty")


@pytest.fixture(scope="module")
def catalog() -> StarCatalog:
    return read_index_stars(MEDIUM_INDEX)


def wide_spec(**kw: object) -> FieldSpec:
    base: dict[str, object] = dict(
        ra=150.0, dec=20.0, pixscale=5.0 * 3600 / 800, width=800, height=600, rotation=25.0
    )
    base.update(kw)
    return FieldSpec(**base)  # type: ignore[arg-type]


def wrap(angle: float) -> float:
    return (angle + 180.0) % 360.0 - 180.0


@pytest.mark.parametrize("parity", [1, -1])
@pytest.mark.parametrize("rotation", [0.0, 30.0, 90.0, 179.0, 180.0, 250.0, -45.0, 359.5])
def test_it_builds_a_wcs_whose_calibration_gives_back_the_spec(
    parity: int, rotation: float
) -> None:
    spec = FieldSpec(
        ra=210.0, dec=-35.0, pixscale=3.7, width=1024, height=768, rotation=rotation, parity=parity
    )
    wcs = make_wcs(spec)
    cal = Calibration.from_wcs(wcs, spec.width, spec.height)
    assert cal.pixscale == pytest.approx(3.7, rel=1e-9)
    assert cal.parity == parity
    assert wrap(cal.orientation - rotation) == pytest.approx(0.0, abs=1e-6)
    assert cal.ra == pytest.approx(210.0) and cal.dec == pytest.approx(-35.0)
    assert tuple(wcs.wcs.crpix) == (512.5, 384.5)
    assert wcs.wcs.ctype[0] == "RA---TAN" and wcs.wcs.ctype[1] == "DEC--TAN"


@settings(max_examples=200, deadline=None)
@given(
    ra=st.floats(0.0, 360.0),
    dec=st.floats(-89.0, 89.0),
    pixscale=st.floats(0.1, 300.0),
    rotation=st.floats(-720.0, 720.0),
    parity=st.sampled_from([1, -1]),
)
def test_it_keeps_the_orientation_relation_everywhere(
    ra: float, dec: float, pixscale: float, rotation: float, parity: int
) -> None:
    spec = FieldSpec(
        ra=ra, dec=dec, pixscale=pixscale, width=640, height=480, rotation=rotation, parity=parity
    )
    cal = Calibration.from_wcs(make_wcs(spec), 640, 480)
    assert cal.pixscale == pytest.approx(pixscale, rel=1e-7)
    assert cal.parity == parity
    assert wrap(cal.orientation - rotation) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("parity", [1, -1])
def test_it_points_plus_y_north_and_x_by_parity_at_zero_rotation(parity: int) -> None:
    spec = FieldSpec(ra=100.0, dec=10.0, pixscale=10.0, width=200, height=100, parity=parity)
    wcs = make_wcs(spec)
    (ra0, dec0), (ra_y, dec_y), (ra_x, _) = wcs.all_pix2world(
        [[100.5, 50.5], [100.5, 90.5], [140.5, 50.5]], 1
    )
    assert dec_y > dec0 and ra_y == pytest.approx(ra0, abs=1e-9)
    # parity -1: East (growing RA) to the left as on a sky chart; parity +1: mirrored.
    assert np.sign(ra_x - ra0) == parity


def test_it_turns_plus_y_to_the_east_with_positive_rotation() -> None:
    spec = FieldSpec(ra=100.0, dec=0.0, pixscale=10.0, width=200, height=200, rotation=90.0)
    (ra0, dec0), (ra_y, dec_y) = make_wcs(spec).all_pix2world([[100.5, 100.5], [100.5, 150.5]], 1)
    assert ra_y > ra0 and dec_y == pytest.approx(dec0, abs=1e-9)


@needs_index
@pytest.mark.parametrize("parity", [1, -1])
def test_it_puts_sources_at_the_projected_catalogue_positions(
    catalog: StarCatalog, parity: int
) -> None:
    spec = wide_spec(parity=parity, max_stars=100000)
    field = make_field(spec, catalog=catalog, render=False)
    assert field.image is None and field.catalog is not None
    n = len(field.sources)
    assert 100 < n < 1000 and len(field.catalog) == n
    x, y = field.wcs.all_world2pix(field.catalog.ra, field.catalog.dec, 1)
    assert np.allclose(field.sources.x, x, atol=1e-6) and np.allclose(field.sources.y, y, atol=1e-6)
    assert field.sources.x.min() > 0.5 and field.sources.x.max() < spec.width + 0.5
    assert field.sources.y.min() > 0.5 and field.sources.y.max() < spec.height + 0.5
    # Every catalogue star in the frame is there.
    ax, ay = field.wcs.all_world2pix(catalog.ra, catalog.dec, 1)
    front = np.cos(np.radians(catalog.dec)) * np.cos(np.radians(catalog.ra - 150.0)) > 0
    in_frame = front & (ax > 0.5) & (ax < 800.5) & (ay > 0.5) & (ay < 600.5)
    assert n == int(in_frame.sum())
    # Brightest first, and brightness follows magnitude.
    assert np.all(np.diff(field.sources.flux) <= 0)
    assert field.catalog.mag is not None and np.all(np.diff(field.catalog.mag) >= -1e-9)
    assert field.truth == Calibration.from_wcs(field.wcs, 800, 600)


@needs_index
def test_it_keeps_only_the_brightest_stars(catalog: StarCatalog) -> None:
    everything = make_field(wide_spec(), catalog=catalog, render=False)
    few = make_field(wide_spec(max_stars=30), catalog=catalog, render=False)
    assert len(few.sources) == 30
    assert few.catalog is not None and everything.catalog is not None
    assert np.array_equal(few.catalog.ra, everything.catalog.ra[:30])


@needs_index
def test_it_drops_and_adds_the_asked_number_of_sources(catalog: StarCatalog) -> None:
    full = make_field(wide_spec(), catalog=catalog, render=False)
    noisy = make_field(wide_spec(missing_fraction=0.25, spurious=17), catalog=catalog, render=False)
    assert noisy.is_spurious is not None and noisy.catalog is not None
    assert int(noisy.is_spurious.sum()) == 17
    kept = len(noisy.sources) - 17
    assert kept == round(0.75 * len(full.sources)) == len(noisy.catalog)
    # Kept stars are a subset of the full field's stars.
    assert set(noisy.catalog.ra.tolist()) <= set(full.catalog.ra.tolist())  # type: ignore[union-attr]
    fake = noisy.sources.take(noisy.is_spurious)
    assert fake.x.min() >= 0.5 and fake.x.max() <= 800.5


@needs_index
def test_it_jitters_positions_by_the_asked_amount(catalog: StarCatalog) -> None:
    exact = make_field(wide_spec(), catalog=catalog, render=False)
    jittered = make_field(wide_spec(position_noise=0.7), catalog=catalog, render=False)
    assert exact.catalog is not None and jittered.catalog is not None
    assert np.array_equal(exact.catalog.ra, jittered.catalog.ra)
    dx = jittered.sources.x - exact.sources.x
    dy = jittered.sources.y - exact.sources.y
    assert np.std(np.concatenate([dx, dy])) == pytest.approx(0.7, rel=0.15)


@needs_index
def test_it_is_deterministic_by_seed(catalog: StarCatalog) -> None:
    spec = wide_spec(missing_fraction=0.1, spurious=5, hot_pixels=3, position_noise=0.2, seed=7)
    a = make_field(spec, catalog=catalog)
    b = make_field(spec, catalog=catalog)
    c = make_field(wide_spec(missing_fraction=0.1, spurious=5, seed=8), catalog=catalog)
    assert a.image is not None and b.image is not None and c.image is not None
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.sources.x, b.sources.x) and np.array_equal(
        a.sources.flux, b.sources.flux
    )
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.sources.x, c.sources.x)


@needs_index
def test_it_renders_background_noise_and_stars_at_their_pixels(catalog: StarCatalog) -> None:
    spec = wide_spec(sky=500.0, noise=8.0, fwhm=3.0)
    field = make_field(spec, catalog=catalog)
    image = field.image
    assert image is not None and image.dtype == np.float32 and image.shape == (600, 800)
    assert float(np.median(image)) == pytest.approx(500.0, abs=3.0)
    mad = float(np.median(np.abs(image - np.median(image))))
    assert 1.4826 * mad == pytest.approx(8.0, rel=0.1)
    src = field.sources
    for k in range(10):
        col, row = int(round(src.x[k])) - 1, int(round(src.y[k])) - 1
        assert image[row, col] > 500.0 + 20 * 8.0
        # The peak sits on the star, not one pixel off.
        patch = image[max(row - 3, 0) : row + 4, max(col - 3, 0) : col + 4]
        assert image[row, col] >= 0.8 * patch.max()
    # Flux is conserved: an isolated unsaturated star's light sums to its flux.
    sigma = 3.0 / (2 * math.sqrt(2 * math.log(2)))
    peaks = src.flux / (2 * math.pi * sigma**2)
    checked = 0
    for k in range(len(src)):
        others = np.hypot(src.x - src.x[k], src.y - src.y[k])
        col, row = int(round(src.x[k])) - 1, int(round(src.y[k])) - 1
        isolated = np.sort(others)[1] > 20 and 10 <= col < 790 and 10 <= row < 590
        if isolated and 20 * 8.0 < peaks[k] < 0.5 * SATURATION:
            box = image[row - 8 : row + 9, col - 8 : col + 9].astype(float) - 500.0
            assert float(box.sum()) == pytest.approx(src.flux[k], rel=0.05, abs=17 * 17 * 3.0)
            checked += 1
    assert checked >= 5


@needs_index
def test_it_puts_the_faintest_stars_near_the_noise(catalog: StarCatalog) -> None:
    spec = wide_spec(noise=10.0, fwhm=2.5)
    field = make_field(spec, catalog=catalog, render=False)
    sigma = 2.5 / (2 * math.sqrt(2 * math.log(2)))
    faintest_peak = field.sources.flux.min() / (2 * math.pi * sigma**2)
    assert faintest_peak == pytest.approx(50.0, rel=1e-6)


def test_it_applies_the_background_gradient_and_hot_pixels() -> None:
    spec = FieldSpec(
        ra=0.0, dec=0.0, pixscale=10.0, width=400, height=300, gradient=0.2, hot_pixels=25
    )
    field = make_field(spec, catalog=EMPTY)
    assert field.image is not None and len(field.sources) == 0
    left = float(np.median(field.image[:, :40]))
    right = float(np.median(field.image[:, -40:]))
    assert right - left == pytest.approx(0.2 * 1000.0 * 360 / 399, rel=0.05)
    assert int((field.image > 0.25 * SATURATION).sum()) == 25


def test_it_gives_random_fluxes_when_the_catalogue_has_no_magnitudes() -> None:
    rng = np.random.default_rng(3)
    cat = StarCatalog(
        ra=rng.uniform(-0.5, 0.5, 50) % 360, dec=rng.uniform(-0.4, 0.4, 50), mag=None, source="x"
    )
    spec = FieldSpec(ra=0.0, dec=0.0, pixscale=3.6, width=1000, height=800, seed=4)
    a = make_field(spec, catalog=cat, render=False)
    b = make_field(spec, catalog=cat, render=False)
    assert len(a.sources) > 30 and np.ptp(a.sources.flux) > 0
    assert np.array_equal(a.sources.flux, b.sources.flux)


def test_it_rejects_bad_specs() -> None:
    ok: dict[str, object] = dict(ra=0.0, dec=0.0, pixscale=1.0, width=100, height=100)
    cases: list[tuple[dict[str, object], str]] = [
        ({"dec": 91.0}, "not on the sky"),
        ({"pixscale": 0.0}, "pixscale"),
        ({"width": 0}, "image size"),
        ({"parity": 0}, "parity"),
        ({"fwhm": -1.0}, "fwhm"),
        ({"missing_fraction": 1.5}, "missing_fraction"),
        ({"spurious": -1}, "must not be negative"),
        ({"noise": -1.0}, "must not be negative"),
        ({"gradient": 2.0}, "gradient"),
        ({"pixscale": 3600.0, "width": 1000}, "wider than 120"),
        ({"trail": -1.0}, "trail, disk_radius and nebulosity"),
        ({"disk_radius": -5.0}, "trail, disk_radius and nebulosity"),
        ({"nebulosity": -0.1}, "trail, disk_radius and nebulosity"),
        ({"clouds": 1.5}, "clouds"),
        ({"horizon": 1.0}, "horizon"),
    ]
    for change, message in cases:
        with pytest.raises(InvalidParameterError, match=message):
            FieldSpec(**{**ok, **change})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def small_field() -> SyntheticField:
    rng = np.random.default_rng(11)
    cat = StarCatalog(
        ra=rng.uniform(-0.2, 0.2, 40) % 360,
        dec=rng.uniform(-0.15, 0.15, 40),
        mag=rng.uniform(6, 11, 40),
        source="random",
    )
    spec = FieldSpec(ra=0.0, dec=0.0, pixscale=4.0, width=300, height=200, rotation=40, seed=2)
    return make_field(spec, catalog=cat)


def test_it_writes_fits_in_file_row_order(small_field: SyntheticField, tmp_path: Path) -> None:
    assert small_field.image is not None
    path = write_fits(small_field, tmp_path / "f.fits")
    with fits.open(path) as hdul:
        data = np.asarray(hdul[0].data)
        header = hdul[0].header
    assert header["BITPIX"] == 16 and data.shape == (200, 300)
    assert np.array_equal(data, np.round(small_field.image))
    assert "CTYPE1" not in header
    path32 = write_fits(small_field, tmp_path / "g.fits", with_wcs=True, bitpix=-32)
    with fits.open(path32) as hdul:
        assert np.array_equal(hdul[0].data, small_field.image)
        wcs = WCS(hdul[0].header)
    pix = np.array([[1.0, 1.0], [300.0, 200.0], [77.5, 150.25]])
    assert np.allclose(wcs.all_pix2world(pix, 1), small_field.wcs.all_pix2world(pix, 1))
    path8 = write_fits(small_field, tmp_path / "h.fits", bitpix=8)
    assert fits.getdata(path8).dtype == np.uint8
    with pytest.raises(InvalidParameterError, match="bitpix"):
        write_fits(small_field, tmp_path / "x.fits", bitpix=32)


def test_it_writes_png_with_array_row_zero_on_top(
    small_field: SyntheticField, tmp_path: Path
) -> None:
    assert small_field.image is not None
    with Image.open(write_png(small_field, tmp_path / "f16.png", bits=16)) as im:
        back = np.asarray(im).astype(float)
    assert back.shape == (200, 300)
    assert np.array_equal(back, np.round(small_field.image))
    with Image.open(write_png(small_field, tmp_path / "f8.png")) as im:
        assert im.mode == "L"
        grey = np.asarray(im)
    brightest = np.unravel_index(np.argmax(small_field.image), small_field.image.shape)
    assert grey[brightest] == 255
    assert 0 < float(np.median(grey)) < 100  # sky sits low, faint stars keep grey levels
    with pytest.raises(InvalidParameterError, match="bits"):
        write_png(small_field, tmp_path / "x.png", bits=12)


def test_it_writes_an_xyls_star_list(small_field: SyntheticField, tmp_path: Path) -> None:
    path = write_xyls(small_field, tmp_path / "f.xyls")
    with fits.open(path) as hdul:
        table = hdul[1]
        assert table.header["IMAGEW"] == 300 and table.header["IMAGEH"] == 200
        assert table.columns.names == ["X", "Y", "FLUX"]
        assert np.array_equal(table.data["X"], small_field.sources.x)
        assert np.array_equal(table.data["Y"], small_field.sources.y)
        assert np.array_equal(table.data["FLUX"], small_field.sources.flux)


def test_it_refuses_to_write_an_image_it_did_not_render(tmp_path: Path) -> None:
    spec = FieldSpec(ra=0.0, dec=0.0, pixscale=1.0, width=10, height=10)
    field = make_field(spec, catalog=EMPTY, render=False)
    with pytest.raises(InvalidParameterError, match="render=False"):
        write_fits(field, tmp_path / "f.fits")
    with pytest.raises(InvalidParameterError, match="render=False"):
        write_png(field, tmp_path / "f.png")


def test_it_makes_varied_reproducible_benchmark_specs() -> None:
    specs = random_specs(200, seed=5, min_width_deg=1.0, max_width_deg=20.0, noise=15.0)
    assert specs == random_specs(200, seed=5, min_width_deg=1.0, max_width_deg=20.0, noise=15.0)
    assert specs != random_specs(200, seed=6, min_width_deg=1.0, max_width_deg=20.0, noise=15.0)
    widths = np.array([s.width_deg for s in specs])
    assert widths.min() >= 1.0 - 1e-9 and widths.max() <= 20.0 + 1e-9
    assert np.median(np.log(widths)) == pytest.approx(math.log(math.sqrt(20.0)), abs=0.3)
    assert {s.parity for s in specs} == {1, -1}
    assert {(s.width, s.height) for s in specs} == set(BENCH_SIZES)
    assert all(s.noise == 15.0 for s in specs)
    sin_dec = np.sin(np.radians([s.dec for s in specs]))
    assert abs(float(np.mean(sin_dec))) < 0.15 and float(np.mean(np.abs(sin_dec))) > 0.35
    assert len({s.seed for s in specs}) == 200
    with pytest.raises(InvalidParameterError, match="min_width_deg"):
        random_specs(3, seed=0, min_width_deg=2.0, max_width_deg=1.0)
    with pytest.raises(InvalidParameterError, match="chooses ra"):
        random_specs(3, seed=0, min_width_deg=1.0, max_width_deg=2.0, ra=3.0)


@pytest.mark.slow
@needs_binary("solve-field")
@needs_index
def test_it_makes_star_lists_astrometry_net_solves_to_the_truth(tmp_path: Path) -> None:
    spec = FieldSpec(
        ra=83.8, dec=-5.4, pixscale=1.2 * 3600 / 800, width=800, height=600,
        rotation=-60.0, parity=-1, position_noise=0.1, spurious=5, missing_fraction=0.1,
    )  # fmt: skip
    field = make_field(spec, render=False)  # the densest installed index
    xyls = write_xyls(field, tmp_path / "field.xyls")
    command = [
        "solve-field", "--no-plots", "--overwrite", "--crpix-center", "--no-remove-lines",
        "--dir", str(tmp_path), "--width", "800", "--height", "600",
        "--scale-units", "degwidth", "--scale-low", "1.0", "--scale-high", "1.4",
        "--cpulimit", "120", str(xyls),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    solution = tmp_path / "field.wcs"
    assert solution.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    header = fits.getheader(solution)
    header["NAXIS"] = 2  # a .wcs file has no image; tell astropy its axes are real
    solved = Calibration.from_wcs(WCS(header, relax=True), 800, 600)
    truth = field.truth
    x, y = field.wcs.all_world2pix([[solved.ra, solved.dec]], 1)[0]
    assert math.hypot(x - 400.5, y - 300.5) < 2.0
    assert solved.pixscale == pytest.approx(truth.pixscale, rel=0.01)
    assert solved.parity == truth.parity == -1.0
    assert wrap(solved.orientation - truth.orientation) == pytest.approx(0.0, abs=0.5)


def test_it_writes_a_jpeg_with_its_artefacts(small_field: SyntheticField, tmp_path: Path) -> None:
    from testfields.synthetic import write_jpeg

    good = write_jpeg(small_field, tmp_path / "good.jpg", quality=95)
    poor = write_jpeg(small_field, tmp_path / "poor.jpg", quality=20)
    with Image.open(good) as a, Image.open(poor) as b:
        assert (a.format, a.size, b.size) == ("JPEG", (300, 200), (300, 200))
        png = write_png(small_field, tmp_path / "field.png")
        with Image.open(png) as lossless:
            exact = np.asarray(lossless, dtype=float)
            assert (
                np.abs(np.asarray(a, dtype=float) - exact).mean()
                < np.abs(np.asarray(b, dtype=float) - exact).mean()
            )
    with pytest.raises(InvalidParameterError, match="quality"):
        write_jpeg(small_field, tmp_path / "bad.jpg", quality=0)


def test_it_hides_stars_behind_a_disk_and_trails_the_others(small_field: SyntheticField) -> None:
    spec = replace(small_field.spec, disk_radius=30.0, disk_xy=(150.0, 100.0), noise=0.0)
    disk = make_field(spec, catalog=small_field.catalog).image
    assert disk is not None
    assert disk[99, 149] == SATURATION and disk[99, 149 + 29] == SATURATION
    assert disk[99, 149 + 60] > small_field.spec.sky  # the glow around it
    trailed = make_field(
        replace(small_field.spec, trail=12.0, trail_angle=0.0), catalog=small_field.catalog
    )
    assert trailed.image is not None and small_field.image is not None
    # The same light, spread along rows: the brightest pixel is dimmer.
    assert trailed.image.sum() == pytest.approx(small_field.image.sum(), rel=0.01)
    assert trailed.image.max() < 0.5 * small_field.image.max()
