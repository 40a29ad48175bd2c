"""Each star's expected centroid error from its flux: the final fit's weights.

A faint star's centroid scatters more than a bright one's where the sky's
noise dominates (error roughly proportional to 1/flux), down to a floor set by
the optics and the pixels.  :func:`centroid_errors` fits that model,
``sigma^2 = a^2 + b^2 (f_med / f)^2``, to a fit's own residuals; the final fit
then weights each star by it (:func:`centroid_weights`) and judges a faint
candidate pair against its own expected error plus the fit's uncertainty where
it lies (:func:`candidate_radius`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Stars whose squared residual exceeds this many times their expected one are
#: left out of the error model's fit (wrong pairs must not inflate it).
OUTLIER_RATIO = 16.0
#: Rounds of that fit at most.
ROUNDS = 5


@dataclass(frozen=True)
class CentroidErrors:
    """The per-axis centroid variance ``floor + faint * (median_flux / flux)^2``, px^2."""

    floor: float
    faint: float
    median_flux: float

    def variance(self, flux: np.ndarray) -> np.ndarray:
        """Expected per-axis centroid variance (px^2) of sources of ``flux``."""
        ratio = self.median_flux / np.maximum(np.asarray(flux, float), 1e-12)
        return np.maximum(self.floor + self.faint * ratio**2, 1e-12)


def centroid_errors(squared_residuals: np.ndarray, flux: np.ndarray) -> CentroidErrors:
    """The error model fitted to a fit's squared radial residuals (px^2).

    Least squares of half the squared residual (the per-axis variance) on
    ``[1, (f_med / f)^2]`` with both terms held non-negative, stars far
    beyond their expected residual left out and the fit repeated.
    """
    f = np.maximum(np.asarray(flux, float), 1e-12)
    median = float(np.median(f))
    q2 = (median / f) ** 2
    half = np.asarray(squared_residuals, float) / 2.0
    use = np.ones(len(half), dtype=bool)
    floor, faint = float(np.mean(half)), 0.0
    for _ in range(ROUNDS):
        design = np.column_stack([np.ones(int(use.sum())), q2[use]])
        coef, *_ = np.linalg.lstsq(design, half[use], rcond=None)
        floor, faint = float(coef[0]), float(coef[1])
        if faint < 0:
            floor, faint = float(np.mean(half[use])), 0.0
        elif floor < 0:
            floor, faint = 0.0, float(np.sum(half[use] * q2[use]) / np.sum(q2[use] ** 2))
        expected = np.maximum(floor + faint * q2, 1e-12)
        new = half <= OUTLIER_RATIO * expected
        if np.array_equal(new, use) or np.count_nonzero(new) < 3:
            break
        use = new
    return CentroidErrors(floor, faint, median)


def centroid_weights(errors: CentroidErrors, flux: np.ndarray) -> np.ndarray:
    """Each star's weight: the median star's variance over its own, at most 1.

    Only the fainter stars are weighted down: a bright star's smaller expected
    error is not trusted beyond the median star's (the model's floor is fitted
    to few stars, and saturated or blended bright stars scatter more).
    """
    median = float(errors.variance(np.array([errors.median_flux]))[0])
    return np.minimum(1.0, median / errors.variance(flux))


def candidate_radius(
    errors: CentroidErrors,
    flux: np.ndarray,
    design: np.ndarray,
    weights: np.ndarray,
    candidates: np.ndarray,
    *,
    sigmas: float,
    most: float,
) -> np.ndarray:
    """How far (px) each candidate source may lie from the fit and still be its star.

    ``sigmas`` times the candidate's expected error: its own centroid variance
    (from its ``flux``) plus the variance of the fit's prediction where it lies
    (``candidates``: its row of the design matrix; ``design`` and ``weights``:
    the fitted stars'), at most ``most``.  A faint star alone in a corner is
    judged by what the fit can know there, not by the bright stars' scatter.
    """
    scale = float(errors.variance(np.array([errors.median_flux]))[0])
    normal = design.T @ (design * (weights / scale)[:, None])
    inverse = np.linalg.pinv(normal)
    predicted = np.einsum("ij,jk,ik->i", candidates, inverse, candidates)
    return np.minimum(most, sigmas * np.sqrt(errors.variance(flux) + predicted))
