import bz2
import gzip
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from astropy.io import fits
from PIL import Image

from skysolve.engine.inputs.formats import open_decompressed, sniff_format
from skysolve.engine.inputs.images import REC709_WEIGHTS, load_image
from skysolve.errors import (
    BadInputError,
    CorruptFileError,
    ImageTooLargeError,
    InvalidParameterError,
    UnsupportedFormatError,
)

RNG_SEED = 20240611


def _ramp(
    height: int = 30, width: int = 40, *, dtype: type = np.uint8, scale: int = 1
) -> np.ndarray:
    """Distinct values per pixel so row order and orientation are visible."""
    values = (np.arange(height * width).reshape(height, width) * scale) % np.iinfo(dtype).max
    return values.astype(dtype)


def _rgb(height: int = 30, width: int = 40) -> np.ndarray:
    return np.random.default_rng(RNG_SEED).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ REC709_WEIGHTS


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# -- FITS -----------------------------------------------------------------------


def test_it_reads_fits_rows_in_file_order(tmp_path: Path) -> None:
    data = _ramp(dtype=np.int16)
    path = tmp_path / "ramp.fits"
    fits.PrimaryHDU(data).writeto(path)
    image = load_image(path)
    assert image.format == "fits" and image.bottom_up
    assert (image.width, image.height) == (40, 30)
    assert image.data.dtype == np.float32
    # First stored row first: no flip.
    np.testing.assert_array_equal(image.data, data.astype(np.float32))
    assert image.header is not None and image.header["NAXIS1"] == 40
    assert image.color is None and image.exif == {}


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.float32, np.float64])
def test_it_reads_every_fits_bitpix(tmp_path: Path, dtype: type) -> None:
    data: np.ndarray = (np.arange(12 * 10).reshape(12, 10) * 3 - 7 * (dtype != np.uint8)).astype(
        dtype
    )
    path = tmp_path / "bitpix.fits"
    fits.PrimaryHDU(data).writeto(path)
    np.testing.assert_array_equal(load_image(path).data, data.astype(np.float32))


def test_it_keeps_unsigned_16_bit_fits_exact(tmp_path: Path) -> None:
    data = _ramp(dtype=np.uint16, scale=53)
    assert data.max() > 32767
    path = tmp_path / "u16.fits"
    fits.PrimaryHDU(data).writeto(path)  # stored as int16 with BZERO = 32768
    assert fits.getheader(path)["BZERO"] == 32768
    np.testing.assert_array_equal(load_image(path).data, data.astype(np.float32))


def test_it_applies_bscale_and_bzero(tmp_path: Path) -> None:
    stored = np.arange(20, dtype=np.int16).reshape(4, 5)
    hdu = fits.PrimaryHDU(stored)
    hdu.header["BSCALE"] = 0.5
    hdu.header["BZERO"] = 100.0
    path = tmp_path / "scaled.fits"
    hdu.writeto(path)
    np.testing.assert_allclose(load_image(path).data, stored * 0.5 + 100.0)


def test_it_takes_the_first_hdu_with_image_data(tmp_path: Path) -> None:
    data = _ramp(8, 9, dtype=np.int16)
    table = fits.BinTableHDU.from_columns([fits.Column(name="X", format="E", array=[1.0])])
    hdul = fits.HDUList([fits.PrimaryHDU(), table, fits.ImageHDU(data, name="SCI")])
    path = tmp_path / "ext.fits"
    hdul.writeto(path)
    image = load_image(path)
    np.testing.assert_array_equal(image.data, data)
    assert image.header is not None and image.header["EXTNAME"] == "SCI"


def test_it_reduces_a_three_plane_fits_cube_to_luminance(tmp_path: Path) -> None:
    rgb = _rgb(6, 7)
    path = tmp_path / "colour.fits"
    fits.PrimaryHDU(np.moveaxis(rgb, -1, 0).astype(np.int16)).writeto(path)
    image = load_image(path)
    assert image.color is not None and image.color.shape == (6, 7, 3)
    np.testing.assert_array_equal(image.color, rgb.astype(np.float32))
    np.testing.assert_allclose(image.data, _luminance(rgb), rtol=1e-6)


def test_it_takes_the_first_plane_of_other_cubes(tmp_path: Path) -> None:
    cube = np.arange(5 * 4 * 6, dtype=np.float32).reshape(5, 4, 6)
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(cube).writeto(path)
    image = load_image(path)
    assert image.color is None
    np.testing.assert_array_equal(image.data, cube[0])


