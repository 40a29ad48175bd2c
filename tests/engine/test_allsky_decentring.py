"""The lens model's decentring (tangential) distortion: mapping, fitting, files, WCS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skysolve.engine.allsky.blind import solve_allsky
from skysolve.engine.allsky.fit import fit_lens, fit_lens_chosen
from skysolve.engine.allsky.model import PROJECTIONS, LensModel
from skysolve.engine.allsky.profiles import load_profile
from skysolve.engine.solving.fastpath.database import default_db_path
from testfields.allsky import largest_offset, render_allsky, sky_points, small_lens

FREE = ("rotation", "center", "focal", "k1", "k2", "shear")

#: A camera profile as the code before the decentring terms wrote it
#: (``save_profile`` of commit d11e44c), and where that code put four stars.
OLD_PROFILE = (
    '{"lens_model": {"projection": "equisolid", "fits_projection": "ZEA", "center_x": 913.39, '
    '"center_y": 601.14, "ra": 358.11, "dec": 26.13, "roll": 137.72, "focal_px_per_rad": '
    '884.62, "parity": 1, "k1": -0.0246, "k2": 0.00396, "a": 0.00061, "b": -0.00021, '
    '"pixel_origin": 0, "law": "rho = focal * (g(theta) + k1 theta^3 + k2 theta^5); '
    '[dx, dy] = [[(1+a) parity, b], [b parity, 1-a]] [rho cos phi, rho sin phi]"}, '
    '"time": "2021-09-30T22:49:51"}'
)
OLD_STARS = {
    "ra": [358.11, 10.0, 340.0, 30.0],
    "dec": [26.13, 40.0, 0.0, 70.0],
    "x": [913.39, 957.5358, 866.1562, 1244.788],
    "y": [601.14, 343.4275, 1074.2382, -18.2628],
}


def _model(projection: str = "equidistant", **changes: float) -> LensModel:
    return small_lens(projection, **changes)


@pytest.mark.parametrize("projection", list(PROJECTIONS))
def test_it_maps_pixels_to_sky_and_back_with_decentring(projection: str) -> None:
    model = _model(projection, k1=0.01, a=0.003, b=-0.002, p1=0.004, p2=-0.003, parity=-1)
    ra, dec = sky_points(model, 85.0)
    x, y = model.world_to_pixel(ra, dec)
    ra2, dec2 = model.pixel_to_world(x, y)
    assert np.nanmax(np.abs((ra2 - ra + 180) % 360 - 180) * np.cos(np.radians(dec))) < 1e-7
    assert np.nanmax(np.abs(dec2 - dec)) < 1e-7
    # The term moves stars (by pixels at this size), most towards the edge.
    plain = _model(projection, k1=0.01, a=0.003, b=-0.002, parity=-1)
    px, py = plain.world_to_pixel(ra, dec)
    assert np.nanmax(np.hypot(x - px, y - py)) > 1.0


def test_the_decentring_goes_through_json() -> None:
    model = _model("equisolid", k1=0.02, a=0.001, p1=-0.002, p2=0.001)
    doc = json.loads(json.dumps(model.to_dict()))
    assert doc["p1"] == -0.002 and doc["p2"] == 0.001
    assert LensModel.from_dict(doc) == model


def test_a_profile_stored_before_the_decentring_terms_still_loads(tmp_path: Path) -> None:
    (tmp_path / "1920x1200-0123456789abcdef.json").write_text(OLD_PROFILE)
    model = load_profile("1920x1200-0123456789abcdef", directory=tmp_path)
    assert model is not None and model.p1 == 0.0 and model.p2 == 0.0
    x, y = model.world_to_pixel(np.array(OLD_STARS["ra"]), np.array(OLD_STARS["dec"]))
    assert x == pytest.approx(OLD_STARS["x"], abs=1e-3)
    assert y == pytest.approx(OLD_STARS["y"], abs=1e-3)


def _stars(truth: LensModel, noise: float = 0.2) -> tuple[np.ndarray, ...]:
    ra, dec = sky_points(truth, 88.0)
    x, y = truth.world_to_pixel(ra, dec)
    scatter = np.random.default_rng(1).normal(0.0, noise, size=(2, len(x)))
    return x + scatter[0], y + scatter[1], ra, dec


def test_it_fits_the_decentring_the_stars_show() -> None:
    truth = _model("equisolid", k1=0.015, a=0.002, b=-0.001, p1=0.006, p2=-0.004)
    x, y, ra, dec = _stars(truth)
    start = _model("equisolid", center_x=242.0, center_y=240.0, ra=84.0, dec=11.0, roll=33.0)
    fit = fit_lens_chosen(x, y, ra, dec, start, free=FREE)
    got = fit.model
    assert got.p1 == pytest.approx(truth.p1, abs=5e-4)
    assert got.p2 == pytest.approx(truth.p2, abs=5e-4)
    assert fit.rms < 0.32
    assert largest_offset(got, truth, 70.0) < 0.15
    # Without the term, the same stars leave pixels of structure behind.
    plain = fit_lens(x, y, ra, dec, start, free=FREE)
    assert plain.rms > 0.5 and largest_offset(plain.model, truth, 70.0) > 1.0


def test_it_leaves_the_decentring_out_when_the_stars_do_not_show_it() -> None:
    truth = _model("equisolid", k1=0.015, a=0.002, b=-0.001)
    x, y, ra, dec = _stars(truth, noise=0.5)
    # Even a stored profile's decentring is dropped when this frame does not want it.
    start = _model("equisolid", center_x=242.0, center_y=240.0, p1=0.003, p2=0.002)
    got = fit_lens_chosen(x, y, ra, dec, start, free=FREE).model
    assert got.p1 == 0.0 and got.p2 == 0.0
    assert largest_offset(got, truth, 70.0) < 0.3


@pytest.mark.skipif(not default_db_path().is_file(), reason="the fast-path database is not built")
def test_it_solves_a_decentred_fisheye_frame_blind() -> None:
    truth = _model("equidistant", k1=0.01, p1=0.006, p2=-0.004)
    frame = render_allsky(truth, 480, 480, horizon_deg=90.0, seed=7)
    solution = solve_allsky(frame, timeout=30.0)
    assert solution.solved, solution.reason
    got = solution.model
    assert got is not None and solution.matched is not None
    assert got.p1 == pytest.approx(truth.p1, abs=1e-3)
    assert got.p2 == pytest.approx(truth.p2, abs=1e-3)
    assert solution.matched.rms(70.0) < 0.5
    assert largest_offset(got, truth, 70.0) < 0.3
