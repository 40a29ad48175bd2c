"""The final fit's weights (skysolve.engine.fitting.weights): faint stars scatter more.

Seeded synthetic fields through a known TAN-SIP camera whose sources' centroid
error grows as 1/flux over a floor, as the corpus's final fits show (the
median residual grows toward faint sources on 16 of 22 bench images).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.engine.fitting import fit_wcs, refit
from skysolve.engine.fitting.wcsfit import Pairs, design_matrix, squared_residuals
from skysolve.engine.fitting.weights import (
    CentroidErrors,
    candidate_radius,
    centroid_errors,
    centroid_weights,
)
from skysolve.engine.indexes.catalog import default_catalog
from skysolve.engine.solving.fastpath.tansip import TanSip
from tests.engine.test_fitting import (
    assert_stated_coverage,
    camera,
    largest_offset,
    observe,
    record_errors,
)

#: The centroid error model of the fields: sigma^2 = FLOOR^2 + FAINT^2 (f_med / f)^2.
FLOOR, FAINT = 0.05, 0.3


def _field(
    seed: int, n: int, order: int = 2
) -> tuple[TanSip, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = camera(
        rng.uniform(0, 360), rng.uniform(-60, 60), rng.uniform(5, 30), max(order, 2),
        rotation=rng.uniform(0, 360), seed=seed, corner_px=0.0 if order == 1 else 8.0,
        inverse=False,
    )  # fmt: skip
    x, y = rng.uniform(1, 1600, n), rng.uniform(1, 1200, n)
    ra, dec = truth.pix2world(x, y)
    flux = 10 ** rng.uniform(0, 2, n)  # five magnitudes
    sigma = np.sqrt(FLOOR**2 + FAINT**2 * (np.median(flux) / flux) ** 2)
    x, y = x + rng.normal(0, sigma), y + rng.normal(0, sigma)
    return truth, x, y, ra, dec, flux


def test_the_error_model_is_recovered_from_residuals() -> None:
    rng = np.random.default_rng(3)
    flux = 10 ** rng.uniform(0, 2, 4000)
    var = FLOOR**2 + FAINT**2 * (np.median(flux) / flux) ** 2
    d2 = rng.normal(0, np.sqrt(var)) ** 2 + rng.normal(0, np.sqrt(var)) ** 2
    d2[:40] = 100.0  # wrong pairs do not inflate it
    errors = centroid_errors(d2, flux)
    # The faint term is what the weights rest on; the floor (a small share of
    # the brightest stars' variance) is loosely pinned by squared residuals.
    assert math.sqrt(errors.faint) == pytest.approx(FAINT, rel=0.05)
    faint = flux < np.median(flux)
    ratio = errors.variance(flux[faint]) / var[faint]
    assert 0.8 < float(np.median(ratio)) < 1.25
    weights = centroid_weights(errors, flux)
    assert np.all(weights <= 1.0)
    assert np.all(weights[flux >= np.median(flux)] == 1.0)  # only the fainter half down
    assert float(np.min(weights)) < 0.05


def test_stars_alike_are_weighted_alike() -> None:
    rng = np.random.default_rng(4)
    flux = 10 ** rng.uniform(0, 2, 500)
    d2 = rng.normal(0, 0.2, 500) ** 2 + rng.normal(0, 0.2, 500) ** 2
    errors = centroid_errors(d2, flux)
    assert errors.faint < 0.1 * errors.floor
    assert float(np.min(centroid_weights(errors, flux))) > 0.8


def test_the_weighted_fit_recovers_the_camera_better() -> None:
    """Over 40 seeded fields of 60 stars, the fit weighted by the error model
    fitted to its own residuals is nearer the true camera than the unweighted one."""
    plain, weighted = [], []
    for seed in range(40):
        truth, x, y, ra, dec, flux = _field(seed, 60)
        errors = _errors_of_fit(x, y, ra, dec, flux, truth.crval, 2)
        fit = fit_wcs(x, y, ra, dec, width=1600, height=1200, order=2, crval=truth.crval)
        better = fit_wcs(
            x, y, ra, dec, width=1600, height=1200, order=2, crval=truth.crval,
            weights=centroid_weights(errors, flux),
        )  # fmt: skip
        plain.append(largest_offset(truth, fit.model, 1600, 1200))
        weighted.append(largest_offset(truth, better.model, 1600, 1200))
    assert float(np.median(weighted)) < 0.75 * float(np.median(plain))
    assert np.mean(np.array(weighted) < np.array(plain)) > 0.7


def test_weighted_uncertainties_cover_the_true_error_at_the_stated_rate() -> None:
    """The weighted fit's centre, scale and rotation uncertainties hold over 300
    seeded fields whose faint stars scatter more (weights from the residuals)."""
    z: dict[str, list[float]] = {"ra": [], "dec": [], "scale": [], "rotation": []}
    for seed in range(300):
        n = 40 + (seed * 7) % 260
        truth, x, y, ra, dec, flux = _field(1000 + seed, n, order=1)
        errors = _errors_of_fit(x, y, ra, dec, flux, truth.crval, 1)
        fit = fit_wcs(
            x, y, ra, dec, width=1600, height=1200, order=1, crval=truth.crval,
            weights=centroid_weights(errors, flux),
        )  # fmt: skip
        record_errors(z, fit, truth)
    assert_stated_coverage(z)


def test_a_faint_candidate_alone_in_a_corner_is_given_room() -> None:
    """The last match's radius: a candidate's own centroid error at its flux plus
    the fit's uncertainty where it lies, at most the cap."""
    rng = np.random.default_rng(5)
    # Stars in the middle of a 1600 x 1200 frame only; offsets from its centre.
    u, v = rng.uniform(-500, 500, 40), rng.uniform(-400, 400, 40)
    errors = CentroidErrors(floor=0.01, faint=0.04, median_flux=10.0)
    flux = np.full(40, 10.0)
    design = design_matrix(u, v, 2, 800.0)
    weights = centroid_weights(errors, flux)
    at = design_matrix(
        np.array([0.0, 780.0, 0.0, 780.0]), np.array([0.0, 590.0, 0.0, 590.0]), 2, 800.0
    )
    cand_flux = np.array([10.0, 10.0, 2.0, 2.0])
    radius = candidate_radius(errors, cand_flux, design, weights, at, sigmas=3.0, most=5.0)
    centre, corner, faint_centre, faint_corner = radius
    assert centre == pytest.approx(3.0 * math.sqrt(0.05), rel=0.1)  # its own error, little more
    assert corner > 1.5 * centre  # the fit extrapolates there
    assert faint_centre > 2.0 * centre
    assert faint_corner > faint_centre
    capped = candidate_radius(errors, cand_flux, design, weights, at, sigmas=3.0, most=0.8)
    assert float(np.max(capped)) == 0.8


