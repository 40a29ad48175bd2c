"""The pattern-hash fast path: database, solve, verification, refit, files."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.engine.results import SourceList, wcs_from_header
from skysolve.engine.solving.base import SolveConstraints
from skysolve.engine.solving.fastpath import (
    PatternHashSolver,
    TanSip,
    band_paths,
    binomial_tail,
    build_database,
    database,
    default_db_path,
    fit_tan_sip,
    fov_bands,
    load_database,
    read_info,
    verify_calibration,
)
from skysolve.errors import ConfigurationError, InvalidParameterError
from testfields.synthetic import FieldSpec, SyntheticField, make_field
from tests.gates import INDEX_PACKAGE, needs_binary, require_file

WIDTH, HEIGHT = 800, 600


@pytest.fixture(scope="module")
def db_20_30(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database for fields 20 to 30 degrees wide: built in about a second."""
    path = tmp_path_factory.mktemp("fastpath") / "test.t3db"
    build_database(path, min_fov=20.0, max_fov=30.0)
    return path


def field(width_deg: float = 25.0, **kw: float) -> SyntheticField:
    spec: dict[str, float] = dict(ra=183.0, dec=35.0, rotation=20.0, parity=1, seed=3)
    spec.update(kw)
    return make_field(
        FieldSpec(pixscale=width_deg * 3600.0 / WIDTH, width=WIDTH, height=HEIGHT, **spec),  # type: ignore[arg-type]
        render=False,
    )


def hint(f: SyntheticField, slack: float = 0.1) -> SolveConstraints:
    return SolveConstraints(
        scale_low=f.spec.pixscale * (1 - slack), scale_high=f.spec.pixscale * (1 + slack)
    )


def worst_pixel_error(header: fits.Header, truth: WCS) -> float:
    """Largest distance, over a grid across the image, between the two WCSs' pixels."""
    gx, gy = np.meshgrid(np.linspace(1, WIDTH, 11), np.linspace(1, HEIGHT, 9))
    ra, dec = truth.all_pix2world(gx.ravel(), gy.ravel(), 1)
    x, y = wcs_from_header(header, WIDTH, HEIGHT).all_world2pix(ra, dec, 1)
    return float(np.max(np.hypot(x - gx.ravel(), y - gy.ravel())))


def test_it_builds_a_database_and_reports_the_fov_range(db_20_30: Path) -> None:
    info = load_database(db_20_30).info
    assert (info.min_fov, round(info.max_fov, 3)) == (20.0, 30.0)
    assert info.num_patterns > 1000 and info.reference_stars > 100_000
    assert db_20_30.with_name(db_20_30.name + ".stars.npz").is_file()
    assert "FOV 20-30 deg" in info.describe()
    assert load_database(db_20_30) is load_database(db_20_30)  # loaded once


