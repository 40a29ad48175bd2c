"""The FITS header and plain image read without astropy give what astropy gives."""

from __future__ import annotations

import gzip
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from skysolve.engine.inputs.fitscards import (
    HeaderCards,
    astropy_header,
    read_headers,
    read_plain_image,
    read_table_columns,
    write_plain_image,
)
from skysolve.engine.inputs.images import load_image
from tests.conftest import fresh_python

RNG = np.random.default_rng(17)

#: (BITPIX, BSCALE, BZERO) cases: plain, astropy's unsigned conventions, scaled.
SCALINGS = [
    (8, None, None),
    (8, 1, -128),
    (8, 0.5, 3),
    (16, None, None),
    (16, 1, 32768),
    (16, 0.25, 100.0),
    (16, 2, 0),
    (32, None, None),
    (32, 1, 2147483648),
    (32, 1.5, -7),
    (64, None, None),
    (64, 1, 9223372036854775808),
    (-32, None, None),
    (-32, 2.0, 1.0),
    (-64, None, None),
    (-64, 0.1, 10),
]
_TYPES: dict[int, type[np.number]] = {
    8: np.uint8,
    16: np.int16,
    32: np.int32,
    64: np.int64,
    -32: np.float32,
    -64: np.float64,
}


def _raw(bitpix: int, shape: tuple[int, ...]) -> np.ndarray:
    kind = _TYPES[bitpix]
    if bitpix < 0:
        return RNG.normal(100.0, 30.0, shape).astype(kind)
    info = np.iinfo(kind)  # type: ignore[type-var]
    return RNG.integers(info.min, info.max, shape, dtype=kind, endpoint=True)


def _fits_bytes(data: np.ndarray, cards: dict[str, object]) -> bytes:
    """A FITS file of ``data`` stored as is, with ``cards`` added to its header."""
    hdu = fits.PrimaryHDU(data=data)
    for key, value in cards.items():
        hdu.header[key] = value
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdu.writeto(out, output_verify="silentfix")
    return out.getvalue()


def _astropy_data(blob: bytes) -> tuple[np.ndarray, fits.Header]:
    with fits.open(io.BytesIO(blob), memmap=False) as hdul:
        return np.array(hdul[0].data), hdul[0].header.copy()


@pytest.mark.parametrize(("bitpix", "bscale", "bzero"), SCALINGS)
@pytest.mark.parametrize("shape", [(5, 7), (3, 5, 7), (4, 5, 7), (2, 3, 5, 7)])
def test_it_reads_the_array_astropy_reads(
    bitpix: int, bscale: float | None, bzero: float | None, shape: tuple[int, ...]
) -> None:
    cards: dict[str, object] = {}
    if bscale is not None:
        cards.update(BSCALE=bscale, BZERO=bzero)
    blob = _fits_bytes(_raw(bitpix, shape), cards)
    expected, _ = _astropy_data(blob)
    read = read_plain_image(io.BytesIO(blob), file_size=len(blob))
    assert read is not None
    data, header = read
    colour = len(shape) == 3 and shape[0] == 3
    first = expected if colour else expected[(0,) * (len(shape) - 2)]
    assert (data.dtype.kind, data.dtype.itemsize) == (first.dtype.kind, first.dtype.itemsize)
    np.testing.assert_array_equal(data, first)
    assert header["BITPIX"] == bitpix


