"""The lens model's smooth surface: mapping, fitting and choosing it, files, WCS, blind solving."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from skysolve.engine.allsky.blind import solve_allsky
from skysolve.engine.allsky.fit import fit_lens, fit_lens_chosen, surface_size
from skysolve.engine.allsky.model import PROJECTIONS, LensModel
from skysolve.engine.allsky.polynomial import surface_design
from skysolve.engine.allsky.profiles import load_profile
from skysolve.engine.allsky.wcs import to_fits_header
from skysolve.engine.solving.fastpath.database import default_db_path
from skysolve.errors import BadInputError
from testfields.allsky import largest_offset, render_allsky, sky_points, small_lens

FREE = ("rotation", "center", "focal", "k1", "k2", "shear")
OPTIONAL = ("decentring", "surface")

#: A camera profile as main wrote it before the surface (``save_profile`` of
#: commit 20c6d36: decentring terms, no surface), and where that code put four stars.
PROFILE_BEFORE_SURFACE = (
    '{"lens_model": {"projection": "equidistant", "fits_projection": "ARC", '
    '"center_x": 913.03, "center_y": 600.62, "ra": 358.16, "dec": 26.15, "roll": 137.71, '
    '"focal_px_per_rad": 886.15, "parity": 1, "k1": -0.0717, "k2": 0.00822, "a": 0.00051, '
    '"b": 0.0001, "p1": 0.0004, "p2": -0.0003, "pixel_origin": 0, "law": "..."}, '
    '"time": null}'
)
BEFORE_STARS = {
    "ra": [358.16, 10.0, 340.0, 30.0],
    "dec": [26.15, 40.0, 0.0, 70.0],
    "x": [913.03, 957.3517, 866.1944, 1243.7258],
    "y": [600.62, 343.3374, 1074.9239, -17.335],
}


def _model(projection: str = "equidistant", **changes: object) -> LensModel:
    return small_lens(projection, **changes)


def _bump(model: LensModel, order: int, pixels: float) -> LensModel:
    """``model`` with a surface of degree ``order`` that pushes the stars out of a
    patch off the axis by up to ``pixels`` (a dome's local bulge), as a polynomial."""
    line = np.linspace(-1.2, 1.2, 41)
    gx, gy = (g.ravel() for g in np.meshgrid(line, line))
    keep = np.hypot(gx, gy) <= 1.2
    gx, gy = gx[keep], gy[keep]
    cx, cy, s = 0.35, -0.25, 0.35
    push = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * s * s)) * pixels / model.focal
    design = surface_design(gx, gy, order)
    coeffs_x = np.linalg.lstsq(design, push * (gx - cx) / s, rcond=None)[0]
    coeffs_y = np.linalg.lstsq(design, push * (gy - cy) / s, rcond=None)[0]
    return replace(model, surface_order=order, surface=(*coeffs_x.tolist(), *coeffs_y.tolist()))


def _stars(truth: LensModel, noise: float = 0.2) -> tuple[np.ndarray, ...]:
    ra, dec = sky_points(truth, 88.0)
    x, y = truth.world_to_pixel(ra, dec)
    scatter = np.random.default_rng(1).normal(0.0, noise, size=(2, len(x)))
    return x + scatter[0], y + scatter[1], ra, dec


@pytest.mark.parametrize("projection", list(PROJECTIONS))
def test_it_maps_pixels_to_sky_and_back_with_a_surface(projection: str) -> None:
    plain = _model(projection, k1=0.01, a=0.003, p1=0.002, parity=-1)
    model = _bump(plain, 5, 4.0)
    ra, dec = sky_points(model, 85.0)
    x, y = model.world_to_pixel(ra, dec)
    ra2, dec2 = model.pixel_to_world(x, y)
    assert np.nanmax(np.abs((ra2 - ra + 180) % 360 - 180) * np.cos(np.radians(dec))) < 1e-7
    assert np.nanmax(np.abs(dec2 - dec)) < 1e-7
    px, py = plain.world_to_pixel(ra, dec)
    assert np.nanmax(np.hypot(x - px, y - py)) > 1.0


def test_the_surface_is_held_beyond_its_reach() -> None:
    model = replace(_bump(_model(), 5, 4.0), surface_reach=0.8)
    # On one azimuth, past the reach the surface moves every point alike.
    far = np.array([0.9, 1.1, 1.4])
    wx, wy = model.warp(far * 0.6, far * 0.8)
    assert np.allclose(wx - far * 0.6, (wx - far * 0.6)[0]) and np.allclose(
        wy - far * 0.8, (wy - far * 0.8)[0]
    )


def test_a_surface_needs_its_number_of_coefficients() -> None:
    with pytest.raises(BadInputError, match="surface of order 3 has 14 coefficients"):
        _model(surface_order=3, surface=(0.0,) * 6)