def test_it_reads_tile_compressed_fits(tmp_path: Path) -> None:
    data = _ramp(50, 60, dtype=np.int32, scale=7)
    path = tmp_path / "image.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data)]).writeto(path)
    image = load_image(path)
    assert image.format == "fits"
    np.testing.assert_array_equal(image.data, data)
    assert image.header is not None and image.header["NAXIS1"] == 60


@pytest.mark.parametrize("wrapper", ["gzip", "bzip2"])
def test_it_recognises_compressed_fits_by_content(tmp_path: Path, wrapper: str) -> None:
    data = _ramp(20, 25, dtype=np.int16)
    plain = tmp_path / "plain.fits"
    fits.PrimaryHDU(data).writeto(plain)
    compress = gzip.compress if wrapper == "gzip" else bz2.compress
    path = tmp_path / "no-telling-name.dat"
    path.write_bytes(compress(plain.read_bytes()))
    assert sniff_format(path) == "fits"
    np.testing.assert_array_equal(load_image(path).data, data)


def test_it_replaces_nan_and_inf_by_the_median(tmp_path: Path) -> None:
    data = np.arange(1, 26, dtype=np.float32).reshape(5, 5)
    data[0, 0] = np.nan
    data[2, 3] = np.inf
    data[4, 4] = -np.inf
    path = tmp_path / "nan.fits"
    fits.PrimaryHDU(data).writeto(path)
    image = load_image(path)
    assert np.isfinite(image.data).all()
    finite = data[np.isfinite(data)]
    assert image.data[0, 0] == image.data[2, 3] == image.data[4, 4] == np.median(finite)
    assert np.isnan(data[0, 0])  # our input array was left alone


def test_it_rejects_an_all_nan_image(tmp_path: Path) -> None:
    path = tmp_path / "nan.fits"
    fits.PrimaryHDU(np.full((4, 4), np.nan, dtype=np.float32)).writeto(path)
    with pytest.raises(BadInputError, match="no finite pixel"):
        load_image(path)


def test_it_rejects_a_fits_without_image_data(tmp_path: Path) -> None:
    path = tmp_path / "table.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="X", format="E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(BadInputError, match="no image data"):
        load_image(path)


def test_it_rejects_a_one_pixel_fits(tmp_path: Path) -> None:
    path = tmp_path / "dot.fits"
    fits.PrimaryHDU(np.ones((1, 1), dtype=np.float32)).writeto(path)
    with pytest.raises(BadInputError, match="1x1 pixels"):
        load_image(path)


def test_it_rejects_a_truncated_fits(tmp_path: Path) -> None:
    path = tmp_path / "cut.fits"
    fits.PrimaryHDU(_ramp(100, 100, dtype=np.int16)).writeto(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="truncated"):
        load_image(path)
    path.write_bytes(raw[:1000])  # not even a whole header
    with pytest.raises(CorruptFileError, match="FITS"):
        load_image(path)


def test_it_stops_scanning_a_fits_with_thousands_of_hdus(tmp_path: Path) -> None:
    primary = fits.PrimaryHDU().header.tostring().encode("ascii")
    empty_extension = fits.ImageHDU().header.tostring().encode("ascii")
    path = tmp_path / "many.fits"
    path.write_bytes(primary + empty_extension * 2000)
    with pytest.raises(BadInputError, match="first 1000 HDUs"):
        load_image(path)


def test_it_checks_fits_dimensions_before_reading(tmp_path: Path) -> None:
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = 16
    header["NAXIS"] = 2
    header["NAXIS1"] = 100_000
    header["NAXIS2"] = 100_000
    path = tmp_path / "huge.fits"
    path.write_bytes(header.tostring().encode("ascii"))  # no data at all
    with pytest.raises(ImageTooLargeError, match="100000x100000"):
        load_image(path)


# -- Pillow formats -------------------------------------------------------------------


def test_it_reads_a_grey_png_top_row_first(tmp_path: Path) -> None:
    data = _ramp()
    path = tmp_path / "grey.png"
    Image.fromarray(data).save(path)
    image = load_image(path)
    assert image.format == "png" and not image.bottom_up and image.header is None
    np.testing.assert_array_equal(image.data, data)


