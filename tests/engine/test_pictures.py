"""Result pictures: sizes, formats, where things are drawn, grid lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.wcs import WCS
from PIL import Image

from skysolve.engine.products.grid import choose_grid_step, grid_lines
from skysolve.engine.products.pictures import (
    CATALOG_GREEN,
    DEEP_SKY_COLOR,
    DISPLAY_MAX,
    GRID_COLOR,
    SOURCE_RED,
    make_pictures,
    residual_bar_unit,
    residual_gain,
)
from skysolve.engine.products.stretch import stretch_for_display
from skysolve.engine.results import Annotation, SourceList
from skysolve.errors import BadInputError
from tests.engine.test_annotations import APOD4_SIZE, apod4_wcs, tan_wcs

WIDTH, HEIGHT = 1000, 500


def sky(seed: int = 1, shape: tuple[int, int] = (HEIGHT, WIDTH)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(1000.0, 5.0, size=shape).astype(np.float32)


def rgb_at(path: Path, x: int, y: int) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=int)[y, x]


def near_color(
    path: Path, col: float, row: float, color: tuple[int, int, int], *, box: int = 2
) -> bool:
    """Whether a pixel within ``box`` of (col, row) of the picture has about ``color``."""
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=int)
    c, r = round(col), round(row)
    patch = pixels[max(0, r - box) : r + box + 1, max(0, c - box) : c + box + 1]
    distance = np.abs(patch - np.array(color)).sum(axis=-1)
    return bool((distance < 90).any())


def test_it_makes_only_extraction_pictures_when_unsolved(tmp_path: Path) -> None:
    sources = SourceList(
        x=np.array([100.0]), y=np.array([50.0]), flux=np.array([1.0]), width=WIDTH, height=HEIGHT
    )
    out = make_pictures(
        sky(),
        color=None,
        bottom_up=False,
        wcs=None,
        sources=sources,
        catalog_xy=None,
        annotations=[],
        out_dir=tmp_path / "new",
    )
    assert set(out) == {"extraction_display", "extraction_full"}
    with Image.open(out["extraction_full"]) as im:
        assert (im.format, im.size) == ("PNG", (WIDTH, HEIGHT))
    with Image.open(out["extraction_display"]) as im:
        assert (im.format, im.size) == ("PNG", (DISPLAY_MAX, 400))


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """The same field drawn as a top-down (JPEG-like) and a bottom-up (FITS) image."""
    wcs = tan_wcs(150.3, 20.0, 10.0, WIDTH, HEIGHT)
    sources = SourceList(
        x=np.array([200.0, 800.0]),
        y=np.array([100.0, 400.0]),
        flux=np.array([5.0, 3.0]),
        width=WIDTH,
        height=HEIGHT,
    )
    catalog_xy = np.array([[600.0, 120.0]])
    annotations = [
        Annotation(type="ngc", names=["NGC 9999"], pixelx=300.0, pixely=100.0, radius=50.0),
        Annotation(type="bright", names=["Vega"], pixelx=700.0, pixely=300.0, radius=0.0, vmag=0.0),
        Annotation(
            type="constellation", names=["Leo", "Leo"], pixelx=500.0, pixely=250.0, radius=0
        ),
    ]
    result = {}
    for name, bottom_up in (("top_down", False), ("bottom_up", True)):
        result[name] = make_pictures(
            sky(),
            color=None,
            bottom_up=bottom_up,
            wcs=wcs,
            sources=sources,
            catalog_xy=catalog_xy,
            annotations=annotations,
            out_dir=tmp_path_factory.mktemp(name),
        )
    return result


def test_it_writes_every_picture_with_the_right_size_and_format(
    solved: dict[str, dict[str, Path]],
) -> None:
    out = solved["top_down"]
    expected = {"PNG": ("extraction", "red_green", "grid"), "JPEG": ("annotated",)}
    assert len(out) == 8
    for fmt, kinds in expected.items():
        for kind in kinds:
            with Image.open(out[f"{kind}_full"]) as im:
                assert (im.format, im.size) == (fmt, (WIDTH, HEIGHT))
            with Image.open(out[f"{kind}_display"]) as im:
                assert im.format == fmt
                assert max(im.size) <= DISPLAY_MAX
                assert im.size == (800, 400)
    for path in out.values():
        assert path.parent == out["grid_full"].parent


@pytest.mark.parametrize("layout", ["top_down", "bottom_up"])
def test_it_circles_annotations_where_they_are(
    solved: dict[str, dict[str, Path]], layout: str
) -> None:
    path = solved[layout]["annotated_full"]
    # NGC 9999 at 1-based (300, 100), radius 50: the rightmost point of its circle.
    col = 300 - 1 + 50
    row = 100 - 1 if layout == "top_down" else HEIGHT - 100
    mirrored = HEIGHT - 100 if layout == "top_down" else 100 - 1
    assert near_color(path, col, row, DEEP_SKY_COLOR)
    assert not near_color(path, col, mirrored, DEEP_SKY_COLOR, box=6)
    # The centre of the circle is left alone.
    assert not near_color(path, col - 50, row, DEEP_SKY_COLOR, box=3)
    # Display picture: the same place scaled by 0.8.
    display = solved[layout]["annotated_display"]
    assert near_color(display, (col + 0.5) * 0.8 - 0.5, (row + 0.5) * 0.8 - 0.5, DEEP_SKY_COLOR)


@pytest.mark.parametrize("layout", ["top_down", "bottom_up"])
def test_it_marks_sources_red_and_catalogue_stars_green(
    solved: dict[str, dict[str, Path]], layout: str
) -> None:
    path = solved[layout]["red_green_full"]

    def row_of(y: float) -> float:
        return y - 1 if layout == "top_down" else HEIGHT - y

    radius = max(4.0, WIDTH / 160)
    assert near_color(path, 200 - 1 + radius, row_of(100), SOURCE_RED)
    assert near_color(path, 600 - 1 + 1.5 * radius, row_of(120), CATALOG_GREEN)
    assert not near_color(path, 200 - 1 + radius, row_of(HEIGHT + 1 - 100), SOURCE_RED, box=4)
    extraction = solved[layout]["extraction_full"]
    assert near_color(extraction, 800 - 1 - radius, row_of(400), SOURCE_RED)
    assert not near_color(extraction, 600 - 1 + 1.5 * radius, row_of(120), CATALOG_GREEN)


def test_it_draws_grid_lines_where_the_wcs_puts_them(
    solved: dict[str, dict[str, Path]],
) -> None:
    wcs = tan_wcs(150.3, 20.0, 10.0, WIDTH, HEIGHT)
    # The field is about 2.8 deg of RA: half-degree RA lines, so RA 150.0 is one.
    lines = grid_lines(wcs, WIDTH, HEIGHT)
    ra_values = sorted(line.value for line in lines if line.kind == "ra")
    assert 150.0 in ra_values
    assert np.allclose(np.diff(ra_values), 0.5)
    # At Dec 20.1, off the Dec 20 line, so only the RA line can be there.
    x, y = wcs.all_world2pix([[150.0, 20.1]], 1)[0]
    for layout in ("top_down", "bottom_up"):
        path = solved[layout]["grid_full"]
        row = y - 1 if layout == "top_down" else HEIGHT - y
        assert near_color(path, x - 1, row, GRID_COLOR)
        # Between two RA lines there is no vertical line at this height.
        x_between, _ = wcs.all_world2pix([[150.25, 20.1]], 1)[0]
        assert not near_color(path, x_between - 1, row, GRID_COLOR, box=3)


def test_it_chooses_three_to_eight_grid_lines() -> None:
    assert choose_grid_step(33.0) == 5.0
    assert choose_grid_step(4.5) == 1.0
    assert choose_grid_step(0.2) == pytest.approx(2 / 60)
    for extent in np.geomspace(4 / 60, 200.0, 60):
        assert 3 <= extent / choose_grid_step(float(extent)) <= 8
    with pytest.raises(BadInputError, match="positive"):
        choose_grid_step(0.0)


def test_it_draws_grids_around_the_pole() -> None:
    lines = grid_lines(tan_wcs(30.0, 88.0, 60.0, 800, 600), 800, 600)
    ra_values = {line.value for line in lines if line.kind == "ra"}
    dec_values = {line.value for line in lines if line.kind == "dec"}
    assert len(ra_values) == 12  # every 30 degrees all round
    # The field reaches from Dec 82 to the pole: 2 degree Dec circles.
    assert {84.0, 86.0, 88.0} <= dec_values


def test_it_draws_grids_across_ra_zero() -> None:
    wcs = tan_wcs(0.2, 10.0, 10.0, WIDTH, HEIGHT)
    lines = grid_lines(wcs, WIDTH, HEIGHT)
    ra_lines = {line.value: line for line in lines if line.kind == "ra"}
    assert 0.0 in ra_lines and 359.5 in ra_lines and 0.5 in ra_lines
    segment = ra_lines[0.0].segments[0]
    expected = wcs.all_world2pix([[0.0, 10.0]], 1)[0]
    k = int(np.argmin(np.abs(segment[:, 1] - expected[1])))
    assert segment[k, 0] == pytest.approx(expected[0], abs=0.5)


def test_it_draws_the_big_dipper(tmp_path: Path) -> None:
    """A real SIP solution: grid lines exist and nothing fails."""
    width, height = APOD4_SIZE
    lines = grid_lines(apod4_wcs(), width, height)
    assert {line.kind for line in lines} == {"ra", "dec"}
    dec_values = sorted(line.value for line in lines if line.kind == "dec")
    assert len(dec_values) >= 3
    assert np.allclose(np.diff(dec_values), 5.0)


def test_it_stretches_robustly_to_hot_pixels() -> None:
    rng = np.random.default_rng(7)
    data = rng.normal(1000.0, 10.0, size=(200, 200))
    data[50:70, 50:70] = 3000.0  # a bright star, 400 pixels
    hot = rng.integers(0, 200, size=(20, 2))
    data[hot[:, 0], hot[:, 1]] = 65535.0
    data = data.astype(np.uint16)
    before = data.copy()
    out = stretch_for_display(data)
    assert out.dtype == np.uint8 and out.shape == (200, 200)
    assert np.array_equal(data, before)
    assert out[60, 60] >= 250  # the star is white, hot pixels did not dim it
    assert np.median(out) < 100


def _plain_stretch(data: np.ndarray) -> np.ndarray:
    """The documented stretch, computed the slow and obvious way."""
    lo, hi = np.percentile(data, [1.0, 99.8])
    t = (data.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)
    t = np.clip(t, 0.0, 1.0)
    curve = np.arcsinh(np.float32(10.0) * t) / np.arcsinh(np.float32(10.0))
    return np.round(curve * 255.0).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_it_stretches_16_bit_camera_frames_exactly_as_the_plain_curve_does(dtype: type) -> None:
    # Camera frames take a histogram and a lookup table; the picture must not change.
    rng = np.random.default_rng(11)
    offset = 0 if dtype == np.uint16 else -20000
    data = rng.normal(500.0 + offset, 8.0, size=(600, 800))
    data[100:110, 200:210] = 30000.0  # a saturated star
    data[300, :] = offset  # a dead row
    frame: np.ndarray = data.astype(dtype)
    assert np.array_equal(stretch_for_display(frame), _plain_stretch(frame))
    small = frame[:40, :50]  # below the table's size: computed directly
    assert np.array_equal(stretch_for_display(small), _plain_stretch(small))


def test_it_takes_the_percentiles_of_8_and_16_bit_images_as_numpy_does() -> None:
    from skysolve.engine.products.stretch import _integer_percentiles

    rng = np.random.default_rng(5)
    for dtype, mean in ((np.uint16, 500.0), (np.uint8, 60.0)):
        for n in (1, 2, 3, 101, 250_000):
            sample: np.ndarray = np.clip(rng.normal(mean, 9.0, n), 0, np.iinfo(dtype).max).astype(
                dtype
            )
            for percents in ((1.0, 99.8), (0.0, 100.0), (33.3, 50.0)):
                assert _integer_percentiles(sample, percents) == list(
                    np.percentile(sample, percents)
                )


def test_it_writes_pngs_that_read_back_pixel_for_pixel(tmp_path: Path) -> None:
    from skysolve.engine.products.pictures import _write_png

    rng = np.random.default_rng(9)
    for shape in ((1, 1, 3), (7, 13, 3), (600, 801, 3)):
        pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
        path = tmp_path / f"{shape[0]}x{shape[1]}.png"
        _write_png(Image.fromarray(pixels, mode="RGB"), path)
        with Image.open(path) as back:
            assert (back.format, back.mode, back.size) == ("PNG", "RGB", (shape[1], shape[0]))
            assert np.array_equal(np.asarray(back), pixels)


def test_it_draws_the_same_pictures_on_one_thread_as_on_several(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skysolve.engine.products import pictures

    wcs = tan_wcs(83.8, -5.4, 20.0, WIDTH, HEIGHT)
    rng = np.random.default_rng(2)
    sources = SourceList(
        x=rng.uniform(1, WIDTH, 50),
        y=rng.uniform(1, HEIGHT, 50),
        flux=rng.uniform(1, 5, 50),
        width=WIDTH,
        height=HEIGHT,
    )
    catalog_xy = np.column_stack([rng.uniform(1, WIDTH, 30), rng.uniform(1, HEIGHT, 30)])
    made = {}
    for threads in (1, 4):
        monkeypatch.setattr(pictures, "PICTURE_THREADS", threads)
        made[threads] = make_pictures(
            sky().astype(np.uint16),
            color=None,
            bottom_up=True,
            wcs=wcs,
            sources=sources,
            catalog_xy=catalog_xy,
            annotations=[
                Annotation(type="ngc", names=["NGC 1976"], pixelx=400.0, pixely=200.0, radius=30.0)
            ],
            out_dir=tmp_path / str(threads),
        )
    assert list(made[1]) == list(made[4]) and len(made[1]) == 8
    for key, path in made[1].items():
        with Image.open(path) as one, Image.open(made[4][key]) as several:
            assert np.array_equal(np.asarray(one), np.asarray(several)), key


def test_it_stretches_colour_and_keeps_8_bit_pictures() -> None:
    rng = np.random.default_rng(3)
    lum = rng.normal(100.0, 3.0, size=(30, 40))
    color = np.stack([lum, lum * 0.5, lum * 2.0], axis=-1)
    out = stretch_for_display(lum, color=color)
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    jpeg_like = rng.integers(0, 256, size=(30, 40), dtype=np.uint8)
    assert np.array_equal(stretch_for_display(jpeg_like), jpeg_like)
    nan_image = lum.copy()
    nan_image[0, 0] = np.nan
    assert stretch_for_display(nan_image)[0, 0] == 0


def test_it_rejects_badly_shaped_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="2-D"):
        stretch_for_display(np.zeros((3, 4, 5)))
    with pytest.raises(BadInputError, match="colour data must have shape"):
        stretch_for_display(np.zeros((3, 4)), color=np.zeros((3, 5, 3)))
    with pytest.raises(BadInputError, match="N x 2"):
        make_pictures(
            sky(shape=(20, 30)),
            color=None,
            bottom_up=False,
            wcs=tan_wcs(10.0, 10.0, 10.0, 30, 20),
            sources=None,
            catalog_xy=np.zeros((3, 3)),
            annotations=[],
            out_dir=tmp_path,
        )


def test_it_caps_the_full_size_of_huge_images(tmp_path: Path) -> None:
    image = np.zeros((6, 8000), dtype=np.uint8)
    image[:, 4000:4100] = 255
    out = make_pictures(
        image,
        color=None,
        bottom_up=True,
        wcs=None,
        sources=None,
        catalog_xy=None,
        annotations=[],
        out_dir=tmp_path,
    )
    with Image.open(out["extraction_full"]) as im:
        assert im.size == (4000, 3)  # binned by 2
        assert rgb_at(out["extraction_full"], 2025, 1)[0] == 255
    with Image.open(out["extraction_display"]) as im:
        assert im.size[0] == DISPLAY_MAX


def test_it_needs_no_wcs_object_changes(tmp_path: Path) -> None:
    wcs: WCS = apod4_wcs()
    before = wcs.to_header(relax=True).tostring()
    width, height = APOD4_SIZE
    make_pictures(
        sky(shape=(height, width)),
        color=None,
        bottom_up=False,
        wcs=wcs,
        sources=None,
        catalog_xy=None,
        annotations=[],
        out_dir=tmp_path,
    )
    assert wcs.to_header(relax=True).tostring() == before


@pytest.mark.parametrize(
    ("typical", "unit"),
    [(0.005, 0.01), (0.02, 0.1), (0.05, 0.1), (0.2, 1.0), (2.0, 1.0), (10.0, 10.0)],
)
def test_the_residual_scale_bar_fits_the_picture(typical: float, unit: float) -> None:
    """The bar stands for 10, 1, 0.1 or 0.01 px of residual and stays between 8 pixels
    and a quarter of the picture, however good the fit (its arrows are scaled up)."""
    width = 800
    residuals = np.array([[100.0, 100.0, typical, 0.0]] * 10)
    per_pixel = residual_gain(residuals, width)  # the picture at full size
    assert residual_bar_unit(per_pixel, width) == pytest.approx(unit)
    assert 8 <= per_pixel * unit <= width / 4