def test_the_refit_given_fluxes_is_nearer_the_camera() -> None:
    """The whole final fit (matching, clipping, the order, the last match) on
    real sky: with the sources' fluxes it lands nearer the true camera."""
    plain, weighted = [], []
    for seed in range(6):
        truth = camera(60.0 * seed, 20.0, 12.0, 2, seed=seed, corner_px=6.0)
        field = observe(truth, width=1600, height=1200, noise=0.0, sources=120, seed=seed)
        rng = np.random.default_rng(seed)
        sigma = np.sqrt(FLOOR**2 + FAINT**2 * (np.median(field.flux) / field.flux) ** 2)
        x = field.x + rng.normal(0, np.minimum(sigma, 1.0))
        y = field.y + rng.normal(0, np.minimum(sigma, 1.0))
        stars = default_catalog()
        a = refit(x, y, width=1600, height=1200, start=truth, stars=stars)
        b = refit(x, y, width=1600, height=1200, start=truth, stars=stars, flux=field.flux)
        assert a is not None and b is not None
        plain.append(largest_offset(truth, a.fit.model, 1600, 1200))
        weighted.append(largest_offset(truth, b.fit.model, 1600, 1200))
    # 0.28 px against 0.34 px (median), nearer on 5 of the 6.
    assert float(np.median(weighted)) < 0.9 * float(np.median(plain)), (plain, weighted)
    assert np.count_nonzero(np.array(weighted) < np.array(plain)) >= 5


def _errors_of_fit(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    flux: np.ndarray,
    centre: tuple[float, float],
    order: int,
) -> CentroidErrors:
    """The centroid error model of a 1600 x 1200 field's matched stars, from their
    unweighted fit's residuals (as the final fit makes it)."""
    pairs = Pairs.of(x, y, ra, dec, width=1600, height=1200, crval=centre, order=order)
    return centroid_errors(squared_residuals(pairs, order), flux)
