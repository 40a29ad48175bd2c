import gzip
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from skysolve.engine.inputs.starlists import looks_like_star_list, read_star_list, star_list_from_xy
from skysolve.errors import BadInputError, ImageTooLargeError, InvalidParameterError


def _xyls(
    path: Path,
    columns: dict[str, np.ndarray],
    *,
    table_header: dict[str, int] | None = None,
    primary_header: dict[str, int] | None = None,
) -> Path:
    cols = [fits.Column(name=name, format="D", array=values) for name, values in columns.items()]
    table = fits.BinTableHDU.from_columns(cols)
    primary = fits.PrimaryHDU()
    for key, value in (table_header or {}).items():
        table.header[key] = value
    for key, value in (primary_header or {}).items():
        primary.header[key] = value
    fits.HDUList([primary, table]).writeto(path)
    return path


def _field(n: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.uniform(1, 800, n), rng.uniform(1, 600, n), rng.uniform(10, 1000, n)


# -- FITS tables ------------------------------------------------------------------


def test_it_reads_an_xyls_table_brightest_first(tmp_path: Path) -> None:
    x, y, flux = _field()
    path = _xyls(
        tmp_path / "field.xyls",
        {"X": x, "Y": y, "FLUX": flux},
        table_header={"IMAGEW": 800, "IMAGEH": 600},
    )
    sources = read_star_list(path)
    order = np.argsort(-flux, kind="stable")
    np.testing.assert_array_equal(sources.x, x[order])  # coordinates kept as given
    np.testing.assert_array_equal(sources.y, y[order])
    np.testing.assert_array_equal(sources.flux, flux[order])
    assert (sources.width, sources.height) == (800, 600)


def test_it_matches_column_names_case_insensitively_and_sextractor_style(tmp_path: Path) -> None:
    x, y, flux = _field(5)
    path = _xyls(tmp_path / "cat.fits", {"x_image": x, "Y_IMAGE": y, "flux_auto": flux})
    sources = read_star_list(path)
    assert np.array_equal(np.sort(sources.x), np.sort(x)) and sources.flux[0] == flux.max()


def test_it_turns_magnitudes_into_flux(tmp_path: Path) -> None:
    mag = np.array([12.0, 8.0, 10.0])
    path = _xyls(tmp_path / "mag.axy", {"X": np.array([1.0, 2, 3]), "Y": np.ones(3), "MAG": mag})
    sources = read_star_list(path)
    np.testing.assert_array_equal(sources.x, [2.0, 3.0, 1.0])  # brightest (smallest mag) first
    np.testing.assert_allclose(sources.flux, 10 ** (-0.4 * np.array([8.0, 10.0, 12.0])))


def test_it_keeps_file_order_without_flux(tmp_path: Path) -> None:
    x, y, _ = _field(10)
    sources = read_star_list(_xyls(tmp_path / "plain.xyls", {"X": x, "Y": y}))
    np.testing.assert_array_equal(sources.x, x)
    np.testing.assert_array_equal(sources.y, y)


def test_it_takes_the_image_size_from_arguments_then_headers_then_extent(tmp_path: Path) -> None:
    x = np.array([10.0, 799.2])
    y = np.array([5.0, 450.5])
    in_primary = _xyls(
        tmp_path / "p.xyls", {"X": x, "Y": y}, primary_header={"IMAGEW": 1024, "IMAGEH": 768}
    )
    assert (read_star_list(in_primary).width, read_star_list(in_primary).height) == (1024, 768)
    given = read_star_list(in_primary, image_width=2000, image_height=1500)
    assert (given.width, given.height) == (2000, 1500)
    bare = read_star_list(_xyls(tmp_path / "b.xyls", {"X": x, "Y": y}))
    assert (bare.width, bare.height) == (801, 452)  # ceil(max) + 1


def test_it_reads_a_gzipped_table(tmp_path: Path) -> None:
    x, y, flux = _field(8)
    plain = _xyls(tmp_path / "f.xyls", {"X": x, "Y": y, "FLUX": flux})
    packed = tmp_path / "f.xyls.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert len(read_star_list(packed)) == 8 and looks_like_star_list(packed)


def test_it_rejects_a_table_without_xy_columns(tmp_path: Path) -> None:
    path = _xyls(tmp_path / "radec.fits", {"RA": np.ones(3), "DEC": np.ones(3)})
    with pytest.raises(BadInputError, match="no table with X and Y columns"):
        read_star_list(path)


def test_it_rejects_nan_coordinates_in_a_table(tmp_path: Path) -> None:
    path = _xyls(tmp_path / "nan.xyls", {"X": np.array([1.0, np.nan]), "Y": np.ones(2)})
    with pytest.raises(BadInputError, match="X in table row 2"):
        read_star_list(path)


def test_it_rejects_an_empty_table(tmp_path: Path) -> None:
    path = _xyls(tmp_path / "empty.xyls", {"X": np.array([]), "Y": np.array([])})
    with pytest.raises(BadInputError, match="no rows"):
        read_star_list(path)


def test_it_limits_the_number_of_table_rows(tmp_path: Path) -> None:
    x, y, _ = _field(50)
    path = _xyls(tmp_path / "many.xyls", {"X": x, "Y": y})
    with pytest.raises(ImageTooLargeError, match="50 rows, more than the limit of 20"):
        read_star_list(path, max_sources=20)


# -- text ---------------------------------------------------------------------------


def test_it_reads_text_with_comments_and_mixed_separators(tmp_path: Path) -> None:
    path = tmp_path / "stars.txt"
    path.write_text(
        "# x y flux\n# from my own extractor\n\n10.5 20.25 100\n30,40,500\n 5\t6\t 50 \n"
    )
    sources = read_star_list(path, image_width=64, image_height=48)
    np.testing.assert_array_equal(sources.x, [30.0, 10.5, 5.0])
    np.testing.assert_array_equal(sources.y, [40.0, 20.25, 6.0])
    np.testing.assert_array_equal(sources.flux, [500.0, 100.0, 50.0])
    assert (sources.width, sources.height) == (64, 48)


def test_it_reads_two_column_text_in_order(tmp_path: Path) -> None:
    path = tmp_path / "xy.csv"
    path.write_text("x,y\n3,4\n1,2\n")
    sources = read_star_list(path)
    np.testing.assert_array_equal(sources.x, [3.0, 1.0])
    assert (sources.width, sources.height) == (4, 5)


def test_it_names_the_line_of_non_numeric_text(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("# header\n1 2 3\n4 five 6\n")
    with pytest.raises(BadInputError, match="line 3 is not 'x y \\[flux\\]' numbers"):
        read_star_list(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2 3\n4 5\n", "line 2 has 2 columns where earlier lines have 3"),
        ("1 2\nnan 3\n", "line 2 has a NaN or infinite value"),
        ("1 2\n7\n", "line 2 has one number"),
        ("# nothing here\n\n", "no 'x y \\[flux\\]' lines"),
    ],
)
def test_it_validates_text_lines(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "list.txt"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        read_star_list(path)


def test_it_limits_the_number_of_text_rows(tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(f"{i} {i}\n" for i in range(1, 30)))
    with pytest.raises(ImageTooLargeError, match="limit of 10 rows"):
        read_star_list(path, max_sources=10)


def test_it_rejects_binary_data_and_empty_files(tmp_path: Path) -> None:
    binary = tmp_path / "noise.bin"
    binary.write_bytes(np.random.default_rng(3).bytes(2000))
    with pytest.raises(BadInputError):
        read_star_list(binary)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(BadInputError, match="empty"):
        read_star_list(empty)


# -- lists ---------------------------------------------------------------------------


def test_it_builds_a_list_from_python_sequences() -> None:
    sources = star_list_from_xy([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [5.0, 50.0, 0.5])
    np.testing.assert_array_equal(sources.x, [2.0, 1.0, 3.0])
    np.testing.assert_array_equal(sources.flux, [50.0, 5.0, 0.5])
    assert (sources.width, sources.height) == (4, 7)


def test_it_does_not_mutate_its_inputs() -> None:
    x = np.array([3.0, 1.0])
    y = np.array([1.0, 2.0])
    flux = np.array([1.0, 9.0])
    sources = star_list_from_xy(x, y, flux, image_width=10, image_height=10)
    sources.x[0] = -1.0
    np.testing.assert_array_equal(x, [3.0, 1.0])
    np.testing.assert_array_equal(flux, [1.0, 9.0])


@pytest.mark.parametrize(
    ("x", "y", "flux", "message"),
    [
        ([], [], None, "empty"),
        ([1.0, 2.0], [1.0], None, "x has 2 values but y has 1"),
        ([1.0], [1.0], [1.0, 2.0], "flux has 2 values"),
        ([1.0, float("nan")], [1.0, 2.0], None, "x value number 2 is not a finite number"),
        ([1.0], [float("inf")], None, "y value number 1"),
        (["a"], [1.0], None, "x must be a list of numbers"),
        ("12", [1.0], None, "not a string"),
    ],
)
def test_it_validates_xy_sequences(x: list, y: list, flux: list | None, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        star_list_from_xy(x, y, flux)


def test_it_rejects_a_bad_image_size() -> None:
    with pytest.raises(InvalidParameterError, match="image_width"):
        star_list_from_xy([1.0], [1.0], image_width=0)


# -- detection -------------------------------------------------------------------------


def test_it_tells_star_lists_from_images(tmp_path: Path) -> None:
    x, y, flux = _field(5)
    table = _xyls(tmp_path / "f.xyls", {"X": x, "Y": y, "FLUX": flux})
    text = tmp_path / "f.txt"
    text.write_text("# x y\n1 2\n3 4\n")
    image = tmp_path / "f.fits"
    fits.PrimaryHDU(np.zeros((4, 4), dtype=np.float32)).writeto(image)
    jpeg = tmp_path / "f.jpg"
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(jpeg)
    radec = _xyls(tmp_path / "r.fits", {"RA": np.ones(2), "DEC": np.ones(2)})
    prose = tmp_path / "notes.txt"
    prose.write_text("these are not stars\n")
    assert looks_like_star_list(table) and looks_like_star_list(text)
    for other in (image, jpeg, radec, prose, tmp_path / "missing.txt"):
        assert not looks_like_star_list(other), other.name


def test_it_judges_a_compressed_fits_image_from_its_first_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = fits.PrimaryHDU(np.zeros((64, 64), dtype=np.float32))
    x, y, _ = _field(5)
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="X", format="D", array=x), fits.Column(name="Y", format="D", array=y)]
    )
    packed = tmp_path / "image.fits.gz"
    buffer = tmp_path / "image.fits"
    fits.HDUList([image, table]).writeto(buffer)
    packed.write_bytes(gzip.compress(buffer.read_bytes()))

    def inflate_everything(*args: object, **kwargs: object) -> None:
        raise AssertionError("the whole file was inflated")

    monkeypatch.setattr("skysolve.engine.inputs.starlists.open_decompressed", inflate_everything)
    assert not looks_like_star_list(packed)
    assert not looks_like_star_list(buffer)