@pytest.mark.parametrize(("bitpix", "bscale", "bzero"), SCALINGS)
def test_load_image_gives_the_same_luminance_and_colour_as_through_astropy(
    tmp_path: Path, bitpix: int, bscale: float | None, bzero: float | None
) -> None:
    cards: dict[str, object] = {"OBJECT": "M 31"}
    if bscale is not None:
        cards.update(BSCALE=bscale, BZERO=bzero)
    for shape in [(6, 9), (3, 6, 9)]:
        path = tmp_path / f"f{len(shape)}.fits"
        path.write_bytes(_fits_bytes(_raw(bitpix, shape), cards))
        # The same file with an empty primary HDU first: astropy reads it.
        with fits.open(path) as hdul:
            image_hdu = fits.ImageHDU(data=hdul[0].data, header=hdul[0].header)
            via = tmp_path / f"ext{len(shape)}.fits"
            fits.HDUList([fits.PrimaryHDU(), image_hdu]).writeto(via, overwrite=True)
        plain, other = load_image(path), load_image(via)
        assert isinstance(plain.header, HeaderCards)
        assert isinstance(other.header, fits.Header)
        np.testing.assert_array_equal(plain.data, other.data)
        if len(shape) == 3:
            assert plain.color is not None and other.color is not None
            np.testing.assert_array_equal(plain.color, other.color)
        assert plain.header["OBJECT"] == other.header["OBJECT"] == "M 31"
        assert plain.bottom_up and plain.format == "fits"


def test_header_values_are_astropys() -> None:
    header = fits.Header()
    values: list[object] = [
        True, False, 0, -5, 123456789012345, 1.5, -2.5e-12, 6.02e23, 1e300, "text",
        "  leading", "trailing   ", "it's", "", "a/b", "x" * 60, 2_000_000_000,
    ]  # fmt: skip
    for n, value in enumerate(values):
        header[f"KEY{n}"] = (value, "c / s") if len(str(value)) < 40 else value
    header["COMMENT"] = "a comment"
    header["HISTORY"] = "some history"
    header[""] = "blank keyword"
    header["DUP"] = 1
    header.append(("DUP", 2))
    header["DATE-OBS"] = "2016-09-09T08:12:26"
    header["LOWER"] = 7
    cards = HeaderCards.parse(header.tostring())
    assert cards is not None
    for key in header:
        if key in ("COMMENT", "HISTORY", ""):
            continue
        assert cards[key] == header[key], key
        assert type(cards[key]) is type(header[key]), key
    assert cards.get("dup") == 1 and "lower" in cards and "COMMENT" not in cards
    assert cards.get("MISSING", "x") == "x"
    assert list(astropy_header(cards).items()) == list(header.items())


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.0D+02", 100.0),
        ("1.5E3", 1500.0),
        ("-.5", -0.5),
        ("+7", 7),
        ("5.", 5.0),
        ("'O''Neil '", "O'Neil"),
        ("T", True),
    ],
)
def test_free_format_values_read_as_astropy_reads_them(text: str, value: object) -> None:
    card = f"{'KEY':8}= {text:<20} / c".ljust(80)
    cards = HeaderCards.parse(card + "END".ljust(80))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = fits.Card.fromstring(card).value
    assert cards is not None
    assert cards["KEY"] == expected == value
    assert type(cards["KEY"]) is type(expected)


@pytest.mark.parametrize(
    "card",
    [
        "KEY     = (1.0, 2.0)",  # complex
        "KEY     =",  # undefined
        "KEY     = 'unterminated",
        "KEY     = 1 2",
        "KEY     = nan",
        "CONTINUE  'more'",  # after no string card
        "HIERARCH  = 1",  # no key
        "HIERARCH ESO.DET = 1",  # astropy's record-valued key syntax
        "hierarch ESO DET = 1",
        "DP1     = 'AXIS.1: 1'",  # record-valued: astropy's DP1.AXIS.1 = 1.0
        "KEY= 1",  # astropy takes a value indicator before column 9
        "HIERARCH no value indicator",
        "key     = 1",
    ],
)
def test_cards_it_cannot_read_exactly_leave_the_header_to_astropy(card: str) -> None:
    assert HeaderCards.parse(card.ljust(80) + "END".ljust(80)) is None