def test_it_keeps_16_bit_png_precision(tmp_path: Path) -> None:
    data = _ramp(dtype=np.uint16, scale=53)
    assert len(np.unique(data % 256)) > 1 and data.max() > 255
    path = tmp_path / "deep.png"
    Image.fromarray(data).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I;16")
    np.testing.assert_array_equal(load_image(path).data, data.astype(np.float32))


def test_it_reduces_rgb_to_rec709_luminance_and_keeps_colour(tmp_path: Path) -> None:
    rgb = _rgb()
    path = tmp_path / "colour.png"
    Image.fromarray(rgb).save(path)
    image = load_image(path)
    assert image.color is not None and image.color.shape == (30, 40, 3)
    np.testing.assert_array_equal(image.color, rgb)
    np.testing.assert_allclose(image.data, _luminance(rgb), rtol=1e-6)


def test_it_drops_alpha(tmp_path: Path) -> None:
    rgba = np.dstack([_rgb(), np.full((30, 40), 7, dtype=np.uint8)])
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    image = load_image(path)
    np.testing.assert_allclose(image.data, _luminance(rgba[:, :, :3]), rtol=1e-6)
    grey_alpha = tmp_path / "la.png"
    Image.fromarray(_ramp()).convert("LA").save(grey_alpha)
    np.testing.assert_array_equal(load_image(grey_alpha).data, _ramp())


def test_it_reads_jpeg_close_to_the_original(tmp_path: Path) -> None:
    # A smooth gradient survives JPEG nearly unchanged; check orientation and values.
    y, x = np.mgrid[0:48, 0:64]
    data = (2 * y + x).astype(np.uint8)
    path = tmp_path / "grad.jpg"
    Image.fromarray(data).save(path, quality=98)
    image = load_image(path)
    assert image.format == "jpeg" and image.data.shape == (48, 64)
    assert np.abs(image.data - data).max() <= 3
    assert image.data[0, 0] < image.data[-1, 0]  # top row first


def test_it_reads_gif_palette_as_luminance(tmp_path: Path) -> None:
    grey = _ramp(dtype=np.uint8)
    path = tmp_path / "grey.gif"
    Image.fromarray(grey).convert("P").save(path)
    image = load_image(path)
    assert image.format == "gif" and image.color is None
    with Image.open(path) as gif:
        expected = np.asarray(gif.convert("L"), dtype=np.float32)
    np.testing.assert_array_equal(image.data, expected)

    colour = tmp_path / "colour.gif"
    Image.fromarray(_rgb()).convert("P").save(colour)
    loaded = load_image(colour)
    assert loaded.color is not None
    with Image.open(colour) as gif:
        rgb = np.asarray(gif.convert("RGB"))
    np.testing.assert_allclose(loaded.data, _luminance(rgb), rtol=1e-6)


@pytest.mark.parametrize(("fmt", "suffix"), [("bmp", ".bmp"), ("webp", ".webp")])
def test_it_reads_bmp_and_lossless_webp(tmp_path: Path, fmt: str, suffix: str) -> None:
    rgb = _rgb()
    path = tmp_path / f"colour{suffix}"
    if fmt == "webp":
        Image.fromarray(rgb).save(path, lossless=True)
    else:
        Image.fromarray(rgb).save(path)
    image = load_image(path)
    assert image.format == fmt and sniff_format(path) == fmt
    np.testing.assert_array_equal(image.color, rgb)


