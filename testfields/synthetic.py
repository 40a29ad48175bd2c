"""Synthetic sky fields with a known WCS, for tests and benchmarks.

A field is a real piece of sky -- the stars of an astrometry.net index file --
seen through a pure TAN projection whose CD matrix is built from a pixel scale,
a rotation and a parity.  :func:`make_field` returns the true WCS, the nova
calibration it implies, the star list and (optionally) a rendered image, so a
solve of the image or of the star list can be checked against the truth.

Pixel convention: as everywhere in the engine (see :mod:`skysolve.engine.results`),
pixel (1, 1) is the centre of the first pixel of the first stored row, so
``image[j, i]`` is pixel ``(i + 1, j + 1)``, whatever the file format.

Orientation: the CD matrix is ::

    CD = s * [[parity * cos(r),  sin(r)],
              [-parity * sin(r), cos(r)]]        (s = pixscale / 3600 degrees)

so ``det(CD) = parity * s**2`` and the +y pixel axis points at position angle
``r`` East of North for either parity.  :meth:`Calibration.from_wcs` therefore
reports ``pixscale == spec.pixscale``, ``parity == spec.parity`` and
``orientation == rotation`` (modulo 360, in (-180, 180]).  With ``parity=-1``
and ``rotation=0`` a FITS image shows North up and East left, as a sky chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image
from scipy.special import erf

from skysolve.engine.indexes.catalog import StarCatalog, default_catalog
from skysolve.engine.results import Calibration, SourceList
from skysolve.errors import InvalidParameterError

#: Rendered images are clipped to this level, the range of a 16-bit camera.
SATURATION = 65535.0

#: Peak height, in units of the read noise, of the faintest rendered catalogue star.
FAINTEST_PEAK_SIGMA = 5.0

#: Image sizes :func:`random_specs` picks from.
BENCH_SIZES: tuple[tuple[int, int], ...] = ((800, 600), (1024, 768), (800, 500))


@dataclass(frozen=True)
class FieldSpec:
    """Everything that decides one synthetic field.

    ``ra``/``dec``: field centre (deg).  ``pixscale``: arcsec per pixel.
    ``rotation`` (deg) and ``parity`` (+1 or -1) fix the CD matrix (see the
    module doc).  ``fwhm``: Gaussian PSF FWHM in pixels.  ``sky``: background
    level; ``gradient``: fractional change of the background from the left to
    the right edge (mean stays ``sky``).  ``noise``: Gaussian read-noise sigma;
    star light also gets Poisson noise (gain 1).  ``missing_fraction``: share
    of catalogue stars dropped from the field; ``spurious``: fake stars added at
    random places (they are in ``sources`` and in the image); ``hot_pixels``:
    single bright pixels (only in the image).  ``position_noise``: Gaussian
    jitter (pixels) of each star's position, used for both ``sources`` and the
    image.  ``max_stars``: keep only this many of the brightest catalogue
    stars.  ``seed`` drives every random choice.

    What real pictures add (all off by default; they change the image only,
    never ``sources`` or the truth):

    ``trail``: stars smeared into lines this many pixels long at
    ``trail_angle`` degrees from the +x axis (an unguided exposure).
    ``disk_radius``: a saturated disk of this radius with a glow around it (the
    Moon or a planet), centred at ``disk_xy`` (1-based pixels; default: a
    seeded place away from the edges); stars behind it are hidden.
    ``nebulosity``: diffuse nebulae with compact knots, peaking at this many
    times the sky level.  ``clouds``: the share of the field under clouds, which
    dim the stars behind them by up to 95 % and glow with the sky light.
    ``horizon``: the share of the height (the last stored rows, the bottom of a
    PNG or JPEG) hidden by a dark foreground with a jagged tree line, with
    light pollution glowing above it.  ``bayer``: the image is the raw mosaic
    of an RGGB colour camera (each pixel sees one colour; the channels differ
    in sensitivity), as an unprocessed one-shot-colour frame.
    """

    ra: float
    dec: float
    pixscale: float
    width: int
    height: int
    rotation: float = 0.0
    parity: int = 1
    fwhm: float = 2.5
    sky: float = 1000.0
    gradient: float = 0.0
    noise: float = 10.0
    missing_fraction: float = 0.0
    spurious: int = 0
    hot_pixels: int = 0
    position_noise: float = 0.0
    max_stars: int = 2000
    seed: int = 0
    trail: float = 0.0
    trail_angle: float = 0.0
    disk_radius: float = 0.0
    disk_xy: tuple[float, float] | None = None
    nebulosity: float = 0.0
    clouds: float = 0.0
    horizon: float = 0.0
    bayer: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.ra) or not -90.0 <= self.dec <= 90.0:
            raise InvalidParameterError(f"field centre ({self.ra}, {self.dec}) is not on the sky")
        if not self.pixscale > 0 or not math.isfinite(self.pixscale):
            raise InvalidParameterError(f"pixscale must be positive, got {self.pixscale}")
        if self.width < 1 or self.height < 1:
            raise InvalidParameterError(
                f"image size must be positive, got {self.width}x{self.height}"
            )
        if max(self.width, self.height) * self.pixscale / 3600.0 > 120.0:
            raise InvalidParameterError("field is wider than 120 degrees; TAN cannot show it")
        if self.parity not in (1, -1):
            raise InvalidParameterError(f"parity must be +1 or -1, got {self.parity}")
        if not self.fwhm > 0:
            raise InvalidParameterError(f"fwhm must be positive, got {self.fwhm}")
        if self.sky < 0 or self.noise < 0 or self.position_noise < 0:
            raise InvalidParameterError("sky, noise and position_noise must not be negative")
        if not 0.0 <= self.missing_fraction <= 1.0:
            raise InvalidParameterError(
                f"missing_fraction must be between 0 and 1, got {self.missing_fraction}"
            )
        if self.spurious < 0 or self.hot_pixels < 0 or self.max_stars < 0:
            raise InvalidParameterError("spurious, hot_pixels and max_stars must not be negative")
        if abs(self.gradient) > 1.0:
            raise InvalidParameterError(f"gradient must be between -1 and 1, got {self.gradient}")
        if self.trail < 0 or self.disk_radius < 0 or self.nebulosity < 0:
            raise InvalidParameterError("trail, disk_radius and nebulosity must not be negative")
        if not 0.0 <= self.clouds <= 1.0:
            raise InvalidParameterError(f"clouds must be between 0 and 1, got {self.clouds}")
        if not 0.0 <= self.horizon < 1.0:
            raise InvalidParameterError(f"horizon must be between 0 and 1, got {self.horizon}")

    @property
    def width_deg(self) -> float:
        return self.width * self.pixscale / 3600.0

    @property
    def height_deg(self) -> float:
        return self.height * self.pixscale / 3600.0


@dataclass(frozen=True, eq=False)
class SyntheticField:
    """A synthetic field and its truth.

    ``wcs``: the true pure-TAN WCS (CRPIX at the image centre, 1-based pixels).
    ``truth``: ``Calibration.from_wcs(wcs, width, height)``.  ``sources``: the
    star positions drawn (after dropping, adding and jitter), brightest first,
    with their true total fluxes.  ``catalog``: the catalogue stars behind the
    non-spurious sources, in the order those appear in ``sources``;
    ``is_spurious`` marks the fake entries of ``sources``.  ``image``: float32
    ``(height, width)`` in FITS row order, or ``None`` when not rendered.
    """

    spec: FieldSpec
    wcs: WCS
    truth: Calibration
    sources: SourceList
    image: np.ndarray | None
    catalog: StarCatalog | None = None
    is_spurious: np.ndarray | None = None


def make_wcs(spec: FieldSpec) -> WCS:
    """The true WCS of a field: TAN, CRPIX at the image centre, CD from the spec.

    Parameters
    ----------
    spec : FieldSpec
        The field.

    Returns
    -------
    astropy.wcs.WCS
        A celestial WCS; see the module doc for the CD matrix.
    """
    s = spec.pixscale / 3600.0
    r = math.radians(spec.rotation)
    p = float(spec.parity)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [spec.ra % 360.0, spec.dec]
    wcs.wcs.crpix = [(spec.width + 1) / 2.0, (spec.height + 1) / 2.0]
    wcs.wcs.cd = np.array([[p * math.cos(r), math.sin(r)], [-p * math.sin(r), math.cos(r)]]) * s
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.equinox = 2000.0
    wcs.pixel_shape = (spec.width, spec.height)
    wcs.wcs.set()
    return wcs


def _project(
    catalog: StarCatalog, spec: FieldSpec, wcs: WCS, margin: float
) -> tuple[StarCatalog, np.ndarray, np.ndarray]:
    """Catalogue stars that fall within ``margin`` pixels of the image, and their x, y."""
    half_diag = math.hypot(spec.width + 2 * margin, spec.height + 2 * margin) / 2.0
    radius = min(90.0, half_diag * spec.pixscale / 3600.0 * 1.05 + 0.01)
    near = catalog.cone(spec.ra % 360.0, spec.dec, radius)
    if len(near) == 0:
        return near, np.zeros(0), np.zeros(0)
    x, y = wcs.all_world2pix(near.ra, near.dec, 1)
    keep = (
        np.isfinite(x)
        & np.isfinite(y)
        & (x > 0.5 - margin)
        & (x < spec.width + 0.5 + margin)
        & (y > 0.5 - margin)
        & (y < spec.height + 0.5 + margin)
    )
    idx = np.flatnonzero(keep)
    return near.take(idx), np.asarray(x)[idx], np.asarray(y)[idx]


def _fluxes(
    mag: np.ndarray | None, n: int, faintest_flux: float, rng: np.random.Generator
) -> np.ndarray:
    """Total fluxes with the faintest of ``n`` stars at ``faintest_flux``."""
    if n == 0:
        return np.zeros(0)
    if mag is None:
        # No magnitudes: a plausible brightness spread, seeded.
        mags = rng.uniform(0.0, 5.0, size=n)
    else:
        mags = np.asarray(mag, dtype=float)
    return faintest_flux * 10.0 ** (-0.4 * (mags - mags.max()))


def _render(
    spec: FieldSpec, x: np.ndarray, y: np.ndarray, flux: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Background, stars (pixel-integrated Gaussians), noise, hot pixels; float32."""
    h, w = spec.height, spec.width
    sigma = spec.fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    half = max(2, math.ceil(5.0 * sigma))
    stars = np.zeros((h, w), dtype=float)
    # Pixel i (0-based column) covers x in [i + 0.5, i + 1.5] in 1-based coordinates.
    offsets = np.arange(-half, half + 1)
    scale = 1.0 / (math.sqrt(2.0) * sigma)
    if spec.trail > 0:
        # A trail is the star at many places along a line, its light shared out.
        steps = max(2, math.ceil(spec.trail / max(0.5 * sigma, 0.25)))
        along = np.linspace(-0.5, 0.5, steps) * spec.trail
        angle = math.radians(spec.trail_angle)
        x = (x[:, None] + along[None, :] * math.cos(angle)).ravel()
        y = (y[:, None] + along[None, :] * math.sin(angle)).ravel()
        flux = np.repeat(flux / steps, steps)
    for xi, yi, fi in zip(x, y, flux, strict=True):
        ci, cj = int(round(xi - 1.0)), int(round(yi - 1.0))
        cols, rows = ci + offsets, cj + offsets
        good_c = (cols >= 0) & (cols < w)
        good_r = (rows >= 0) & (rows < h)
        if not good_c.any() or not good_r.any():
            continue
        ex = erf((cols + 1.5 - xi) * scale) - erf((cols + 0.5 - xi) * scale)
        ey = erf((rows + 1.5 - yi) * scale) - erf((rows + 0.5 - yi) * scale)
        stamp = (0.25 * fi) * np.outer(ey[good_r], ex[good_c])
        r0, c0 = rows[good_r][0], cols[good_c][0]
        stars[r0 : r0 + stamp.shape[0], c0 : c0 + stamp.shape[1]] += stamp
    stars = rng.poisson(stars).astype(float)
    ramp = np.linspace(-0.5, 0.5, w) if w > 1 else np.zeros(1)
    background = spec.sky * (1.0 + spec.gradient * ramp)[np.newaxis, :]
    if spec.clouds > 0:
        cover = _cloud_cover(spec, rng)
        stars = stars * (1.0 - 0.95 * cover)
        background = background + 0.6 * spec.sky * cover
    if spec.nebulosity > 0:
        background = background + spec.nebulosity * spec.sky * _nebulae(spec, rng)
    image = stars + background
    if spec.disk_radius > 0:
        image = _add_disk(image, spec, rng)
    if spec.horizon > 0:
        image = _add_foreground(image, spec, rng)
    if spec.bayer:
        # RGGB: red on even rows and even columns, blue on odd rows and columns.
        sensitivity = np.array([[0.55, 1.0], [1.0, 0.4]])
        image = image * np.tile(sensitivity, (h // 2 + 1, w // 2 + 1))[:h, :w]
    if spec.noise > 0:
        image = image + rng.normal(0.0, spec.noise, size=(h, w))
    if spec.hot_pixels:
        flat = rng.choice(h * w, size=min(spec.hot_pixels, h * w), replace=False)
        image.flat[flat] = rng.uniform(0.3, 1.0, size=len(flat)) * SATURATION
    return np.clip(image, 0.0, SATURATION).astype(np.float32)


def _smooth_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Seeded noise varying over about ``cells`` features across the image, scaled to [0, 1]."""
    from scipy.ndimage import zoom

    h, w = shape
    coarse = rng.normal(size=(max(2, cells * h // max(h, w) + 2), cells + 2))
    field = zoom(coarse, (h / coarse.shape[0], w / coarse.shape[1]), order=3)[:h, :w]
    field = np.pad(field, ((0, h - field.shape[0]), (0, w - field.shape[1])), mode="edge")
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / (hi - lo) if hi > lo else np.zeros(shape)


def _cloud_cover(spec: FieldSpec, rng: np.random.Generator) -> np.ndarray:
    """Cloud density in [0, 1]: 1 over ``spec.clouds`` of the image, soft edges."""
    u = _smooth_noise((spec.height, spec.width), 5, rng)
    threshold = float(np.quantile(u, spec.clouds))
    return np.clip((threshold - u) / 0.08 + 0.5, 0.0, 1.0)


def _nebulae(spec: FieldSpec, rng: np.random.Generator) -> np.ndarray:
    """Diffuse glow peaking near 1, with bright compact knots inside it."""
    h, w = spec.height, spec.width
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    glow = np.zeros((h, w))
    size = max(h, w)
    centres = []
    for _ in range(3):
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        s = rng.uniform(0.06, 0.15) * size
        glow += rng.uniform(0.5, 1.0) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        centres.append((cx, cy, s))
    # Filaments: the glow modulated by smooth noise, as emission nebulae look.
    glow *= 0.4 + 0.6 * _smooth_noise((h, w), 12, rng)
    knots = np.zeros((h, w))
    for cx, cy, s in centres:
        for _ in range(12):
            kx, ky = cx + rng.normal(0, 0.6 * s), cy + rng.normal(0, 0.6 * s)
            ks = rng.uniform(2.5, 6.0)
            x0, x1 = max(0, int(kx - 4 * ks)), min(w, int(kx + 4 * ks) + 1)
            y0, y1 = max(0, int(ky - 4 * ks)), min(h, int(ky + 4 * ks) + 1)
            if x0 >= x1 or y0 >= y1:
                continue
            patch = np.exp(
                -((xx[y0:y1, x0:x1] - kx) ** 2 + (yy[y0:y1, x0:x1] - ky) ** 2) / (2 * ks * ks)
            )
            knots[y0:y1, x0:x1] += rng.uniform(0.5, 2.0) * patch
    return glow + knots


def _add_disk(image: np.ndarray, spec: FieldSpec, rng: np.random.Generator) -> np.ndarray:
    """A saturated disk (the Moon, a planet) hiding the stars behind it, with a glow."""
    h, w = image.shape
    r = spec.disk_radius
    if spec.disk_xy is not None:
        cx, cy = spec.disk_xy[0] - 1.0, spec.disk_xy[1] - 1.0
    else:
        cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    d = np.hypot(xx - cx, yy - cy)
    glow = 3.0 * spec.sky * (r / np.maximum(d, r)) ** 2
    out = image + glow
    out[d <= r] = SATURATION
    return out


def _add_foreground(image: np.ndarray, spec: FieldSpec, rng: np.random.Generator) -> np.ndarray:
    """A dark foreground over the last rows, a jagged tree line, a glow above it."""
    h, w = image.shape
    base = h * (1.0 - spec.horizon)
    walk = np.cumsum(rng.normal(0.0, 1.5, size=w))
    hills = base + walk - walk.mean()
    rows = np.arange(h, dtype=float)[:, None]
    above = np.clip(hills[None, :] - rows, 0.0, None)
    glow = 1.5 * spec.sky * np.exp(-above / (0.08 * h))
    # Trees: narrow dark spikes rising above the hills.
    edge = hills.copy()
    for _ in range(max(1, w // 60)):
        at, width = int(rng.integers(0, w)), int(rng.integers(4, 20))
        edge[at : at + width] -= rng.uniform(0.05, 0.15) * h
    out = image + glow
    ground = rows >= edge[None, :]
    out = np.where(ground, 0.3 * spec.sky + rng.normal(0.0, 0.05 * spec.sky, size=(h, w)), out)
    return out


def make_field(
    spec: FieldSpec, *, catalog: StarCatalog | None = None, render: bool = True
) -> SyntheticField:
    """Build a synthetic field of real sky with a known WCS.

    Parameters
    ----------
    spec : FieldSpec
        The field to make.
    catalog : StarCatalog, optional
        Stars to use; by default :func:`~skysolve.engine.indexes.catalog.default_catalog`
        (the densest installed index file).
    render : bool
        Also render the image (otherwise only the star list is made, which is
        much faster for large fields).

    Returns
    -------
    SyntheticField
        The truth, the star list and the image.

    Notes
    -----
    The brightest ``spec.max_stars`` catalogue stars inside the image are kept,
    then ``missing_fraction`` of them are dropped at random.  Flux follows
    ``10 ** (-0.4 * (mag - m0))`` with ``m0`` chosen so the faintest kept star
    peaks ``FAINTEST_PEAK_SIGMA`` read-noise sigmas above the sky (at least 50
    counts when ``noise`` is 0).  Spurious sources take fluxes drawn from the
    real stars' fluxes.
    """
    if catalog is None:
        catalog = default_catalog()
    rng = np.random.default_rng(spec.seed)
    wcs = make_wcs(spec)
    truth = Calibration.from_wcs(wcs, spec.width, spec.height)

    stars, x, y = _project(catalog, spec, wcs, margin=0.0)
    if stars.mag is not None and len(stars):
        order = np.argsort(stars.mag, kind="stable")
    else:
        order = np.arange(len(stars))
    order = order[: spec.max_stars]
    if spec.missing_fraction > 0 and len(order):
        n_drop = int(round(spec.missing_fraction * len(order)))
        dropped = rng.choice(len(order), size=n_drop, replace=False)
        order = np.delete(order, dropped)
    stars, x, y = stars.take(order), x[order], y[order]

    sigma = spec.fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    faintest_flux = max(FAINTEST_PEAK_SIGMA * spec.noise, 50.0) * 2.0 * math.pi * sigma**2
    flux = _fluxes(stars.mag, len(stars), faintest_flux, rng)

    n_fake = spec.spurious
    fake_x = rng.uniform(0.5, spec.width + 0.5, size=n_fake)
    fake_y = rng.uniform(0.5, spec.height + 0.5, size=n_fake)
    pool = flux if len(flux) else np.array([faintest_flux])
    fake_flux = rng.choice(pool, size=n_fake) if n_fake else np.zeros(0)

    all_x = np.concatenate([x, fake_x])
    all_y = np.concatenate([y, fake_y])
    all_flux = np.concatenate([flux, fake_flux])
    spurious = np.concatenate([np.zeros(len(x), bool), np.ones(n_fake, bool)])
    if spec.position_noise > 0:
        all_x = all_x + rng.normal(0.0, spec.position_noise, size=len(all_x))
        all_y = all_y + rng.normal(0.0, spec.position_noise, size=len(all_y))

    bright_first = np.argsort(-all_flux, kind="stable")
    sources = SourceList(
        x=all_x[bright_first],
        y=all_y[bright_first],
        flux=all_flux[bright_first],
        width=spec.width,
        height=spec.height,
    )
    is_spurious = spurious[bright_first]

    image = None
    if render:
        # Stars just outside the frame still spill light over its edge.
        edge = 3.0 * spec.fwhm
        outside, ox, oy = _project(catalog, spec, wcs, margin=edge)
        inside = (ox > 0.5) & (ox < spec.width + 0.5) & (oy > 0.5) & (oy < spec.height + 0.5)
        outside, ox, oy = outside.take(~inside), ox[~inside], oy[~inside]
        if outside.mag is not None and stars.mag is not None and len(stars):
            faint_mag = float(np.max(stars.mag))
            bright = outside.mag <= faint_mag
            ox, oy = ox[bright], oy[bright]
            oflux = faintest_flux * 10.0 ** (-0.4 * (outside.mag[bright] - faint_mag))
        else:
            ox, oy, oflux = np.zeros(0), np.zeros(0), np.zeros(0)
        image = _render(
            spec,
            np.concatenate([sources.x, ox]),
            np.concatenate([sources.y, oy]),
            np.concatenate([sources.flux, oflux]),
            rng,
        )

    real_order = bright_first[~is_spurious]
    return SyntheticField(
        spec=spec,
        wcs=wcs,
        truth=truth,
        sources=sources,
        image=image,
        catalog=stars.take(real_order),
        is_spurious=is_spurious,
    )


def write_fits(
    field: SyntheticField, path: Path, *, with_wcs: bool = False, bitpix: int = 16
) -> Path:
    """Write the rendered image as a FITS file.

    Parameters
    ----------
    field : SyntheticField
        A rendered field.
    path : Path
        Where to write (overwritten).
    with_wcs : bool
        Put the true WCS into the header (for tests of header hints).
    bitpix : int
        16: unsigned 16-bit counts (rounded, clipped to 0..65535); -32: float32
        as rendered; 8: unsigned bytes, 0..SATURATION scaled to 0..255 (faint
        stars are lost, meant for format tests only).

    Returns
    -------
    Path
        ``path``.  Array row 0 is the first stored row, so pixel coordinates
        are the same in the file as in ``field``.
    """
    image = _require_image(field)
    if bitpix == -32:
        data: np.ndarray = image.astype(np.float32)
    elif bitpix == 16:
        data = np.clip(np.round(image), 0, 65535).astype(np.uint16)
    elif bitpix == 8:
        data = np.clip(np.round(image * (255.0 / SATURATION)), 0, 255).astype(np.uint8)
    else:
        raise InvalidParameterError(f"bitpix must be 8, 16 or -32, got {bitpix}")
    header = fits.Header()
    if with_wcs:
        header.update(field.wcs.to_header())
    header["SYNTHETC"] = (True, "skysolve synthetic field")
    header["SYNSEED"] = (field.spec.seed, "seed of the synthetic field")
    path = Path(path)
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)
    return path


def write_png(field: SyntheticField, path: Path, *, bits: int = 8) -> Path:
    """Write the rendered image as a greyscale PNG.

    PNG stores rows top-down, and array row 0 is written first, so it is the
    top row on screen: pixel ``(x, y)`` of the field is pixel ``(x, y)`` of the
    PNG in skysolve's convention (y along the stored rows), which for PNG
    means y grows downwards on screen.  The truth needs no flip.

    Parameters
    ----------
    field : SyntheticField
        A rendered field.
    path : Path
        Where to write (overwritten).
    bits : int
        8: square-root stretch from just below the sky to the brightest pixel,
        so faint stars keep several grey levels; 16: the counts themselves.

    Returns
    -------
    Path
        ``path``.
    """
    image = _require_image(field)
    if bits == 8:
        picture = Image.fromarray(_eight_bits(field))
    elif bits == 16:
        counts = np.clip(np.round(image), 0, 65535).astype(np.uint16)
        picture = Image.fromarray(counts)
    else:
        raise InvalidParameterError(f"bits must be 8 or 16, got {bits}")
    path = Path(path)
    picture.save(path, format="PNG")
    return path


def write_jpeg(field: SyntheticField, path: Path, *, quality: int = 90) -> Path:
    """Write the rendered image as a greyscale JPEG, stretched as :func:`write_png`'s 8 bits.

    Low ``quality`` gives the blocky artefacts of a phone or web picture.
    """
    if not 1 <= quality <= 100:
        raise InvalidParameterError(f"quality must be between 1 and 100, got {quality}")
    path = Path(path)
    Image.fromarray(_eight_bits(field)).save(path, format="JPEG", quality=quality)
    return path


def write_xyls(field: SyntheticField, path: Path) -> Path:
    """Write the star list as an astrometry.net ``xyls`` file.

    Parameters
    ----------
    field : SyntheticField
        Any field (rendered or not).
    path : Path
        Where to write (overwritten).

    Returns
    -------
    Path
        ``path``: a FITS binary table with columns X, Y (1-based pixels) and
        FLUX, brightest first, and IMAGEW/IMAGEH in its header.
    """
    src = field.sources
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="X", format="D", array=np.asarray(src.x, dtype=float)),
            fits.Column(name="Y", format="D", array=np.asarray(src.y, dtype=float)),
            fits.Column(name="FLUX", format="D", array=np.asarray(src.flux, dtype=float)),
        ]
    )
    table.header["IMAGEW"] = (src.width, "image width, pixels")
    table.header["IMAGEH"] = (src.height, "image height, pixels")
    path = Path(path)
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path, overwrite=True)
    return path


def _eight_bits(field: SyntheticField) -> np.ndarray:
    """Square-root stretch from just below the sky to the brightest pixel."""
    image = _require_image(field)
    lo = float(np.median(image)) - 3.0 * field.spec.noise
    hi = max(float(image.max()), lo + 1.0)
    scaled = np.sqrt(np.clip((image - lo) / (hi - lo), 0.0, 1.0))
    return np.round(scaled * 255.0).astype(np.uint8)


def _require_image(field: SyntheticField) -> np.ndarray:
    if field.image is None:
        raise InvalidParameterError("the field was made with render=False; it has no image")
    return field.image


def random_specs(
    n: int,
    *,
    seed: int,
    min_width_deg: float,
    max_width_deg: float,
    sizes: Sequence[tuple[int, int]] = BENCH_SIZES,
    parities: Sequence[int] = (1, -1),
    **options: Any,
) -> list[FieldSpec]:
    """Seeded, varied field specs for benchmarks.

    Parameters
    ----------
    n : int
        Number of specs.
    seed : int
        Seed of every choice; each spec also gets its own derived ``seed``.
    min_width_deg, max_width_deg : float
        Field widths are log-uniform in this range.
    sizes : sequence of (width, height)
        Image sizes to choose from.
    parities : sequence of int
        Parities to choose from.
    **options
        Further :class:`FieldSpec` fields (``fwhm``, ``noise``, ...) for all specs.

    Returns
    -------
    list of FieldSpec
        Centres uniform on the sphere, rotations uniform in [0, 360).
    """
    if n < 0:
        raise InvalidParameterError(f"n must not be negative, got {n}")
    if not 0 < min_width_deg <= max_width_deg:
        raise InvalidParameterError(
            f"need 0 < min_width_deg <= max_width_deg, got {min_width_deg}, {max_width_deg}"
        )
    if not sizes or not parities:
        raise InvalidParameterError("sizes and parities must not be empty")
    for key in ("ra", "dec", "pixscale", "width", "height", "rotation", "parity", "seed"):
        if key in options:
            raise InvalidParameterError(f"random_specs chooses {key} itself")
    rng = np.random.default_rng(seed)
    specs: list[FieldSpec] = []
    for _ in range(n):
        width, height = sizes[int(rng.integers(len(sizes)))]
        width_deg = math.exp(rng.uniform(math.log(min_width_deg), math.log(max_width_deg)))
        base = FieldSpec(
            ra=float(rng.uniform(0.0, 360.0)),
            dec=math.degrees(math.asin(rng.uniform(-1.0, 1.0))),
            pixscale=width_deg * 3600.0 / width,
            width=int(width),
            height=int(height),
            rotation=float(rng.uniform(0.0, 360.0)),
            parity=int(parities[int(rng.integers(len(parities)))]),
            seed=int(rng.integers(2**31)),
        )
        specs.append(replace(base, **options))
    return specs
