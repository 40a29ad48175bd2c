"""The all-sky lens model, its fit, its FITS WCS and the blind search on synthetic frames."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.wcs import WCS

from skysolve.engine.allsky.blind import AllskySolution, MatchedStars, bright_stars, solve_allsky
from skysolve.engine.allsky.fit import fit_lens
from skysolve.engine.allsky.model import (
    PROJECTIONS,
    LensModel,
    radec_to_xyz,
    rotation_angles,
    sky_rotation,
)
from skysolve.engine.allsky.profiles import camera_key, load_profile, save_profile
from skysolve.engine.allsky.sky import looks_like_allsky
from skysolve.engine.allsky.solver import (
    lens_document,
    site_below,
    zenith_radec,
)
from skysolve.engine.allsky.wcs import LensWCS, to_fits_header
from skysolve.engine.solving.fastpath.database import default_db_path
from skysolve.errors import BadInputError
from testfields.allsky import render_allsky, sky_points, small_lens


def _model(projection: str, **changes: float) -> LensModel:
    return small_lens(projection, **changes)


@pytest.mark.parametrize("projection", list(PROJECTIONS))
def test_it_maps_pixels_to_sky_and_back(projection: str) -> None:
    model = _model(projection, k1=0.01, k2=-0.002, a=0.003, b=-0.002, parity=-1)
    ra, dec = sky_points(model, 85.0)
    x, y = model.world_to_pixel(ra, dec)
    ra2, dec2 = model.pixel_to_world(x, y)
    sep = np.hypot((ra2 - ra + 180) % 360 - 180, 0) * np.cos(np.radians(dec))
    assert np.nanmax(sep) < 1e-7 and np.nanmax(np.abs(dec2 - dec)) < 1e-7
    # The axis lands on its pixel.
    cx, cy = model.world_to_pixel(np.array([model.ra]), np.array([model.dec]))
    assert cx[0] == pytest.approx(model.center_x) and cy[0] == pytest.approx(model.center_y)


@pytest.mark.parametrize("projection", list(PROJECTIONS))
def test_camera_vectors_map_to_the_same_pixels_as_sky_positions(projection: str) -> None:
    # The fit turns the stars' vectors itself and maps them with camera_to_pixel.
    model = _model(projection, k1=0.01, k2=-0.002, a=0.003, b=-0.002, p1=0.004, p2=-0.003)
    ra, dec = sky_points(model, 95.0)
    x, y = model.world_to_pixel(ra, dec)
    cx, cy = model.camera_to_pixel(radec_to_xyz(ra, dec) @ model.rotation.T)
    assert np.array_equal(np.isnan(x), np.isnan(cx))
    assert np.nanmax(np.abs(cx - x)) < 1e-9 and np.nanmax(np.abs(cy - y)) < 1e-9


@pytest.mark.parametrize(
    ("ra", "dec", "roll"), [(0.0, 0.0, 0.0), (83.0, 12.0, 35.0), (291.5, -71.2, -160.0)]
)
def test_a_pointing_is_an_orthonormal_rotation_and_reads_back(
    ra: float, dec: float, roll: float
) -> None:
    rotation = sky_rotation(ra, dec, roll)
    assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-14)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-14)
    got = rotation_angles(rotation)
    assert got == pytest.approx((ra, dec, roll), abs=1e-9)


def test_it_round_trips_through_json() -> None:
    model = _model("equisolid", k1=0.02, a=0.001)
    assert LensModel.from_dict(model.to_dict()) == model


def test_it_refuses_bad_models() -> None:
    with pytest.raises(BadInputError, match="unknown projection"):
        _model("fisheye")
    with pytest.raises(BadInputError, match="focal length"):
        _model("equidistant", focal=-1.0)
    with pytest.raises(BadInputError, match="not a lens model"):
        LensModel.from_dict({"projection": "equidistant"})


def test_it_fits_a_known_model_from_a_rough_start() -> None:
    truth = _model("equisolid", k1=0.015, a=0.004, b=-0.003)
    ra, dec = sky_points(truth, 88.0)
    x, y = truth.world_to_pixel(ra, dec)
    noise = np.random.default_rng(1).normal(0.0, 0.2, size=(2, len(x)))
    start = _model("equisolid", center_x=245.0, center_y=238.0, ra=86.0, dec=10.0, roll=30.0)
    free = ("rotation", "center", "focal", "k1", "shear")
    fit = fit_lens(x + noise[0], y + noise[1], ra, dec, start, free=free)
    got = fit.model
    assert fit.rms < 0.35
    assert got.center_x == pytest.approx(truth.center_x, abs=0.1)
    assert got.center_y == pytest.approx(truth.center_y, abs=0.1)
    assert got.focal == pytest.approx(truth.focal, rel=1e-3)
    assert got.k1 == pytest.approx(truth.k1, abs=1e-3)
    assert got.a == pytest.approx(truth.a, abs=5e-4) and got.b == pytest.approx(truth.b, abs=5e-4)
    assert got.ra == pytest.approx(truth.ra, abs=0.02) and got.dec == pytest.approx(12.0, abs=0.02)


def test_it_needs_more_stars_than_unknowns() -> None:
    model = _model("equidistant")
    with pytest.raises(BadInputError, match="cannot fix"):
        fit_lens(np.ones(2), np.ones(2), np.ones(2), np.ones(2), model)
    with pytest.raises(BadInputError, match="unknown lens parameters"):
        fit_lens(np.ones(9), np.ones(9), np.ones(9), np.ones(9), model, free=("tilt",))


@pytest.mark.parametrize("decentring", [(0.0, 0.0), (0.004, -0.003)])
@pytest.mark.parametrize("projection", list(PROJECTIONS))
def test_its_fits_wcs_reproduces_the_model_inside_70_degrees(
    projection: str, decentring: tuple[float, float]
) -> None:
    p1, p2 = decentring
    model = _model(projection, k1=0.01, k2=-0.002, a=0.002, b=-0.001, p1=p1, p2=p2, parity=-1)
    header, error = to_fits_header(model, 480, 480)
    assert error < 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(header)
    ra, dec = sky_points(model, 69.0)
    x, y = model.world_to_pixel(ra, dec)
    inside = (x > 0) & (x < 479) & (y > 0) & (y < 479)
    sx, sy = wcs.all_world2pix(ra[inside], dec[inside], 0)
    assert np.max(np.hypot(sx - x[inside], sy - y[inside])) < 0.05
    assert LensWCS(model, 480, 480).all_world2pix(ra[:3], dec[:3], 1)[0] == pytest.approx(x[:3] + 1)


def test_the_zenith_and_the_site_below_the_axis_agree() -> None:
    ra, dec = zenith_radec("2018-08-17T03:38:28", 28.76, -17.89)
    lat, lon = site_below("2018-08-17T03:38:28", ra, dec)
    assert lat == pytest.approx(28.76, abs=1e-6) and lon == pytest.approx(-17.89, abs=1e-6)


needs_db = pytest.mark.skipif(
    not default_db_path().is_file(), reason="the fast-path database is not built"
)


@needs_db
@pytest.mark.parametrize(
    ("projection", "changes"),
    [
        ("equidistant", {"k1": 0.01}),
        ("equisolid", {"a": 0.003}),
        ("stereographic", {"parity": -1}),
        ("orthographic", {}),
    ],
)
def test_it_solves_synthetic_frames_blind_in_each_projection(
    projection: str, changes: dict[str, float]
) -> None:
    truth = _model(projection, **changes)
    horizon = 85.0 if projection == "orthographic" else 90.0
    frame = render_allsky(truth, 480, 480, horizon_deg=horizon, seed=5)
    assert looks_like_allsky(frame)
    solution = solve_allsky(frame, timeout=30.0)
    assert solution.solved, solution.reason
    got = solution.model
    assert got is not None and solution.matched is not None
    assert len(solution.matched) >= 100 and solution.matched.rms(70.0) < 0.5
    assert got.parity == truth.parity
    assert got.center_x == pytest.approx(truth.center_x, abs=1.0)
    assert got.center_y == pytest.approx(truth.center_y, abs=1.0)
    assert math.degrees(math.acos(np.clip(got.rotation[2] @ truth.rotation[2], -1, 1))) < 0.3
    # Whichever radial law it chose, the model puts the sky where the truth does.
    ra, dec = sky_points(truth, 70.0)
    tx, ty = truth.world_to_pixel(ra, dec)
    gx, gy = got.world_to_pixel(ra, dec)
    assert np.max(np.hypot(gx - tx, gy - ty)) < 1.0


def test_a_frame_without_stars_is_not_solved_and_says_why() -> None:
    model = _model("equidistant")
    blank = render_allsky(model, 320, 320, faintest=-5.0, seed=2)
    solution = solve_allsky(blank, timeout=10.0, stars=bright_stars())
    assert not solution.solved
    assert solution.reason.startswith("too few stars")
    assert solution.seconds < 10.0
    dark = np.zeros((200, 300), dtype=np.float32)
    assert solve_allsky(dark, timeout=10.0).reason == "no sky region found"


def test_a_camera_profile_turns_with_the_sky(tmp_path: Path) -> None:
    model = _model("equisolid", k1=0.01)
    key = camera_key(480, 480, {"INSTRUME": "Oculus"}, None)
    assert key != camera_key(480, 480, {"INSTRUME": "IceAct"}, None)
    save_profile(key, model, when="2020-01-01T00:00:00", directory=tmp_path)
    later = load_profile(key, when="2020-01-01T06:00:00", directory=tmp_path)
    assert later is not None
    # Six hours: the sky turned 90.25 degrees (sidereal rate); the lens is the same.
    assert (later.ra - model.ra) % 360.0 == pytest.approx(90.2464, abs=1e-3)
    assert later.focal == model.focal and later.dec == model.dec and later.k1 == model.k1
    assert load_profile("no-such-camera", directory=tmp_path) is None


@needs_db
def test_a_stored_lens_finds_a_new_pointing_in_one_guess() -> None:
    truth = _model("equisolid", k1=0.01)
    frame = render_allsky(truth, 480, 480, seed=7)
    stale = replace(truth, ra=truth.ra + 50.0, dec=truth.dec - 20.0)
    solution = solve_allsky(frame, timeout=30.0, start=stale)
    assert solution.solved, solution.reason
    assert any("stored lens matched at a new pointing" in line for line in solution.log)
    assert not any("guess: equidistant" in line for line in solution.log)
    assert solution.model is not None and solution.model.projection == "equisolid"
    assert math.degrees(math.acos(min(1.0, solution.model.rotation[2] @ truth.rotation[2]))) < 0.3


def test_a_stored_model_a_little_off_is_repointed_without_the_search() -> None:
    # The stored model of this camera, its pointing 0.3 degrees off (the sky
    # turned a little more than the clocks say): repointed from the whole sky,
    # no growing, no guessing, and the answer is the truth.
    truth = _model("equisolid", k1=0.01, a=0.002)
    frame = render_allsky(truth, 480, 480, seed=11)
    stored = replace(truth, ra=truth.ra + 0.3)
    solution = solve_allsky(frame, timeout=30.0, start=stored)
    assert solution.solved, solution.reason
    assert any("stored model matched" in line for line in solution.log)
    assert not any("reach" in line or "guess:" in line for line in solution.log)
    got = solution.model
    assert got is not None and solution.matched is not None
    assert solution.matched.rms(70.0) < 0.5
    ra, dec = sky_points(truth, 70.0)
    tx, ty = truth.world_to_pixel(ra, dec)
    gx, gy = got.world_to_pixel(ra, dec)
    assert np.max(np.hypot(gx - tx, gy - ty)) < 1.0


@needs_db
def test_a_stored_model_of_another_camera_is_not_taken_for_this_one() -> None:
    # A stored model whose lens is wrong for this frame (twice the scale):
    # chance alone puts few stars near its predictions, the chance test
    # refuses it, and the answer comes from elsewhere, right.
    truth = _model("equidistant")
    frame = render_allsky(truth, 480, 480, seed=12)
    stored = replace(truth, focal=truth.focal * 2.0, roll=truth.roll + 40.0)
    solution = solve_allsky(frame, timeout=30.0, start=stored)
    assert not any("stored model matched" in line for line in solution.log)
    if solution.solved:
        got = solution.model
        assert got is not None
        assert math.degrees(math.acos(min(1.0, got.rotation[2] @ truth.rotation[2]))) < 0.3


def test_the_lens_file_gives_the_zenith_pixel_when_the_header_gives_time_and_site() -> None:
    when = "2018-08-17T03:38:28"
    ra, dec = zenith_radec(when, 28.76, -17.89)
    # A camera tilted 5 degrees off the zenith, towards decreasing Dec.
    model = _model("equidistant", ra=ra, dec=dec - 5.0)
    sra, sdec = sky_points(model, 60.0)
    x, y = model.world_to_pixel(sra[:30], sdec[:30])
    zero = np.zeros(30)
    matched = MatchedStars(
        x, y, sra[:30], sdec[:30], zero, zero, zero, model.off_axis(sra[:30], sdec[:30]), zero
    )
    solution = AllskySolution(model=model, matched=matched)
    header = {
        "DATE-OBS": "2018-08-17",
        "TIME-OBS": "03:38:28",
        "SITELAT": "28 45 36",
        "SITELONG": -17.89,
    }
    doc = lens_document(solution, 480, 480, header=header)
    assert doc["site"]["source"] == "header"
    assert doc["site"]["latitude"] == pytest.approx(28.76)
    assert doc["axis_altitude_deg"] == pytest.approx(85.0, abs=0.01)
    zx, zy = model.world_to_pixel(np.array([ra]), np.array([dec]))
    assert doc["zenith"]["x"] == pytest.approx(zx[0], abs=1e-3)
    assert doc["zenith"]["y"] == pytest.approx(zy[0], abs=1e-3)
    assert doc["matched_stars"] == 30 and len(doc["stars"]) == 30
    # Without the site, the place below the axis: 5 degrees south of La Palma.
    doc = lens_document(solution, 480, 480, header={"DATE-OBS": when})
    assert doc["site"]["latitude"] == pytest.approx(23.76, abs=0.05)


def test_the_engine_wcs_puts_every_pixel_on_the_sky_even_where_the_lens_law_ends() -> None:
    # rho = theta - 0.05 theta^5 turns back at 1.13 focal lengths: the model
    # maps no sky to the frame's corners, the engine's WCS must.
    model = _model("equidistant", focal=100.0, k2=-0.05)
    corners = np.array([[0.0, 0.0], [479.0, 0.0], [0.0, 479.0], [479.0, 479.0]])
    ra, _ = model.pixel_to_world(corners[:, 0], corners[:, 1])
    assert not np.isfinite(ra).any()
    wcs = LensWCS(model, 480, 480, reach_deg=80.0)
    world = wcs.all_pix2world(corners + 1.0, 1)
    assert np.isfinite(world).all()
    # Inside the lens's reach the engine's WCS is the model itself.
    inside = wcs.all_pix2world(np.array([[261.0, 251.0]]), 1)
    assert inside[0] == pytest.approx(
        np.array(model.pixel_to_world(np.array([260.0]), np.array([250.0]))).ravel()
    )


class _SlowClock:
    """A clock on which every reading is a second after the last: a machine so
    busy that whatever runs between two readings takes a second."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