def test_it_finds_the_database_from_the_environment(tmp_path: Path) -> None:
    assert default_db_path({"SKYSOLVE_FASTPATH_DB": "/x/y.t3db"}) == Path("/x/y.t3db")
    # The shared location, whatever the data directory: XDG first, then a setting.
    env = {"SKYSOLVE_DATA_DIR": str(tmp_path / "d"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert default_db_path(env) == tmp_path / "xdg/skysolve/fastpath/default.t3db"
    env["SKYSOLVE_FASTPATH_DIR"] = str(tmp_path / "shared")
    assert default_db_path(env) == tmp_path / "shared/default.t3db"
    with pytest.raises(ConfigurationError, match="skysolve db build"):
        load_database(tmp_path / "missing.t3db")


def _touch_database(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"db")
    database.stars_path(path).write_bytes(b"stars")
    return path


def test_it_finds_the_shared_database_from_any_directory_and_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = _touch_database(tmp_path / "shared" / "default.t3db")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for data_dir in ("var", str(tmp_path / "second-installation")):
        env = {"SKYSOLVE_FASTPATH_DIR": "../shared", "SKYSOLVE_DATA_DIR": data_dir}
        assert default_db_path(env) == shared
        assert database.status(env) == {"fastpath": "ok", "path": str(shared)}


def test_it_still_finds_a_database_built_under_an_old_data_directory(tmp_path: Path) -> None:
    legacy = _touch_database(tmp_path / "data" / "fastpath" / "default.t3db")
    env = {
        "SKYSOLVE_FASTPATH_DIR": str(tmp_path / "shared"),
        "SKYSOLVE_DATA_DIR": str(legacy.parents[1]),
    }
    assert default_db_path(env) == legacy
    # Once the shared one exists it wins; SKYSOLVE_FASTPATH_DB beats both.
    shared = _touch_database(tmp_path / "shared" / "default.t3db")
    assert default_db_path(env) == shared
    assert default_db_path({**env, "SKYSOLVE_FASTPATH_DB": str(legacy)}) == legacy


def test_it_reports_a_missing_database_with_the_path_it_looked_for(tmp_path: Path) -> None:
    env = {"SKYSOLVE_FASTPATH_DIR": str(tmp_path / "none"), "SKYSOLVE_DATA_DIR": str(tmp_path)}
    report = database.status(env)
    assert report == {"fastpath": "missing", "path": str(tmp_path / "none" / "default.t3db")}
    _touch_database(tmp_path / "none" / "default.t3db").unlink()  # the star file alone
    assert database.status(env)["fastpath"] == "missing"


def test_it_leaves_the_field_to_astrometry_net_when_the_database_is_gone(tmp_path: Path) -> None:
    f = field()
    out = PatternHashSolver(tmp_path / "gone.t3db").solve(
        f.sources, SolveConstraints(), tmp_path, timeout=30
    )
    assert not out.solved
    assert "skysolve db build" in out.log


def test_it_rejects_a_bad_fov_range(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="min_fov"):
        build_database(tmp_path / "x.t3db", min_fov=30.0, max_fov=20.0)
    with pytest.raises(InvalidParameterError, match="catalogue"):
        build_database(tmp_path / "x.t3db", catalogue="hipparcos")


@pytest.mark.parametrize("parity", [1, -1])
@pytest.mark.parametrize("rotation", [0.0, 77.0, 200.0, 300.0])
def test_it_solves_fields_of_either_parity_at_any_rotation(
    db_20_30: Path, tmp_path: Path, parity: int, rotation: float
) -> None:
    f = field(22.0 + rotation / 100.0, rotation=rotation, parity=parity)
    out = PatternHashSolver(db_20_30).solve(f.sources, hint(f), tmp_path, timeout=30)
    assert out.solved, out.log
    assert (out.solver, out.index) == ("pattern-hash", "test.t3db")
    assert out.wcs_header is not None
    assert out.wcs_header["CTYPE1"] == "RA---TAN-SIP"
    assert (out.wcs_header["CRPIX1"], out.wcs_header["CRPIX2"]) == (400.5, 300.5)
    assert worst_pixel_error(out.wcs_header, f.wcs) < 0.2


@pytest.mark.parametrize("width_deg", [21.0, 28.0])
def test_it_solves_without_a_scale_hint(db_20_30: Path, tmp_path: Path, width_deg: float) -> None:
    f = field(width_deg, rotation=133.0, parity=-1, ra=20.0, dec=-60.0)
    out = PatternHashSolver(db_20_30).solve(f.sources, SolveConstraints(), tmp_path, timeout=30)
    assert out.solved, out.log
    assert out.wcs_header is not None
    assert worst_pixel_error(out.wcs_header, f.wcs) < 0.2
    assert "FOV guess" in out.log


@pytest.mark.slow
@pytest.mark.parametrize("width_deg", [5.0, 10.0, 45.0, 60.0])
def test_it_solves_fields_from_5_to_60_degrees(
    tmp_path_factory: pytest.TempPathFactory, width_deg: float
) -> None:
    # A database just around each width keeps the build short.
    path = tmp_path_factory.mktemp("fov") / f"fov{width_deg:g}.t3db"
    build_database(path, min_fov=width_deg * 0.9, max_fov=width_deg * 1.1)
    f = field(width_deg, rotation=250.0, parity=-1, ra=300.0, dec=10.0)
    out = PatternHashSolver(path).solve(f.sources, hint(f), path.parent, timeout=30)
    assert out.solved, out.log
    assert out.wcs_header is not None
    assert worst_pixel_error(out.wcs_header, f.wcs) < 0.2


def test_it_refuses_a_scrambled_source_list(db_20_30: Path, tmp_path: Path) -> None:
    f = field()
    rng = np.random.default_rng(5)
    scrambled = SourceList(
        x=rng.uniform(0.5, WIDTH + 0.5, len(f.sources)),
        y=rng.uniform(0.5, HEIGHT + 0.5, len(f.sources)),
        flux=f.sources.flux,
        width=WIDTH,
        height=HEIGHT,
    )
    out = PatternHashSolver(db_20_30).solve(scrambled, hint(f), tmp_path, timeout=30)
    assert not out.solved
    assert out.wcs_header is None
    assert "not solved" in out.log


def test_it_verifies_against_the_catalogue_independently(db_20_30: Path) -> None:
    f = field()
    stars = load_database(db_20_30).stars
    truth = TanSip.from_wcs(f.wcs)
    good = verify_calibration(f.sources, truth, stars)
    assert good.accepted and good.matched > 80 and good.false_positive < 1e-30
    # The right sky, the wrong stars: a wrong match must not pass.
    rng = np.random.default_rng(1)
    shuffled = f.sources.take(rng.permutation(len(f.sources)))
    scrambled = SourceList(
        x=shuffled.x, y=shuffled.y[::-1], flux=f.sources.flux, width=WIDTH, height=HEIGHT
    )
    bad = verify_calibration(scrambled, truth, stars)
    assert not bad.accepted
    # A calibration rotated by a few degrees is refused as well.
    turned = TanSip(
        crval=truth.crval, crpix=truth.crpix, cd=truth.cd @ np.array([[0.995, -0.1], [0.1, 0.995]])
    )
    assert not verify_calibration(f.sources, turned, stars).accepted


@pytest.mark.parametrize("parity", [1, -1])
def test_it_honours_the_parity_constraint(db_20_30: Path, tmp_path: Path, parity: int) -> None:
    """nova's parity 1 means det(CD) > 0 (calibration parity +1), 0 means det(CD) < 0."""
    f = field(parity=parity)
    solver = PatternHashSolver(db_20_30)
    matching = 1 if parity == 1 else 0
    c = hint(f)
    ok = solver.solve(
        f.sources,
        SolveConstraints(c.scale_low, c.scale_high, parity=matching),
        tmp_path / "a",
        timeout=30,
    )
    assert ok.solved
    wrong = solver.solve(
        f.sources,
        SolveConstraints(c.scale_low, c.scale_high, parity=1 - matching),
        tmp_path / "b",
        timeout=30,
    )
    assert not wrong.solved
    assert "parity" in wrong.log


def test_it_gives_up_at_once_outside_the_database_range(db_20_30: Path, tmp_path: Path) -> None:
    f = field()
    c = SolveConstraints(scale_low=5.0, scale_high=6.0)  # about 1.2 degrees wide
    out = PatternHashSolver(db_20_30).solve(f.sources, c, tmp_path, timeout=30)
    assert not out.solved
    assert "outside the database's FOV range 20-30 deg" in out.log


def test_it_writes_corr_and_rdls_like_astrometry_net(db_20_30: Path, tmp_path: Path) -> None:
    f = field(rotation=10.0)
    out = PatternHashSolver(db_20_30).solve(f.sources, hint(f), tmp_path, timeout=30)
    assert out.solved
    with fits.open(out.files["corr"]) as hdul:
        corr = hdul[1].data
        assert corr.columns.names[:11] == [
            "field_x",
            "field_y",
            "field_ra",
            "field_dec",
            "index_x",
            "index_y",
            "index_ra",
            "index_dec",
            "index_id",
            "field_id",
            "match_weight",
        ]
        assert len(corr) > 50
        assert (
            np.max(np.hypot(corr["field_x"] - corr["index_x"], corr["field_y"] - corr["index_y"]))
            < 1.0
        )
        ids = corr["field_id"]
        np.testing.assert_allclose(corr["field_x"], f.sources.x[ids])
    with fits.open(out.files["rdls"]) as hdul:
        rdls = hdul[1].data
        assert rdls.columns.names == ["RA", "DEC"] and len(rdls) > 50
        x, y = f.wcs.all_world2pix(rdls["RA"], rdls["DEC"], 1)
        assert np.all((x > 0) & (x < WIDTH + 1) & (y > 0) & (y < HEIGHT + 1))


def test_it_fits_sip_distortion_by_least_squares() -> None:
    f = field(rotation=40.0)
    ra, dec = f.catalog.ra[:300], f.catalog.dec[:300]  # type: ignore[union-attr]
    x, y = f.wcs.all_world2pix(ra, dec, 1)
    # Barrel distortion of about 2 pixels in the corners.
    u, v = x - 400.5, y - 300.5
    k = 2.0 / 500.0**3
    xd, yd = x - k * u * (u * u + v * v), y - k * v * (u * u + v * v)
    model = fit_tan_sip(xd, yd, ra, dec, width=WIDTH, height=HEIGHT, order=3, crval=(180.0, 30.0))
    px, py = model.world2pix(ra, dec)
    assert np.max(np.hypot(px - xd, py - yd)) < 0.01
    assert model.crpix == (400.5, 300.5)
    header = model.to_header(WIDTH, HEIGHT)
    wx, wy = wcs_from_header(header, WIDTH, HEIGHT).all_world2pix(ra, dec, 1)
    assert np.max(np.hypot(wx - xd, wy - yd)) < 0.01
    linear = fit_tan_sip(x, y, ra, dec, width=WIDTH, height=HEIGHT, order=0, crval=(180.0, 30.0))
    assert linear.to_header(WIDTH, HEIGHT)["CTYPE1"] == "RA---TAN"


@needs_binary("astrometry-engine")
def test_it_agrees_with_astrometry_net(db_20_30: Path, tmp_path: Path) -> None:
    from skysolve.engine.solving.astrometry import AstrometryNetSolver

    f = field(22.0, rotation=195.0, parity=1, ra=50.0, dec=50.0)
    fast = PatternHashSolver(db_20_30).solve(f.sources, hint(f), tmp_path / "fast", timeout=30)
    slow = AstrometryNetSolver().solve(f.sources, hint(f), tmp_path / "anet", timeout=60)
    assert fast.solved and slow.solved
    assert fast.wcs_header is not None and slow.wcs_header is not None
    anet = wcs_from_header(slow.wcs_header, WIDTH, HEIGHT)
    # Across the whole image, not only where the stars are.
    assert worst_pixel_error(fast.wcs_header, anet) < 0.3
    # And at every star astrometry.net matched.
    with fits.open(slow.files["corr"]) as hdul:
        corr = hdul[1].data
        ra, dec = anet.all_pix2world(corr["field_x"], corr["field_y"], 1)
    x, y = wcs_from_header(fast.wcs_header, WIDTH, HEIGHT).all_world2pix(ra, dec, 1)
    assert np.max(np.hypot(x - corr["field_x"], y - corr["field_y"])) < 0.3


def test_it_runs_in_front_of_astrometry_net_in_the_pipeline(
    db_20_30: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skysolve.engine.params import SolveParameters
    from skysolve.engine.pipeline import EngineConfig, solve
    from skysolve.engine.solving.astrometry import AstrometryNetSolver
    from skysolve.engine.solving.search import solver_chain

    config = EngineConfig.from_env({"SKYSOLVE_FASTPATH_DB": str(db_20_30)})
    assert config.fastpath_db == db_20_30
    assert [type(s) for s in solver_chain(config)] == [PatternHashSolver, AstrometryNetSolver]
    nowhere = {"SKYSOLVE_DATA_DIR": str(tmp_path), "SKYSOLVE_FASTPATH_DIR": str(tmp_path / "no")}
    assert EngineConfig.from_env(nowhere).fastpath_db is None
    assert [type(s) for s in solver_chain(EngineConfig())] == [AstrometryNetSolver]

    f = field(23.0, rotation=140.0, parity=-1)
    params = SolveParameters(scale_units="degwidth", scale_lower=20.0, scale_upper=26.0)
    result = solve(f.sources, params, tmp_path / "out", config=config)
    assert result.solved and result.solver == "pattern-hash"
    assert result.index == "test.t3db"
    assert result.quality is not None and result.quality["reference_epoch"] == 2016.0
    assert result.calibration is not None
    assert abs(result.calibration.pixscale - f.truth.pixscale) < 0.01
    assert abs(result.calibration.orientation - f.truth.orientation) < 0.01
    assert result.calibration.parity == -1.0
    for name in ("wcs", "corr", "rdls", "kml"):
        assert result.files[name].is_file(), name
    assert "pattern-hash" in result.log and "verification" in result.log

    # Without a config (the queue worker's call) the environment decides.
    monkeypatch.setenv("SKYSOLVE_FASTPATH_DB", str(db_20_30))
    again = solve(f.sources, params, tmp_path / "env")
    assert again.solver == "pattern-hash"


def test_it_builds_a_database_from_tycho2_index_stars(tmp_path: Path) -> None:
    index = Path("/usr/share/astrometry/index-tycho2-17.littleendian.fits")
    require_file(index, INDEX_PACKAGE)
    path = tmp_path / "tycho2.t3db"
    info = build_database(path, min_fov=40.0, max_fov=60.0, catalogue="tycho2", index_file=index)
    assert info.catalogue.startswith("tycho2:")
    f = field(50.0, rotation=310.0, parity=1, ra=120.0, dec=-20.0)
    out = PatternHashSolver(path).solve(f.sources, hint(f), tmp_path, timeout=30)
    assert out.solved, out.log
    assert out.wcs_header is not None
    # Its WCS is fitted to the database's Tycho-2 stars, at J2000.
    assert out.catalogue is not None and out.catalogue.startswith("tycho2:")
    assert out.epoch == 2000.0
    assert worst_pixel_error(out.wcs_header, f.wcs) < 0.2


def test_it_describes_a_database_without_loading_it(db_20_30: Path) -> None:
    info = read_info(db_20_30)
    assert info is not None
    assert info == load_database(db_20_30).info
    assert band_paths(db_20_30) == []  # 20-30 degrees is too narrow a range for bands


def test_it_plans_bands_that_cover_hints_away_from_their_edges() -> None:
    assert fov_bands(4.0, 70.0) == [(9.0, 30.0), (20.0, 70.0)]
    assert fov_bands(20.0, 30.0) == []
    # Every +-10 % hint of 11-59 degrees (searched as +-12.2 %) falls 5 % inside a band.
    for width in np.linspace(10.8, 59.0, 200):
        lo, hi = 0.878 * width, 1.122 * width
        assert any(b_lo * 1.05 <= lo and hi * 1.05 <= b_hi for b_lo, b_hi in fov_bands(4.0, 70.0))


@pytest.fixture(scope="module")
def db_with_band(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bands") / "banded.t3db"
    build_database(path, min_fov=20.0, max_fov=32.0, bands=[(22.0, 32.0)])
    return path


def test_it_loads_only_the_band_a_hint_needs_in_a_new_process(
    db_with_band: Path, tmp_path: Path
) -> None:
    band = band_paths(db_with_band)
    assert [b.name for b in band] == ["banded.fov22-32.t3db"]
    band_info = read_info(band[0])
    assert band_info is not None
    assert (band_info.min_fov, band_info.max_fov) == pytest.approx((22.0, 32.0))
    f = field(27.0, rotation=40.0)
    database._cache.clear()  # as in a new process
    out = PatternHashSolver(db_with_band).solve(f.sources, hint(f, 0.05), tmp_path, timeout=30)
    assert out.solved, out.log
    assert out.index == "banded.fov22-32.t3db"
    assert out.wcs_header is not None and worst_pixel_error(out.wcs_header, f.wcs) < 0.2
    assert not database.is_loaded(db_with_band)
    # A hint the band does not cover, or no hint, uses the whole database ...
    g = field(21.0)
    out = PatternHashSolver(db_with_band).solve(g.sources, hint(g), tmp_path, timeout=30)
    assert out.solved and out.index == "banded.t3db"
    # ... which a process that has it loaded (a service worker) keeps using.
    out = PatternHashSolver(db_with_band).solve(f.sources, hint(f, 0.05), tmp_path, timeout=30)
    assert out.solved and out.index == "banded.t3db"


def test_it_loads_nothing_for_a_scale_outside_the_database(
    db_with_band: Path, tmp_path: Path
) -> None:
    database._cache.clear()
    f = field(2.0)
    out = PatternHashSolver(db_with_band).solve(f.sources, hint(f), tmp_path, timeout=30)
    assert not out.solved and "outside the database's FOV range 20-32" in out.log
    assert database._cache == {}


def test_it_computes_the_binomial_tail_of_chance_matches() -> None:
    from scipy.special import betainc

    for k, n, p in [(1, 10, 0.1), (5, 96, 0.02), (40, 96, 0.05), (90, 96, 0.3), (3, 3, 0.5)]:
        assert binomial_tail(k, n, p) == pytest.approx(float(betainc(k, n - k + 1, p)), rel=1e-9)
    assert binomial_tail(0, 10, 0.3) == 1.0
    assert binomial_tail(11, 10, 0.3) == 0.0
    assert binomial_tail(4, 10, 0.0) == 0.0


def test_it_extracts_only_the_brightest_stars_for_the_fast_path_of_the_pipeline(
    db_20_30: Path, tmp_path: Path
) -> None:
    from skysolve.engine.params import SolveParameters
    from skysolve.engine.pipeline import FIT_SOURCES, EngineConfig, solve
    from testfields.synthetic import write_fits

    spec = FieldSpec(
        ra=200.0, dec=40.0, pixscale=25.0 * 3600.0 / WIDTH, width=WIDTH, height=HEIGHT,
        rotation=60.0, seed=5, fwhm=2.5, noise=8.0, sky=500.0, gradient=0.2, hot_pixels=20,
    )  # fmt: skip
    f = make_field(spec)
    image = write_fits(f, tmp_path / "wide.fits")
    config = EngineConfig(fastpath_db=db_20_30, make_pictures=False, write_files=False)
    params = SolveParameters(scale_units="degwidth", scale_lower=22.0, scale_upper=28.0)
    result = solve(image, params, tmp_path / "fast", config=config)
    assert result.solved and result.solver == "pattern-hash"
    # The solver saw only the brightest (and the final fit, when they are enough).
    assert "extract_bright" in result.timings
    assert ("extract" in result.timings) == (result.n_sources < FIT_SOURCES)
    assert 100 <= result.n_sources <= PatternHashSolver.bright_sources  # type: ignore[operator]
    assert result.quality is not None and result.quality["matched_stars"] >= 100
    assert result.calibration is not None
    assert result.calibration.pixscale == pytest.approx(f.truth.pixscale, rel=1e-3)
    # Nobody asked for files: none were written.
    assert result.files == {} and list((tmp_path / "fast").iterdir()) == []

    # A field the database does not cover: astrometry.net gets the full extraction.
    narrow = make_field(replace(spec, pixscale=2.5 * 3600.0 / WIDTH, dec=20.0))
    image = write_fits(narrow, tmp_path / "narrow.fits")
    params = SolveParameters(scale_units="degwidth", scale_lower=2.2, scale_upper=2.8, timeout=60)
    result = solve(image, params, tmp_path / "slow", config=config)
    assert result.solved and result.solver == "astrometry.net"
    assert "extract" in result.timings and result.n_sources >= 0.9 * len(narrow.sources)


def test_it_describes_its_answer_with_its_own_model_as_astropy_would_with_the_header(
    db_20_30: Path, tmp_path: Path
) -> None:
    from skysolve.engine.products.annotations import objects_in_field
    from skysolve.engine.results import Calibration, DeferredHeader, HeaderField

    f = field(24.0, rotation=65.0, parity=-1, ra=80.0, dec=-5.0)
    out = PatternHashSolver(db_20_30).solve(f.sources, hint(f), tmp_path, timeout=30)
    assert out.solved, out.log
    model = out.wcs_model
    assert isinstance(model, TanSip) and model.order == 2
    # The header is built when first read, from the same model.
    assert isinstance(HeaderField.raw(out, "wcs_header"), DeferredHeader)
    header = out.wcs_header
    assert isinstance(header, fits.Header) and header["CTYPE1"] == "RA---TAN-SIP"
    assert HeaderField.raw(out, "wcs_header") is header  # built once
    astropy_wcs = wcs_from_header(header, WIDTH, HEIGHT)
    ours = Calibration.from_wcs(model, WIDTH, HEIGHT)
    theirs = Calibration.from_wcs(astropy_wcs, WIDTH, HEIGHT)
    for name in ("ra", "dec", "pixscale", "orientation", "parity", "radius"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=1e-9, abs=1e-9)
    gx, gy = np.meshgrid(np.linspace(-100, WIDTH + 100, 13), np.linspace(-100, HEIGHT + 100, 9))
    pix = np.column_stack([gx.ravel(), gy.ravel()])
    for origin in (0, 1):
        sky = astropy_wcs.all_pix2world(pix, origin)
        assert np.allclose(model.all_pix2world(pix, origin), sky, rtol=0, atol=1e-9)
        back = model.all_world2pix(sky, origin, quiet=True)
        assert np.max(np.hypot(*(back - pix).T)) < 0.01
    names, marks = objects_in_field(model, WIDTH, HEIGHT)
    names_astropy, marks_astropy = objects_in_field(astropy_wcs, WIDTH, HEIGHT)
    assert names == names_astropy and len(names) > 3
    assert [(a.type, a.names) for a in marks] == [(a.type, a.names) for a in marks_astropy]
    for a, b in zip(marks, marks_astropy, strict=True):
        assert (a.pixelx, a.pixely) == pytest.approx((b.pixelx, b.pixely), abs=0.01)


def test_it_starts_loading_the_database_a_hint_needs_before_the_solve(
    db_with_band: Path, tmp_path: Path
) -> None:
    import time

    band = band_paths(db_with_band)[0]
    f = field(27.0, rotation=40.0)
    database._cache.clear()  # as in a new process
    solver = PatternHashSolver(db_with_band)
    assert solver.prefetch(hint(f, 0.05), WIDTH, HEIGHT)
    deadline = time.monotonic() + 60
    while not database.is_loaded(band) and time.monotonic() < deadline:
        time.sleep(0.01)
    # The band the solve will search, not the whole database.
    assert database.is_loaded(band) and not database.is_loaded(db_with_band)
    assert not solver.prefetch(hint(f, 0.05), WIDTH, HEIGHT)  # loaded already
    out = solver.solve(f.sources, hint(f, 0.05), tmp_path, timeout=30)
    assert out.solved and out.index == band.name
    # Nothing to load for a scale the database does not cover.
    database._cache.clear()
    assert not solver.prefetch(hint(field(2.0)), WIDTH, HEIGHT)
    assert database._cache == {}


def test_a_fast_path_answer_without_files_imports_no_astropy_nor_scipy_ndimage(
    db_20_30: Path, tmp_path: Path
) -> None:
    """`skysolve solve` without --out: astropy's quarter of a second is not paid,
    nor scipy.ndimage's (the all-sky check that every image gets needs numpy alone)."""
    import json
    import os
    import subprocess
    import sys

    from testfields.synthetic import write_png

    spec = FieldSpec(
        ra=200.0, dec=40.0, pixscale=25.0 * 3600.0 / WIDTH, width=WIDTH, height=HEIGHT,
        rotation=60.0, seed=5, fwhm=2.5, noise=8.0, sky=500.0,
    )  # fmt: skip
    image = write_png(make_field(spec), tmp_path / "wide.png")
    code = (
        "import json, sys\n"
        "from skysolve.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'astropy')\n"
        "ndimage = sorted(m for m in sys.modules if m.startswith('scipy.ndimage'))\n"
        "print(json.dumps({'status': status, 'astropy': loaded, 'ndimage': ndimage}))\n"
    )
    args = ["solve", str(image), "--json", "--no-pictures", "--scale-units", "degwidth"]
    args += ["--scale-low", "22", "--scale-high", "28"]
    env = {**os.environ, "SKYSOLVE_FASTPATH_DB": str(db_20_30)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *printed, last = done.stdout.rstrip("\n").split("\n")
    result, report = json.loads("\n".join(printed)), json.loads(last)
    assert result["solved"] and result["solver"] == "pattern-hash"
    assert result["calibration"]["pixscale"] == pytest.approx(spec.pixscale, rel=1e-3)
    assert result["objects_in_field"]
    assert report == {"status": 0, "astropy": [], "ndimage": []}


def test_it_searches_a_band_that_covers_the_middle_of_a_hint_before_the_whole_database(
    db_with_band: Path, tmp_path: Path
) -> None:
    band = band_paths(db_with_band)[0]  # 22-32 degrees, inside the whole 20-32

    def around(width_deg: float) -> SolveConstraints:
        """A +-10 % hint around ``width_deg``: reaches below the band's 23.1-degree margin."""
        scale = width_deg * 3600.0 / WIDTH
        return SolveConstraints(scale_low=scale * 0.9, scale_high=scale * 1.1)

    solver = PatternHashSolver(db_with_band)
    database._cache.clear()  # as in a new process
    plan = solver._search_plan([(24.0, 2.5, None)])
    assert [p for p, _ in plan] == [band, db_with_band]
    (fov, error, _), *_ = plan[0][1]
    assert error is not None
    assert (fov - error, fov + error) == pytest.approx((22.0 * 1.05, 26.5))
    # A field in the middle of the hint: the band alone finds it.
    f = field(24.0, rotation=40.0)
    out = solver.solve(f.sources, around(24.0), tmp_path, timeout=30)
    assert out.solved and out.index == band.name, out.log
    assert not database.is_loaded(db_with_band)
    assert out.wcs_header is not None and worst_pixel_error(out.wcs_header, f.wcs) < 0.2
    # A field at the hint's lower end, below the band's margin: the whole
    # database finds it after the band, as it did before bands were tried.
    database._cache.clear()
    g = field(21.0, rotation=75.0, ra=40.0, dec=20.0)
    out = solver.solve(g.sources, around(23.2), tmp_path, timeout=30)
    assert out.solved and out.index == db_with_band.name, out.log
    assert "the whole database next" in out.log
    assert out.wcs_header is not None and worst_pixel_error(out.wcs_header, g.wcs) < 0.2


def test_it_knows_which_fields_are_too_narrow_for_its_blind_ladder(
    db_20_30: Path, tmp_path: Path
) -> None:
    from skysolve.engine.solving.fastpath.matching import BLIND_REACH

    solver = PatternHashSolver(db_20_30)
    assert solver.too_narrow(BLIND_REACH * 20.0 - 0.1)
    assert not solver.too_narrow(BLIND_REACH * 20.0 + 0.1)
    # Without a description nothing is known: the fast path is tried as before.
    assert not PatternHashSolver(tmp_path / "missing.t3db").too_narrow(0.1)
    # A blind miss says the field is likely narrower than the database's narrowest.
    assert solver.narrowest_blind_fov() == pytest.approx(20.0)
    assert PatternHashSolver(tmp_path / "missing.t3db").narrowest_blind_fov() is None


def _with_optics(path: Path, focal_mm: float, pixel_um: float) -> Path:
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["FOCALLEN"] = focal_mm
        hdul[0].header["XPIXSZ"] = pixel_um
    return path


@needs_binary("astrometry-engine")
def test_a_blind_field_its_file_says_is_too_narrow_goes_straight_to_astrometry_net(
    db_20_30: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skysolve.engine.params import SolveParameters
    from skysolve.engine.pipeline import EngineConfig, solve
    from testfields.synthetic import write_fits

    calls: list[str] = []
    original_solve, original_prefetch = PatternHashSolver.solve, PatternHashSolver.prefetch

    def spy_solve(self: PatternHashSolver, *args: Any, **kwargs: Any) -> Any:
        calls.append("solve")
        return original_solve(self, *args, **kwargs)

    def spy_prefetch(self: PatternHashSolver, *args: Any, **kwargs: Any) -> Any:
        calls.append("prefetch")
        return original_prefetch(self, *args, **kwargs)

    monkeypatch.setattr(PatternHashSolver, "solve", spy_solve)
    monkeypatch.setattr(PatternHashSolver, "prefetch", spy_prefetch)
    config = EngineConfig(fastpath_db=db_20_30, make_pictures=False, write_files=False)
    blind = SolveParameters(use_hints=False, timeout=60)
    spec = FieldSpec(
        ra=200.0, dec=20.0, pixscale=2.5 * 3600.0 / WIDTH, width=WIDTH, height=HEIGHT,
        rotation=60.0, seed=5, fwhm=2.5, noise=8.0, sky=500.0, gradient=0.2, hot_pixels=20,
    )  # fmt: skip
    narrow = make_field(spec)
    # 9 um pixels behind 165 mm: 11.25 arcsec per pixel, the field's own 2.5 degrees.
    image = _with_optics(write_fits(narrow, tmp_path / "narrow.fits"), 165.0, 9.0)
    result = solve(image, blind, tmp_path / "narrow", config=config)
    assert result.solved and result.solver == "astrometry.net"
    assert result.calibration is not None
    assert result.calibration.pixscale == pytest.approx(narrow.truth.pixscale, rel=0.01)
    # Neither the database's load nor the ladder came before astrometry.net...
    assert calls == [] and "too narrow for pattern-hash" in result.log
    assert "extract_bright" not in result.timings
    # ...and the solve stayed blind: the file's scale chose the solvers only.
    assert result.hints == {} and "--no-hints" in result.command
    # The engine's work directories are gone with the solve.
    assert list((tmp_path / "narrow").iterdir()) == []

    # The same field without optics keywords: the fast path is tried first.
    plain = write_fits(narrow, tmp_path / "plain.fits")
    result = solve(plain, blind, tmp_path / "plain", config=config)
    assert result.solved and result.solver == "astrometry.net" and "solve" in calls

    # A field the database covers, its optics in the header: the fast path answers blind.
    calls.clear()
    wide = make_field(replace(spec, pixscale=25.0 * 3600.0 / WIDTH))
    image = _with_optics(write_fits(wide, tmp_path / "wide.fits"), 16.5, 9.0)
    result = solve(image, blind, tmp_path / "wide", config=config)
    assert result.solved and result.solver == "pattern-hash" and "solve" in calls