def assert_read_as_astropy_reads(text: str) -> HeaderCards:
    """Every keyword's value and type as astropy's, none more, none less."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.Header.fromstring(text)
    cards = HeaderCards.parse(text)
    assert cards is not None, text
    keys = {card.keyword.upper() for card in header.cards} - {"COMMENT", "HISTORY", ""}
    assert set(cards) == keys
    for key in keys:
        assert cards[key] == header[key], key
        assert type(cards[key]) is type(header[key]), key
    return cards


@pytest.mark.parametrize(
    "card",
    [
        "HIERARCH ESO DET CHIP NAME = 'CCD-44' / the chip",
        "HIERARCH ESO TEL AIRM START = 1.234 / airmass",
        "HIERARCH ESO DET WIN1 NX = 2048",
        "HIERARCH ESO DET WIN1 NX=-7",
        "HIERARCH ESO INS FILT1 ID = T",
        "HIERARCH ESO OBS SKIPPED =F / no",
        "HIERARCH ASTAP_ZEMOSAIC_SOLVED = T / ASTAP_ZeMosaic solution",
        "HIERARCH eso det  id= 1.5D2",  # lower case, two blanks inside: kept
        "HIERARCH ESO PRO REC1 PARAM1 VALUE = 'a=b, c=d' / an = in the value",
        "HIERARCH ESO OBS NAME = 'it''s' / a quote",
        "HIERARCH A VERY LONG KEYWORD OF MANY WORDS THAT FILL THE CARD = 1",
        "HIERARCH SHORT = 'x'",
    ],
)
def test_hierarch_cards_read_as_astropy_reads_them(card: str) -> None:
    cards = assert_read_as_astropy_reads(
        "SIMPLE  =                    T".ljust(80) + card.ljust(80) + "END".ljust(80)
    )
    assert len(cards) == 2


def test_long_strings_read_as_astropy_reads_them() -> None:
    header = fits.Header()
    header["LONG"] = ("a long string " * 12, "and a comment " * 4)
    header["QUOTES"] = "'quoted' and don''t " * 6 + "&"
    header["AMPS"] = "& " * 70
    header["HIERARCH ESO OBS LONG NAME"] = "x" * 100
    header["AFTER"] = 1
    text = header.tostring()
    assert text.count("CONTINUE") >= 8
    assert_read_as_astropy_reads(text)
    by_hand = [
        "SHORT   = 'one &'",
        "CONTINUE  'two&'  / first",
        "CONTINUE  '' / second",
        "CONTINUE  'three'",
        "NOAMP   = 'no ampersand'",
        "CONTINUE  ' still joined'",
        "END",
    ]
    cards = assert_read_as_astropy_reads("".join(c.ljust(80) for c in by_hand))
    assert cards["SHORT"] == "one twothree"


@pytest.mark.parametrize(
    "cards",
    [
        ["KEY     = 1", "CONTINUE  'more'"],  # a number cannot go on
        ["COMMENT   text", "CONTINUE  'more'"],
        ["KEY     = 'a&'", "CONTINUE  / no string"],
        ["KEY     = 'a&'", "CONTINUE'more'"],
        ["DP1     = 'AXIS.1: 1'", "CONTINUE  'more'"],  # astropy fails on it
        ["ESO-LOG 03:04:08>-START EXPO", "CONTINUE  'more'"],
    ],
)
def test_continue_cards_it_cannot_read_exactly_leave_the_header_to_astropy(
    cards: list[str],
) -> None:
    assert HeaderCards.parse("".join(c.ljust(80) for c in [*cards, "END"])) is None


@pytest.mark.parametrize(
    "card",
    [
        "ESO-LOG 03:04:08>-START EXPO EMMI RED          / Start exp. on EMMI Red CC",
        "ESO-LOG 00:00:00> DATE         = '1992-10-26'  / Mon Oct 26, 1992",
        "KEY       no value indicator",
        "KEY      =1",
        "DATE-OBS'1992'",
    ],
)
def test_cards_astropy_calls_invalid_read_as_astropy_reads_them(card: str) -> None:
    """No value indicator in the first nine columns: the rest is the value."""
    cards = assert_read_as_astropy_reads(card.ljust(80) + "END".ljust(80))
    assert cards[card[:8].rstrip()] == card[8:].rstrip()


@pytest.mark.parametrize(
    "value",
    [
        "'a'' / b'",  # astropy's string ends at the quote before " /"
        "'it'' s'",
        "'A: b'",  # not a record value: a string
        "'it''s ok' / c 'quoted' comment",
    ],
)
def test_strings_end_where_astropys_end(value: str) -> None:
    assert_read_as_astropy_reads(f"KEY     = {value}".ljust(80) + "END".ljust(80))


def test_every_hdus_header_and_data_offset_are_astropys(tmp_path: Path) -> None:
    table = fits.BinTableHDU.from_columns([fits.Column(name="X", format="E", array=np.ones(7))])
    image = fits.ImageHDU(data=_raw(16, (9, 11)))
    path = _write(tmp_path / "many.fits", [fits.PrimaryHDU(), table, image, fits.ImageHDU()])
    found = read_headers(path)
    assert found is not None
    with fits.open(path) as hdul:
        assert len(found) == len(hdul)
        for n, (cards, offset) in enumerate(found):
            assert offset == hdul.fileinfo(n)["datLoc"]
            assert cards.get("NAXIS") == hdul[n].header["NAXIS"]
    short = tmp_path / "short.fits"
    short.write_bytes(path.read_bytes()[:-100])
    assert read_headers(short) is None
    short.write_bytes(path.read_bytes()[: found[2][1] + 100])  # the image's data cut
    assert read_headers(short) is None
    odd = tmp_path / "odd.fits"
    long_string = fits.PrimaryHDU()
    long_string.header["LONGSTR"] = "y" * 200
    _write(odd, [long_string, table])
    assert read_headers(odd) is not None
    blob = odd.read_bytes().replace(b"LONGSTR = ", b"LONGSTR =(")
    odd.write_bytes(blob)
    assert read_headers(odd) is None


def _write(path: Path, hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU]) -> Path:
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def test_files_that_are_not_plain_go_to_astropy(tmp_path: Path) -> None:
    data = _raw(16, (8, 8))
    blank = fits.PrimaryHDU(data=data)
    blank.header["BLANK"] = -5
    cases = {
        "extension": [fits.PrimaryHDU(), fits.ImageHDU(data=data)],
        "compressed": [fits.PrimaryHDU(), fits.CompImageHDU(data=data)],
        "blank": [blank],
        "one_axis": [fits.PrimaryHDU(data=data[0])],
    }
    for name, hdus in cases.items():
        blob = _write(tmp_path / f"{name}.fits", hdus).read_bytes()
        assert read_plain_image(io.BytesIO(blob), file_size=len(blob)) is None, name
    path = tmp_path / "blank.fits"
    loaded = load_image(path)
    assert isinstance(loaded.header, fits.Header)
    assert np.count_nonzero(np.isin(data, -5)) == 0 or loaded.data.size == 64
    # A truncated file: astropy's reader reports it.
    whole = tmp_path / "plain.fits"
    whole.write_bytes(_fits_bytes(_raw(16, (100, 100)), {}))
    blob = whole.read_bytes()[:-3000]
    assert read_plain_image(io.BytesIO(blob), file_size=len(blob)) is None


def test_a_gzipped_plain_file_is_read_without_astropy(tmp_path: Path) -> None:
    data = _raw(-32, (10, 12))
    path = tmp_path / "frame.fits.gz"
    path.write_bytes(gzip.compress(_fits_bytes(data, {})))
    loaded = load_image(path)
    assert isinstance(loaded.header, HeaderCards)
    np.testing.assert_array_equal(loaded.data, data)


def test_the_size_check_runs_before_the_pixels_are_read(tmp_path: Path) -> None:
    blob = _fits_bytes(_raw(16, (50, 40)), {})
    seen: list[tuple[int, int]] = []

    def check(width: int, height: int) -> None:
        seen.append((width, height))
        raise ValueError("too large")

    with pytest.raises(ValueError, match="too large"):
        read_plain_image(io.BytesIO(blob), file_size=len(blob), check=check)
    assert seen == [(40, 50)]


def test_the_written_image_reads_back_through_astropy(tmp_path: Path) -> None:
    data = RNG.normal(0.0, 1.0, (13, 17)).astype(np.float32)
    path = tmp_path / "image.fits"
    write_plain_image(path, data)
    with fits.open(path) as hdul:
        hdul.verify("exception")
        np.testing.assert_array_equal(hdul[0].data, data)
        assert hdul[0].header["EXTEND"] is True
    with pytest.raises(ValueError, match="2-D"):
        write_plain_image(path, data[0])


def _table_file(path: Path, columns: list[fits.Column]) -> Path:
    table = fits.BinTableHDU.from_columns(columns)
    return _write(path, [fits.PrimaryHDU(data=_raw(16, (4, 4))), table])


def test_table_columns_are_astropys(tmp_path: Path) -> None:
    n = 57
    columns = [
        fits.Column(name="X", format="E", array=RNG.normal(0, 100, n)),
        fits.Column(name="Y", format="D", array=RNG.normal(0, 100, n)),
        fits.Column(name="FLUX", format="J", array=RNG.integers(-1000, 1000, n)),
        fits.Column(name="background", format="1I", array=RNG.integers(-9, 9, n)),
        fits.Column(name="FLAG", format="B", array=RNG.integers(0, 255, n)),
        fits.Column(name="ID", format="K", array=RNG.integers(0, 2**40, n)),
    ]
    path = _table_file(tmp_path / "table.fits", columns)
    wanted = ("X", "Y", "FLUX", "BACKGROUND", "FLAG", "ID")
    read = read_table_columns(path, 1, wanted)
    assert read is not None
    with fits.open(path) as hdul:
        for name in wanted:
            np.testing.assert_array_equal(read[name], np.asarray(hdul[1].data[name], float))
    assert read_table_columns(path, 1, ("MISSING",)) is None
    assert read_table_columns(path, 0, ("X",)) is None  # the primary HDU is no table


@pytest.mark.parametrize(
    "column",
    [
        fits.Column(name="X", format="2E", array=np.zeros((3, 2))),
        fits.Column(name="X", format="E", array=np.zeros(3), bscale=2.0),
        fits.Column(name="X", format="10A", array=np.array(["a", "b", "c"])),
    ],
)
def test_tables_that_are_not_plain_go_to_astropy(tmp_path: Path, column: fits.Column) -> None:
    path = _table_file(tmp_path / "table.fits", [column])
    assert read_table_columns(path, 1, ("X",)) is None


def test_index_headers_and_a_solvers_wcs_are_read_without_astropy(tmp_path: Path) -> None:
    """In a subprocess: astropy is not imported where the cards are plain."""
    from skysolve.engine.solving.fastpath.tansip import TanSip

    header = fits.Header()
    header["SCALE_U"], header["SCALE_L"], header["INDEXID"] = 1e-3, 5e-4, 4109
    header["HEALPIX"], header["HPNSIDE"] = 3, 2
    index = tmp_path / "index-4109.fits"
    fits.PrimaryHDU(header=header).writeto(index)
    model = TanSip(crval=(10.0, 20.0), crpix=(50.5, 40.5), cd=np.diag([-1e-3, 1e-3]))
    wcs = tmp_path / "wcs.fits"
    fits.PrimaryHDU(header=model.to_header(100, 80)).writeto(wcs)
    script = f"""
import sys
from pathlib import Path
from skysolve.engine.indexes.files import read_index_header
from skysolve.engine.solving.astrometry import _read_wcs_header
from skysolve.engine.solving.answer import start_wcs
from skysolve.engine.solving.base import SolverOutcome
index = read_index_header(Path({str(index)!r}))
header = _read_wcs_header(Path({str(wcs)!r}))
outcome = SolverOutcome(solved=True, solver="astrometry.net", wcs_header=header)
start = start_wcs(outcome, 100, 80)
print(index.index_id, index.healpix, index.nside, round(index.scale_upper / index.scale_lower, 6))
print(type(start).__name__, start.crval)
print("astropy.io.fits" in sys.modules)
print(outcome.wcs_header["CRVAL1"], "astropy.io.fits" in sys.modules)
"""
    assert fresh_python(script) == [
        "4109 3 2 2.0",
        "TanSip (10.0, 20.0)",
        "False",
        "10.0 True",
    ]