@needs_db
def test_the_blind_ladder_finds_the_same_answer_on_a_slow_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The ladder's guesses are bounded by the patterns they check, not by
    # seconds: however slowly the clock says the work goes, the same guess
    # matches and the same model comes back (only the whole search's time
    # limit reads the clock).
    import types

    from skysolve.engine.allsky import blind
    from skysolve.engine.solving.fastpath import matching

    truth = _model("equisolid", k1=0.01)
    frame = render_allsky(truth, 480, 480, seed=5)
    quick = solve_allsky(frame, timeout=1e6)
    slow = types.SimpleNamespace(monotonic=_SlowClock().monotonic)
    monkeypatch.setattr(blind, "time", slow)
    monkeypatch.setattr(matching, "time", slow)
    busy = solve_allsky(frame, timeout=1e6)
    assert quick.solved and busy.solved, busy.reason
    assert quick.model is not None and busy.model is not None
    guesses = [line.split("] ", 1)[1] for line in quick.log if "guess:" in line]
    assert guesses == [line.split("] ", 1)[1] for line in busy.log if "guess:" in line]
    assert busy.model.to_dict() == quick.model.to_dict()


def test_the_ladder_tells_tetra3rs_fields_near_where_bent_planes_match_first() -> None:
    from skysolve.engine.allsky.ladder import FOV_RANGE, FOV_STEP, fov_estimates

    fovs = fov_estimates(55.0)
    # Every FOV_STEP degrees across the range, each once, nearest 0.82 of the plane first.
    assert fovs[0] == pytest.approx(0.82 * 55.0)
    assert len(set(fovs)) == len(fovs)
    assert min(fovs) >= FOV_RANGE[0] and max(fovs) <= FOV_RANGE[1]
    assert np.allclose(np.diff(sorted(fovs)), FOV_STEP)
    distance = [abs(f - fovs[0]) for f in fovs]
    assert distance == sorted(distance)