def test_it_decodes_exif_tags(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS 6D"
    sub = exif.get_ifd(0x8769)
    sub[0x920A] = 135.0  # FocalLength
    sub[0xA405] = 135  # FocalLengthIn35mmFilm
    sub[0x9003] = "2024:03:05 22:10:00"  # DateTimeOriginal
    path = tmp_path / "camera.jpg"
    Image.fromarray(_rgb()).save(path, exif=exif)
    tags = load_image(path).exif
    assert tags["Make"] == "Canon" and tags["Model"] == "Canon EOS 6D"
    assert tags["FocalLength"] == pytest.approx(135.0)
    assert tags["FocalLengthIn35mmFilm"] == 135
    assert tags["DateTimeOriginal"] == "2024:03:05 22:10:00"


# -- TIFF -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint32, np.float32])
def test_it_reads_tiff_samples_exactly(tmp_path: Path, dtype: type) -> None:
    data: np.ndarray
    if np.issubdtype(dtype, np.floating):
        data = np.random.default_rng(RNG_SEED).normal(1000.0, 50.0, (30, 40)).astype(dtype)
    else:
        # Spread over the type's range but below 2**24, so float32 holds them exactly.
        top = min(int(np.iinfo(dtype).max), (1 << 24) - 1)
        data = (np.arange(30 * 40, dtype=np.int64).reshape(30, 40) * 9973 % top).astype(dtype)
    path = tmp_path / "samples.tif"
    tifffile.imwrite(path, data)
    image = load_image(path)
    assert image.format == "tiff" and not image.bottom_up
    np.testing.assert_array_equal(image.data, data.astype(np.float32))


def test_it_reads_rgb_tiff_contiguous_and_planar(tmp_path: Path) -> None:
    rgb = _rgb()
    contiguous = tmp_path / "contig.tif"
    planar = tmp_path / "planar.tif"
    tifffile.imwrite(contiguous, rgb, photometric="rgb")
    tifffile.imwrite(planar, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    for path in (contiguous, planar):
        image = load_image(path)
        np.testing.assert_array_equal(image.color, rgb)
        np.testing.assert_allclose(image.data, _luminance(rgb), rtol=1e-6)


def test_it_reads_16_bit_rgb_tiff_exactly(tmp_path: Path) -> None:
    rgb = (_rgb().astype(np.uint16) * 257 + 3).astype(np.uint16)
    path = tmp_path / "deep.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    np.testing.assert_array_equal(load_image(path).color, rgb.astype(np.float32))


def test_it_falls_back_to_pillow_for_lzw_tiff(tmp_path: Path) -> None:
    data = _ramp(dtype=np.uint16, scale=53)
    path = tmp_path / "lzw.tif"
    Image.fromarray(data).save(path, compression="tiff_lzw")
    np.testing.assert_array_equal(load_image(path).data, data.astype(np.float32))


def test_it_checks_tiff_dimensions_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.tif"
    # A real 200x200 TIFF; the limit is what makes it "too large".
    tifffile.imwrite(path, np.zeros((200, 200), dtype=np.uint8))
    with pytest.raises(ImageTooLargeError, match="200x200"):
        load_image(path, max_pixels=10_000)


# -- the shared real images -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size"),
    [("apod2.jpg", (800, 600)), ("apod3.jpg", (800, 600)), ("apod4.jpg", (719, 507))],
)
def test_it_loads_the_shared_sky_images(
    shared_images: Path, name: str, size: tuple[int, int]
) -> None:
    image = load_image(shared_images / name)
    assert image.format == "jpeg"
    assert (image.width, image.height) == size
    assert image.data.shape == (size[1], size[0])
    assert np.isfinite(image.data).all() and image.data.max() > image.data.min()


# -- errors ---------------------------------------------------------------------


def test_it_rejects_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.fits"
    path.write_bytes(b"")
    with pytest.raises(BadInputError, match="empty"):
        load_image(path)
    assert sniff_format(path) is None


def test_it_names_what_it_saw_in_an_unknown_format(tmp_path: Path) -> None:
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(RNG_SEED).bytes(4096).replace(b"\x1f\x8b", b"xx"))
    with pytest.raises(UnsupportedFormatError, match="unrecognised file format"):
        load_image(noise)
    text = tmp_path / "notes.txt"
    text.write_text("hello sky\n")
    with pytest.raises(UnsupportedFormatError, match="text starting with 'hello sky'"):
        load_image(text)
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + bytes(100))
    with pytest.raises(UnsupportedFormatError, match="PDF document"):
        load_image(pdf)
    assert sniff_format(noise) is None and sniff_format(pdf) is None


def test_it_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="cannot open"):
        load_image(tmp_path / "nowhere.fits")


@pytest.mark.parametrize(("suffix", "fmt"), [(".jpg", "JPEG"), (".png", "PNG"), (".gif", "GIF")])
def test_it_rejects_truncated_pillow_images(tmp_path: Path, suffix: str, fmt: str) -> None:
    path = tmp_path / f"cut{suffix}"
    Image.fromarray(_rgb(64, 64)).save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match=fmt):
        load_image(path)


def test_it_rejects_a_truncated_tiff(tmp_path: Path) -> None:
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, _ramp(64, 64))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptFileError, match="TIFF"):
        load_image(path)


