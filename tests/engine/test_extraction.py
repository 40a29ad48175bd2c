"""Source extraction: positions, ordering, binning, inversion and failures."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from skysolve.engine.extraction import (
    EXTRACTORS,
    Image2xyExtractor,
    SepExtractor,
    SExtractorExtractor,
    base,
    extract_bright_sources,
    extract_sources,
    get_extractor,
    programs,
    sep_extractor,
    uniformize,
)
from skysolve.engine.results import SourceList
from skysolve.errors import (
    BadInputError,
    ConfigurationError,
    InvalidParameterError,
    NoStarsError,
    SolverFailedError,
    SolveTimeoutError,
)
from tests.gates import ENGINE_PACKAGE, needs_binary

_BINARY = {"image2xy": "image2xy", "sextractor": "source-extractor"}


def _needs_binary(method: str) -> Any:
    binary = _BINARY.get(method)
    provider = "Debian package source-extractor" if binary == "source-extractor" else ENGINE_PACKAGE
    marks = [] if binary is None else [needs_binary(binary, provider)]
    return pytest.param(method, marks=marks, id=method)


METHODS = [_needs_binary(m) for m in EXTRACTORS]


@dataclass(frozen=True)
class Field:
    image: np.ndarray
    x: np.ndarray  # 1-based truth
    y: np.ndarray
    flux: np.ndarray
    hot_x: np.ndarray  # 1-based hot pixel positions
    hot_y: np.ndarray


def _star_field(
    *,
    seed: int = 7,
    shape: tuple[int, int] = (240, 320),
    n_stars: int = 40,
    sigma: float = 1.5,
    noise: float = 3.0,
    n_hot: int = 8,
    min_sep: float = 14.0,
    margin: float = 12.0,
) -> Field:
    """Gaussian stars at sub-pixel positions on a sloped sky, noise and hot pixels.

    Stars are kept ``min_sep`` apart and hot pixels away from stars, so that each
    true position has exactly one counterpart to compare with.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    xs: list[float] = []
    ys: list[float] = []
    while len(xs) < n_stars:
        x, y = rng.uniform(margin, w - 1 - margin), rng.uniform(margin, h - 1 - margin)
        if all(np.hypot(x - a, y - b) >= min_sep for a, b in zip(xs, ys, strict=True)):
            xs.append(x)
            ys.append(y)
    x0 = np.array(xs)  # 0-based array coordinates
    y0 = np.array(ys)
    flux = 10 ** rng.uniform(3.5, 4.8, n_stars)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    image = 200.0 + 0.08 * xx + 0.05 * yy  # background gradient
    for x, y, f in zip(x0, y0, flux, strict=True):
        image += (
            f / (2 * np.pi * sigma**2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
        )
    image += rng.normal(0.0, noise, shape)
    hot_x: list[int] = []
    hot_y: list[int] = []
    while len(hot_x) < n_hot:
        hx, hy = int(rng.integers(2, w - 2)), int(rng.integers(2, h - 2))
        if np.min(np.hypot(x0 - hx, y0 - hy)) > min_sep:
            image[hy, hx] += 4000.0
            hot_x.append(hx)
            hot_y.append(hy)
    return Field(
        image=image.astype(np.float32),
        x=x0 + 1.0,
        y=y0 + 1.0,
        flux=flux,
        hot_x=np.array(hot_x) + 1.0,
        hot_y=np.array(hot_y) + 1.0,
    )


def _match(sources: SourceList, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every true position: index of the nearest source and its distance."""
    d = np.hypot(sources.x[None, :] - x[:, None], sources.y[None, :] - y[:, None])
    nearest = d.argmin(axis=1)
    return nearest, d[np.arange(len(x)), nearest]


@pytest.fixture(scope="module")
def field() -> Field:
    return _star_field()


# -- positions -------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_it_recovers_subpixel_positions(field: Field, method: str) -> None:
    sources = extract_sources(field.image, method=method)

    assert (sources.width, sources.height) == (320, 240)
    _, dist = _match(sources, field.x, field.y)
    assert np.all(dist < 0.2), f"{method}: worst centroid error {dist.max():.3f} px"
    assert np.median(dist) < 0.05
    assert sources.background is not None
    # The background column is the sky under each star (200 + gradient), not the star.
    assert np.all(np.abs(np.asarray(sources.background) - 200.0) < 40.0)


@pytest.mark.parametrize("method", METHODS)
def test_it_drops_hot_pixels(field: Field, method: str) -> None:
    sources = extract_sources(field.image, method=method)

    d = np.hypot(
        sources.x[:, None] - field.hot_x[None, :], sources.y[:, None] - field.hot_y[None, :]
    )
    assert d.min() > 2.0


@pytest.mark.parametrize("method", METHODS)
def test_it_uses_one_based_pixel_centres(method: str) -> None:
    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 2.0, (64, 80)).astype(np.float32)
    yy, xx = np.mgrid[0:64, 0:80]
    image += 3000.0 * np.exp(-((xx - 30) ** 2 + (yy - 20) ** 2) / (2 * 1.6**2)).astype(np.float32)

    sources = extract_sources(image, method=method)

    assert sources.x[0] == pytest.approx(31.0, abs=0.1)
    assert sources.y[0] == pytest.approx(21.0, abs=0.1)


# -- ordering and cap ------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_it_lists_brightest_first(field: Field, method: str) -> None:
    sources = extract_sources(field.image, method=method)

    assert np.all(np.diff(sources.flux) <= 0)
    brightest = np.argsort(-field.flux)[:5]
    nearest, _ = _match(sources, field.x[brightest], field.y[brightest])
    assert set(nearest.tolist()) == set(range(5))


@pytest.mark.parametrize("method", METHODS)
def test_it_caps_at_max_sources(field: Field, method: str) -> None:
    full = extract_sources(field.image, method=method)
    capped = extract_sources(field.image, method=method, max_sources=7)

    assert len(capped) == 7
    np.testing.assert_allclose(capped.x, full.x[:7])
    np.testing.assert_allclose(capped.flux, full.flux[:7])


# -- downsampling ------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_it_maps_downsampled_positions_back(field: Field, method: str) -> None:
    sources = extract_sources(field.image, method=method, downsample=2)

    assert (sources.width, sources.height) == (320, 240)
    bright = field.flux > np.quantile(field.flux, 0.3)
    _, dist = _match(sources, field.x[bright], field.y[bright])
    assert np.all(dist < 0.5), f"{method}: worst error {dist.max():.3f} px at factor 2"


def test_it_maps_odd_downsample_factors_back() -> None:
    f = _star_field(seed=11, shape=(300, 330), sigma=2.5, n_stars=25, min_sep=20)

    sources = extract_sources(f.image, downsample=3)

    bright = f.flux > np.quantile(f.flux, 0.3)
    _, dist = _match(sources, f.x[bright], f.y[bright])
    assert np.all(dist < 0.5)
    # A factor that does not divide the size: the leftover edge is simply not searched.
    assert (sources.width, sources.height) == (330, 300)


def test_it_downsamples_very_large_images_automatically(monkeypatch: pytest.MonkeyPatch) -> None:
    f = _star_field(seed=5, shape=(120, 500), n_stars=12, sigma=2.0)
    monkeypatch.setattr(base, "AUTO_DOWNSAMPLE_MAX_SIDE", 240)
    binned: list[int] = []
    real_bin = base._bin

    def spy(image: np.ndarray, factor: int) -> np.ndarray:
        binned.append(factor)
        return real_bin(image, factor)

    monkeypatch.setattr(base, "_bin", spy)

    sources = extract_sources(f.image)

    assert binned == [3]  # ceil(500 / 240)
    _, dist = _match(sources, f.x, f.y)
    assert np.all(dist < 0.6)
    assert (sources.width, sources.height) == (500, 120)


def test_it_does_not_auto_downsample_when_told_factor_one(monkeypatch: pytest.MonkeyPatch) -> None:
    f = _star_field(seed=5, shape=(120, 500), n_stars=12)
    monkeypatch.setattr(base, "AUTO_DOWNSAMPLE_MAX_SIDE", 240)

    sources = extract_sources(f.image, downsample=1)

    _, dist = _match(sources, f.x, f.y)
    assert np.all(dist < 0.2)


# -- inversion, NaN, flat images, input handling --------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_it_finds_dark_stars_in_an_inverted_image(field: Field, method: str) -> None:
    negative = (5000.0 - field.image).astype(np.float32)

    sources = extract_sources(negative, method=method, invert=True)

    _, dist = _match(sources, field.x, field.y)
    assert np.all(dist < 0.2)


def test_it_does_not_find_dark_stars_without_invert(field: Field) -> None:
    negative = (5000.0 - field.image).astype(np.float32)

    sources = extract_sources(negative)

    if len(sources):
        _, dist = _match(sources, field.x, field.y)
        assert np.sum(dist < 0.5) < len(field.x) // 4


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [0.0, 1234.5])
def test_it_returns_an_empty_list_for_a_flat_image(method: str, value: float) -> None:
    image = np.full((64, 96), value, dtype=np.float32)

    sources = extract_sources(image, method=method)

    assert len(sources) == 0
    assert (sources.width, sources.height) == (96, 64)


@pytest.mark.parametrize("method", METHODS)
def test_it_returns_an_empty_list_for_pure_noise(method: str) -> None:
    image = np.random.default_rng(1).normal(100.0, 5.0, (128, 128)).astype(np.float32)

    sources = extract_sources(image, method=method)

    assert len(sources) < 5


@pytest.mark.parametrize("method", METHODS)
def test_it_ignores_nan_pixels(field: Field, method: str) -> None:
    image = field.image.copy()
    image[:, :6] = np.nan  # a blank edge, as after registration
    image[100:104, 150:154] = np.inf
    rng = np.random.default_rng(2)
    image[rng.integers(0, 240, 30), rng.integers(0, 320, 30)] = np.nan
    before = image.copy()

    sources = extract_sources(image, method=method)

    np.testing.assert_array_equal(image, before)  # never mutate the input
    assert np.all(np.isfinite(sources.x)) and np.all(np.isfinite(sources.flux))
    clean = (field.x > 10) & ~((np.abs(field.x - 152) < 8) & (np.abs(field.y - 102) < 8))
    _, dist = _match(sources, field.x[clean], field.y[clean])
    assert np.median(dist) < 0.1


@pytest.mark.parametrize("method", METHODS)
def test_it_returns_an_empty_list_for_an_all_nan_image(method: str) -> None:
    sources = extract_sources(np.full((32, 32), np.nan), method=method)

    assert len(sources) == 0


def test_it_accepts_big_endian_integer_images_without_changing_them(field: Field) -> None:
    big_endian = field.image.astype(">i4")
    before = big_endian.copy()

    sources = extract_sources(big_endian)

    np.testing.assert_array_equal(big_endian, before)
    _, dist = _match(sources, field.x, field.y)
    assert np.all(dist < 0.25)


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((4, 4, 3)), "2-D image, got 3 dimensions"),
        (np.zeros(10), "2-D image, got 1 dimensions"),
        (np.zeros((0, 5)), "non-empty"),
        (np.array([["a", "b"], ["c", "d"]]), "numeric image"),
    ],
)
def test_it_rejects_unusable_arrays(data: np.ndarray, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        extract_sources(data)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_sources": 0}, "max_sources must be at least 1"),
        ({"max_sources": 2.5}, "max_sources must be an integer"),
        ({"downsample": 0.5}, "downsample must be between 1 and 64"),
        ({"downsample": float("nan")}, "downsample must be between 1 and 64"),
        ({"downsample": 40}, "larger than the image"),
        ({"timeout": 0}, "timeout must be a positive"),
        ({"method": "daofind"}, "unknown source extractor 'daofind'"),
        ({"uniformize_cells": -1}, "must not be negative"),
    ],
)
def test_it_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        extract_sources(np.zeros((32, 32), dtype=np.float32), **options)


def test_it_names_every_extractor() -> None:
    assert EXTRACTORS[0] == "sep"
    assert isinstance(get_extractor("sep"), SepExtractor)
    assert isinstance(get_extractor("image2xy"), Image2xyExtractor)
    assert isinstance(get_extractor("sextractor"), SExtractorExtractor)
    with pytest.raises(InvalidParameterError, match="choose one of sep, image2xy, sextractor"):
        get_extractor("SEP")


@pytest.mark.parametrize(
    ("method", "package"), [("image2xy", "astrometry.net"), ("sextractor", "source-extractor")]
)
def test_it_names_the_debian_package_of_a_missing_binary(
    monkeypatch: pytest.MonkeyPatch, method: str, package: str
) -> None:
    monkeypatch.setattr(programs.shutil, "which", lambda _name: None)

    with pytest.raises(ConfigurationError, match=f"Debian package {package}"):
        extract_sources(np.zeros((32, 32), dtype=np.float32), method=method)


@pytest.mark.parametrize("method", ["image2xy", "sextractor"])
def test_it_reports_a_timeout(monkeypatch: pytest.MonkeyPatch, field: Field, method: str) -> None:
    monkeypatch.setattr(programs.shutil, "which", lambda name: f"/usr/bin/{name}")

    def too_slow(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        assert isinstance(argv, list) and "shell" not in kwargs
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    monkeypatch.setattr(programs.subprocess, "run", too_slow)

    with pytest.raises(SolveTimeoutError, match="took longer than 3 s"):
        extract_sources(field.image, method=method, timeout=3)


@pytest.mark.parametrize("method", ["image2xy", "sextractor"])
def test_it_reports_a_failing_program(
    monkeypatch: pytest.MonkeyPatch, field: Field, method: str
) -> None:
    false = shutil.which("false")
    assert false is not None
    monkeypatch.setattr(programs.shutil, "which", lambda _name: false)

    with pytest.raises(SolverFailedError, match="failed with exit status 1"):
        extract_sources(field.image, method=method)


def test_it_gives_up_cleanly_when_sep_keeps_overflowing(
    monkeypatch: pytest.MonkeyPatch, field: Field
) -> None:
    thresholds: list[float] = []

    def overflow(data: np.ndarray, thresh: float, **kwargs: Any) -> np.ndarray:
        thresholds.append(thresh)
        raise Exception("internal pixel buffer full: 300000 pixels")

    monkeypatch.setattr(sep_extractor.sep, "extract", overflow)

    with pytest.raises(NoStarsError, match="internal pixel buffer full"):
        extract_sources(field.image)
    assert thresholds == [1.5, 3.0, 6.0, 12.0]


# -- uniformize ---------------------------------------------------------------------


def test_it_uniformizes_by_interleaving_cells(field: Field) -> None:
    sources = extract_sources(field.image)

    spread = uniformize(sources, cells=4)

    assert sorted(spread.flux.tolist()) == sorted(sources.flux.tolist())
    quadrant = (spread.x > 160).astype(int) + 2 * (spread.y > 120).astype(int)
    assert sorted(quadrant[:4].tolist()) == [0, 1, 2, 3]
    assert np.all(np.diff(spread.flux[:4]) <= 0)  # within a round, brighter first
    assert uniformize(sources, cells=1) is sources


def test_it_uniformizes_on_request(field: Field) -> None:
    plain = extract_sources(field.image, max_sources=20)

    spread = extract_sources(field.image, max_sources=20, uniformize_cells=4)

    assert sorted(spread.x.tolist()) == sorted(plain.x.tolist())
    assert not np.array_equal(spread.x, plain.x)


# -- the shared real images ------------------------------------------------------------


def _luminance(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("L"), dtype=np.float32)


@pytest.mark.parametrize("name", ["apod2.jpg", "apod3.jpg", "apod4.jpg"])
def test_it_finds_hundreds_of_stars_in_the_shared_images(shared_images: Path, name: str) -> None:
    data = _luminance(shared_images / name)

    sources = extract_sources(data)

    assert 300 <= len(sources) <= 1000
    assert (sources.height, sources.width) == data.shape
    assert np.all((sources.x >= 0.5) & (sources.x <= sources.width + 0.5))
    assert np.all((sources.y >= 0.5) & (sources.y <= sources.height + 0.5))
    assert np.all(np.diff(sources.flux) <= 0)
    # The brightest hundred are spread over the field, not piled into one corner.
    top = sources.head(100)
    assert np.ptp(top.x) > 0.6 * sources.width and np.ptp(top.y) > 0.6 * sources.height


# -- the fast path's brightest-source extraction ------------------------------------


def test_it_finds_the_brightest_stars_at_their_true_subpixel_positions(field: Field) -> None:
    sources = extract_bright_sources(field.image, count=25)

    assert (sources.width, sources.height, len(sources)) == (320, 240, 25)
    assert np.all(np.diff(sources.flux) <= 0)
    # Every source is a true star, at most a tenth of a pixel off...
    d = np.hypot(sources.x[:, None] - field.x[None, :], sources.y[:, None] - field.y[None, :])
    star = d.argmin(axis=1)
    dist = d[np.arange(len(sources)), star]
    assert len(set(star.tolist())) == 25
    assert np.median(dist) < 0.05 and np.all(dist < 0.1), f"worst {dist.max():.3f} px"
    # ... with no half-pixel offset in either axis (tetra3rs counts from the image centre) ...
    assert abs(np.mean(sources.x - field.x[star])) < 0.02
    assert abs(np.mean(sources.y - field.y[star])) < 0.02
    # ... and the brightest stars are among them.
    assert set(np.argsort(-field.flux)[:15].tolist()) <= set(star.tolist())
    assert sources.background is not None
    assert np.all(np.abs(np.asarray(sources.background) - 200.0) < 40.0)


def test_it_keeps_hot_pixels_out_of_the_brightest_sources(field: Field) -> None:
    sources = extract_bright_sources(field.image, count=100)

    d = np.hypot(
        sources.x[:, None] - field.hot_x[None, :], sources.y[:, None] - field.hot_y[None, :]
    )
    assert d.min() > 2.0


def test_it_places_the_brightest_sources_of_a_rendered_sky_within_a_tenth_of_a_pixel() -> None:
    from scipy.spatial import cKDTree

    from testfields.synthetic import FieldSpec, make_field

    spec = FieldSpec(
        ra=120.0, dec=-20.0, pixscale=60.0, width=800, height=600, rotation=35.0, seed=11,
        fwhm=2.5, noise=8.0, sky=500.0, gradient=0.2, missing_fraction=0.1, hot_pixels=20,
    )  # fmt: skip
    f = make_field(spec)
    assert f.image is not None
    sources = extract_bright_sources(f.image, count=300)

    truth = cKDTree(np.column_stack([f.sources.x, f.sources.y]))
    dist, _ = truth.query(np.column_stack([sources.x, sources.y]), distance_upper_bound=1.5)
    found = np.isfinite(dist)
    assert np.count_nonzero(found) >= 0.97 * len(sources)
    assert np.median(dist[found]) < 0.1


def test_it_maps_the_brightest_sources_back_from_a_binned_or_inverted_image(
    field: Field,
) -> None:
    def errors(sources: SourceList) -> np.ndarray:
        """Distance from each source to the nearest true star."""
        d = np.hypot(sources.x[:, None] - field.x[None, :], sources.y[:, None] - field.y[None, :])
        return np.asarray(d.min(axis=1))

    binned = extract_bright_sources(field.image, count=10, downsample=2)
    assert (binned.width, binned.height, len(binned)) == (320, 240, 10)
    assert np.all(errors(binned) < 0.5)
    inverted = extract_bright_sources(-field.image, count=10, invert=True)
    assert len(inverted) == 10 and np.all(errors(inverted) < 0.1)


@pytest.mark.parametrize("value", [0.0, np.nan])
def test_it_finds_no_bright_sources_in_a_flat_or_empty_image(value: float) -> None:
    sources = extract_bright_sources(np.full((50, 60), value, dtype=np.float32))

    assert len(sources) == 0 and (sources.width, sources.height) == (60, 50)


def test_it_rejects_a_bad_bright_source_count(field: Field) -> None:
    with pytest.raises(InvalidParameterError, match="count must be a whole number"):
        extract_bright_sources(field.image, count=0)


def test_it_resorts_by_flux_and_raw_flux_like_astrometry_net() -> None:
    from skysolve.engine.extraction import resort

    # Source 3 sits on a bright nebula: faint above its local background, the
    # brightest of all in raw counts; resort-xylist puts it second.
    flux = np.array([100.0, 90.0, 80.0, 10.0, 5.0])
    background = np.array([0.0, 0.0, 0.0, 500.0, 50.0])
    sources = SourceList(
        x=np.arange(1.0, 6.0),
        y=np.ones(5),
        flux=flux,
        width=10,
        height=10,
        background=background,
    )
    # By flux: 0 1 2 3 4; by flux + background: 3 0 1 2 4; interleaved, no repeats.
    assert list(resort(sources).x) == [1.0, 4.0, 2.0, 3.0, 5.0]
    no_background = SourceList(sources.x, sources.y, flux, 10, 10)
    assert list(resort(no_background).x) == list(no_background.x)


def test_sep_drops_extended_blobs_and_keeps_saturated_stars() -> None:
    # Nebula knots are many times flatter than the stars; a saturated star's
    # flat top makes it flatter too, but it is a star and must stay.
    rng = np.random.default_rng(4)
    h, w = 400, 500
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    image = rng.normal(500.0, 8.0, size=(h, w))

    def blob(x: float, y: float, sigma: float, peak: float) -> np.ndarray:
        return peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma * sigma))

    stars = np.column_stack([rng.uniform(20, w - 20, 80), rng.uniform(20, h - 20, 80)])
    for x, y in stars:
        image += blob(x, y, 1.1, rng.uniform(100.0, 2000.0))
    knots = [(100.0, 100.0), (250.0, 200.0), (400.0, 300.0), (150.0, 320.0)]
    for x, y in knots:
        image += blob(x, y, 4.0, 3000.0)
    saturated = [(60.0, 250.0), (440.0, 80.0)]
    for x, y in saturated:
        image += blob(x, y, 1.1, 1e8)  # a flat top about 8 px across
    image = np.clip(image, 0, 65535).astype(np.float32)
    found = extract_sources(image, method="sep")

    def nearest(x: float, y: float) -> float:
        return float(np.hypot(found.x - (x + 1.0), found.y - (y + 1.0)).min())

    assert all(nearest(x, y) > 3.0 for x, y in knots)
    assert all(nearest(x, y) < 1.0 for x, y in saturated)
    assert sum(nearest(x, y) < 1.0 for x, y in stars) >= 70