def test_a_blind_solve_takes_the_frames_grey_opening_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole frame's extraction and the stars measured again at the
    answer's predictions read the same floorless frame (16 ms a 2-megapixel
    opening)."""
    from skysolve.engine.allsky import sky

    sizes: list[tuple[int, ...]] = []
    opening = sky.grey_opening

    def counted(image: np.ndarray, size: int = 15) -> np.ndarray:
        sizes.append(image.shape)
        return opening(image, size)

    monkeypatch.setattr(sky, "grey_opening", counted)
    frame = render_allsky(_model("equidistant", k1=0.01), 480, 480, seed=5)
    solution = solve_allsky(frame, timeout=30.0)
    assert solution.solved, solution.reason
    assert any("binned detection" in line for line in solution.log)  # measured again
    assert sizes == [(480, 480)]


def test_a_pattern_budget_reaches_tetra3rs_for_every_field_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from skysolve.engine.results import SourceList
    from skysolve.engine.solving.base import SolveConstraints
    from skysolve.engine.solving.fastpath import matching

    calls: list[dict[str, object]] = []

    class Failure:
        status = "no_match"

        def __bool__(self) -> bool:
            return False

    class Database:
        def solve_from_centroids(self, centroids: np.ndarray, **kwargs: object) -> Failure:
            calls.append(kwargs)
            return Failure()

    info = SimpleNamespace(min_fov=20.0, max_fov=70.0, describe=lambda: "fake", path=tmp_path)
    loaded = SimpleNamespace(database=Database(), info=info, stars=None)
    monkeypatch.setattr(matching, "read_info", lambda path: info)
    monkeypatch.setattr(matching, "load_database", lambda path: loaded)
    monkeypatch.setattr(matching, "is_loaded", lambda path: True)
    solver = matching.PatternHashSolver(tmp_path, pattern_budget=1234, fov_estimates=(45.0, 47.0))
    rng = np.random.default_rng(0)
    plane = SourceList(
        rng.uniform(0, 900, 40), rng.uniform(0, 900, 40), rng.uniform(1, 9, 40), 900, 900
    )
    outcome = solver.solve(plane, SolveConstraints(), tmp_path, timeout=60.0)
    assert not outcome.solved
    assert [c["fov_estimate_deg"] for c in calls] == [45.0, 47.0]
    assert all(c["max_patterns_checked"] == 1234 and c["fov_max_error_deg"] is None for c in calls)


@pytest.mark.parametrize("shape", [(37, 53), (120, 97), (15, 16), (3, 40), (64, 2)])
def test_the_grey_opening_equals_scipys(shape: tuple[int, int]) -> None:
    from scipy import ndimage

    from skysolve.engine.allsky.sky import grey_opening

    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    image = rng.normal(100.0, 5.0, shape).astype(np.float32)
    image[rng.uniform(size=shape) < 0.02] += 500.0  # stars, hot pixels
    for size in (15, 5, 1):
        want = ndimage.grey_opening(image, size=(size, size))
        assert np.array_equal(grey_opening(image, size), want)