def test_the_surface_goes_through_json() -> None:
    model = replace(_bump(_model("equisolid", k1=0.02, p1=-0.002), 5, 3.0), surface_reach=1.3)
    doc = json.loads(json.dumps(model.to_dict()))
    assert doc["surface_order"] == 5 and len(doc["surface"]) == surface_size(5)
    assert LensModel.from_dict(doc) == model


def test_a_profile_stored_before_the_surface_still_loads(tmp_path: Path) -> None:
    (tmp_path / "1920x1080-0123456789abcdef.json").write_text(PROFILE_BEFORE_SURFACE)
    model = load_profile("1920x1080-0123456789abcdef", directory=tmp_path)
    assert model is not None and model.surface_order == 0 and model.surface == ()
    x, y = model.world_to_pixel(np.array(BEFORE_STARS["ra"]), np.array(BEFORE_STARS["dec"]))
    assert x == pytest.approx(BEFORE_STARS["x"], abs=1e-3)
    assert y == pytest.approx(BEFORE_STARS["y"], abs=1e-3)


def test_it_fits_the_surface_the_stars_show() -> None:
    truth = _bump(_model("equisolid", k1=0.015, a=0.002), 5, 5.0)
    x, y, ra, dec = _stars(truth)
    start = _model("equisolid", center_x=242.0, center_y=240.0, ra=84.0, dec=11.0, roll=33.0)
    fit = fit_lens_chosen(x, y, ra, dec, start, free=FREE, optional=OPTIONAL)
    assert fit.model.surface_order >= 5
    assert fit.rms < 0.4
    assert largest_offset(fit.model, truth, 70.0) < 0.5
    # Without it, the lens terms cannot hold the bulge.
    plain = fit_lens_chosen(x, y, ra, dec, start, free=FREE)
    assert plain.rms > 0.6 and largest_offset(plain.model, truth, 70.0) > 2.0


def test_it_leaves_the_surface_out_when_the_stars_do_not_show_it() -> None:
    truth = _model("equisolid", k1=0.015, a=0.002, b=-0.001)
    x, y, ra, dec = _stars(truth, noise=0.5)
    # Even a stored profile's surface is dropped when this frame does not want it.
    start = _bump(_model("equisolid", center_x=242.0, center_y=240.0), 3, 2.0)
    got = fit_lens_chosen(x, y, ra, dec, start, free=FREE, optional=OPTIONAL).model
    assert got.surface_order == 0 and got.surface == ()
    assert largest_offset(got, truth, 70.0) < 0.3


def test_a_fit_with_a_surface_keeps_the_lens_what_the_stars_say() -> None:
    # Fitted in turn, the lens without its surface stays close to the truth's
    # lens, instead of trading large opposite amounts with the surface.
    lens = _model("equidistant", k1=0.01)
    truth = _bump(lens, 5, 4.0)
    x, y, ra, dec = _stars(truth)
    # Fitted at a higher degree than the truth's: the surface is held still
    # a quarter past the farthest star, where the truth's polynomial is not.
    start = replace(truth, surface_order=9, surface=(0.0,) * surface_size(9))
    fit = fit_lens(x, y, ra, dec, start, free=(*FREE, "surface"))
    bare = replace(fit.model, surface_order=0, surface=(), surface_reach=0.0)
    assert largest_offset(bare, lens, 70.0) < 6.0
    assert largest_offset(fit.model, truth, 70.0) < 0.5


def test_the_fits_wcs_holds_the_surface() -> None:
    model = _bump(_model("equidistant", k1=0.01), 5, 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header, error = to_fits_header(model, 480, 480)
        plain_header, _ = to_fits_header(replace(model, surface_order=0, surface=()), 480, 480)
    assert error < 0.1
    assert header["A_2_0"] != plain_header["A_2_0"]


@pytest.mark.skipif(not default_db_path().is_file(), reason="the fast-path database is not built")
def test_it_solves_a_fisheye_frame_with_a_bulge_blind() -> None:
    truth = _bump(_model("equidistant", k1=0.01), 5, 5.0)
    frame = render_allsky(truth, 480, 480, horizon_deg=90.0, seed=7)
    solution = solve_allsky(frame, timeout=30.0)
    assert solution.solved, solution.reason
    got = solution.model
    assert got is not None and solution.matched is not None
    assert got.surface_order >= 3
    assert solution.matched.rms(70.0) < 0.6
    # Held where the stars are thick; towards 70 deg, among fewer stars and
    # another projection's radial law (the search picks it before the
    # surface), the model drifts up to 2 px from the truth.
    assert largest_offset(got, truth, 60.0) < 0.8