def test_it_rejects_a_png_declaring_a_huge_size_without_allocating(tmp_path: Path) -> None:
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)  # 8-bit grey
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(1000)))
        + _png_chunk(b"IEND", b"")
    )
    path = tmp_path / "huge.png"
    path.write_bytes(png)
    with pytest.raises(ImageTooLargeError, match="100000x100000"):
        load_image(path)


def test_it_honours_max_pixels_beyond_pillows_bomb_warning(tmp_path: Path) -> None:
    # Pillow warns (an error under pytest) above Image.MAX_IMAGE_PIXELS and refuses
    # above twice that; lowering it shows that max_pixels alone decides.
    path = tmp_path / "ok.png"
    Image.fromarray(_ramp()).save(path)
    original = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 100
    try:
        assert load_image(path).data.shape == (30, 40)
    finally:
        Image.MAX_IMAGE_PIXELS = original


def test_it_rejects_images_smaller_than_two_by_two(tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    Image.fromarray(np.zeros((1, 1), dtype=np.uint8)).save(path)
    with pytest.raises(BadInputError, match="at least 2x2"):
        load_image(path)


def test_it_rejects_bad_limits(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="max_pixels"):
        load_image(tmp_path / "x.fits", max_pixels=0)


def test_it_rejects_a_damaged_gzip_stream(tmp_path: Path) -> None:
    plain = tmp_path / "plain.fits"
    fits.PrimaryHDU(_ramp(100, 100, dtype=np.int16)).writeto(plain)
    packed = gzip.compress(plain.read_bytes())
    path = tmp_path / "cut.fits.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(CorruptFileError, match="gzip stream is damaged or truncated"):
        load_image(path)


def test_it_rejects_a_file_compressed_twice(tmp_path: Path) -> None:
    path = tmp_path / "twice.gz"
    path.write_bytes(gzip.compress(gzip.compress(b"SIMPLE  =")))
    with pytest.raises(UnsupportedFormatError, match="compressed twice"):
        load_image(path)


def _bomb(path: Path, *, header: bytes, total: int, stream: str) -> None:
    """A valid multi-member gzip (or multi-stream bzip2) inflating to ``total`` bytes.

    Members are concatenated copies of one compressed block of zeros, so building
    gigabytes takes a fraction of a second; decoders read them as one stream.
    """
    block = 64 * 1024 * 1024
    compress = gzip.compress if stream == "gzip" else bz2.compress
    with path.open("wb") as out:
        out.write(compress(header))
        member = compress(bytes(block))
        for _ in range(total // block):
            out.write(member)


@pytest.mark.slow
def test_it_stops_inflating_a_gzip_bomb_at_the_limit(tmp_path: Path) -> None:
    # 3 GB of zeros behind a valid FITS header: looks like a FITS, must not be inflated whole.
    header = fits.PrimaryHDU(np.zeros((10, 10), dtype=np.uint8)).header.tostring().encode()
    path = tmp_path / "bomb.fits.gz"
    _bomb(path, header=header, total=3 * 1024**3, stream="gzip")
    assert path.stat().st_size < 5_000_000
    assert sniff_format(path) == "fits"
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError, match="inflates to more than the limit"):
            load_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 1024**2  # a bounded buffer, not the 2 GB limit


def test_it_stops_inflating_a_bzip2_bomb_at_the_limit(tmp_path: Path) -> None:
    header = fits.PrimaryHDU(np.zeros((10, 10), dtype=np.uint8)).header.tostring().encode()
    path = tmp_path / "bomb.fits.bz2"
    _bomb(path, header=header, total=1024**3, stream="bzip2")
    with pytest.raises(ImageTooLargeError, match="bzip2-compressed file inflates"):
        load_image(path, max_bytes=100_000_000)


def test_it_spills_large_decompressed_files_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skysolve.engine.inputs.formats as formats

    monkeypatch.setattr(formats, "_IN_MEMORY_LIMIT", 10_000)
    data = _ramp(100, 120, dtype=np.int16)
    plain = tmp_path / "plain.fits"
    fits.PrimaryHDU(data).writeto(plain)
    path = tmp_path / "big.fits.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    np.testing.assert_array_equal(load_image(path).data, data)
    with open_decompressed(path) as fh:
        assert fh.read() == plain.read_bytes()


def test_it_rejects_a_plain_file_over_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "plain.fits"
    fits.PrimaryHDU(_ramp(100, 100, dtype=np.int16)).writeto(path)
    with pytest.raises(ImageTooLargeError, match="bytes"):
        load_image(path, max_bytes=1000)
