"""A FITS header's cards and a plain FITS image, read without astropy.

``import astropy.io.fits`` costs 0.15-0.25 s, most of a blind solve of a small
FITS frame that astrometry.net answers (``panoptes_unsolved``: the image, the
index files' headers and astrometry.net's ``wcs.fits`` were its only uses).
The common case is simple: a primary header of ordinary cards and an
uncompressed image right behind it.  :class:`HeaderCards` reads such a header
into a read-only mapping whose values are those astropy gives (``bool``,
``int``, ``float``, ``str``), and :func:`read_plain_image` reads such an image
into the array astropy gives (``BSCALE``/``BZERO`` applied as astropy applies
them).  ESO's ``HIERARCH`` cards (a Seestar's ``HIERARCH
ASTAP_ZEMOSAIC_SOLVED``) and long strings on ``CONTINUE`` cards read as astropy
reads them, and so do the cards astropy calls invalid (no value indicator:
ESO-MIDAS's ``ESO-LOG`` lines).  Anything else -- a card they cannot read
exactly (complex, undefined, record-valued, bytes outside ASCII), an image in an extension, a
tile-compressed or random-groups file, ``BLANK``, a truncated file -- gives
None, and the caller reads the file with astropy as before, so no file reads
differently, it only reads faster.  :func:`write_plain_image` and
:func:`read_table_columns` do the same for image2xy's input image and its
source table (plain binary columns), which run beside sep in such a solve.
:func:`card` and :func:`header_bytes` write header cards as astropy writes
them (the ``.axy`` files and the fast path's tables use them too).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from astropy.io import fits

CARD = 80
BLOCK = 2880
#: Headers longer than this many blocks are left to astropy.
MAX_HEADER_BLOCKS = 200

#: Keywords whose cards carry no value (astropy's commentary cards).
_COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})
_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[EeDd][+-]?[0-9]+)?")
#: numpy's big-endian element type of each BITPIX.
_BITPIX_TYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


class _Unreadable(Exception):
    """A card this reader does not read exactly as astropy does."""


#: A string value and its comment, astropy's pattern (``Card._strg`` and its
#: comment field): the string ends at the first quote followed by a blank, a
#: slash or the end from which the rest reads as a comment.
_STRING = re.compile(r"'(?P<strg>(?:[ -~]+?|''|) *?)'(?=$|/| ) *(?:/ *(?P<comm>.*))?$")
#: A record-valued keyword card's value (``DP1 = 'AXIS.1: 1'``): astropy reads
#: it as the number under the keyword ``DP1.AXIS.1``.
_RECORD_VALUE = re.compile(
    r" *'[a-zA-Z_]\w*(?:\.\d+)?(?:\.[a-zA-Z_]\w*(?:\.\d+)?)*: +"
    r"[+-]?(?:\.\d+|\d+(?:\.\d*)?)(?:[DE][+-]?\d+)?' *(?:/ *[ -~]*)?$"
)


def _card_value(field: str) -> bool | int | float | str:
    """The value of one card's value field (what follows the value indicator),
    as astropy reads it."""
    text = field.strip()
    if text.startswith("'"):
        match = _STRING.match(text)
        if match is None:
            raise _Unreadable("not a string and comment")
        return match["strg"].replace("''", "'").rstrip()
    value = text.split("/", 1)[0].strip()
    if value in ("T", "F"):
        return value == "T"
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        number = float(value.replace("D", "E").replace("d", "e"))
        if math.isfinite(number):
            return number
    raise _Unreadable(f"value {value!r}")


def _long_string(first: str, continued: list[str]) -> str:
    """The value field astropy makes of a string card and its ``CONTINUE``
    cards: each card's string without its trailing blanks and one ``&``,
    joined, and their comments joined."""
    pieces: list[str] = []
    comments: list[str] = []
    for at, field in enumerate([first, *(card[9:] for card in continued)]):
        if at and continued[at - 1][8] != " ":
            raise _Unreadable("CONTINUE without a blank after it")
        match = _STRING.match(field.strip())
        if match is None:
            raise _Unreadable("a long string's part is not a string")
        piece = match["strg"].rstrip()
        pieces.append(piece[:-1] if piece.endswith("&") else piece)
        if match["comm"]:
            comments.append(match["comm"].rstrip())
    return f"'{''.join(pieces)}' / {' '.join(comments)}"


def _logical_card(cards: list[str]) -> tuple[str, bool | int | float | str] | None:
    """The keyword and value of one card and the ``CONTINUE`` cards after it,
    as astropy reads them; None for a commentary card."""
    card = cards[0]
    keyword = card[:8].rstrip()
    if keyword in _COMMENTARY:
        if len(cards) > 1:
            raise _Unreadable("CONTINUE after commentary")
        return None
    if keyword == "HIERARCH" and card[8] == " " and "=" in card:
        # ESO's convention: "HIERARCH key words = value / comment"; astropy
        # looks the key up in upper case, words and inner blanks as written.
        name, field = card[9:].split("=", 1)
        keyword = name.strip().upper()
        if not keyword or "." in keyword or keyword.startswith("HIERARCH"):
            raise _Unreadable(f"HIERARCH keyword {keyword!r}")
    elif card[8:10] == "= " and _KEYWORD.fullmatch(keyword) and keyword != "CONTINUE":
        field = card[10:]
        # astropy reads the card and its first part on their own each.
        whole = "".join([field, *cards[1:]])
        if ": " in field and (_RECORD_VALUE.match(field) or _RECORD_VALUE.match(whole)):
            raise _Unreadable("record-valued keyword card")
    elif _KEYWORD.fullmatch(keyword) and keyword not in ("CONTINUE", "HIERARCH"):
        # No value indicator in the first nine columns (ESO-MIDAS's "ESO-LOG
        # 03:04:08>-START EXPO" log lines): astropy calls the card invalid,
        # warns, and gives the rest of it as a string.
        if 0 <= card.find("= ") <= 8 or len(cards) > 1:
            raise _Unreadable(f"keyword {keyword!r}")
        return keyword, card[8:].rstrip()
    else:
        raise _Unreadable(f"keyword {keyword!r}")
    if len(cards) > 1:
        field = _long_string(field, cards[1:])
    return keyword, _card_value(field)


class HeaderCards(Mapping[str, Any]):
    """A FITS header's keyword values, read as astropy reads them, without astropy.

    A read-only mapping like :class:`astropy.io.fits.Header` for reading:
    keywords in any case, the first card of a repeated keyword, commentary
    cards (``COMMENT``, ``HISTORY``, blank) left out.  :meth:`to_astropy` gives
    astropy's header of the same text for whoever needs more.
    """

    def __init__(self, text: str, values: dict[str, Any]) -> None:
        self.text = text
        self._values = values

    @classmethod
    def parse(cls, text: str) -> HeaderCards | None:
        """The cards of ``text`` (whole 80-character cards up to ``END``), or
        None when one of them is not read exactly as astropy reads it."""
        values: dict[str, Any] = {}
        cards = [text[at : at + CARD] for at in range(0, len(text) - CARD + 1, CARD)]
        at = 0
        while at < len(cards):
            if cards[at][:8].rstrip() == "END":
                if cards[at][3:].strip():
                    return None
                return cls(text[: (at + 1) * CARD], values)
            # astropy joins every CONTINUE card to the card before it.
            end = at + 1
            while end < len(cards) and cards[end][:8] == "CONTINUE":
                end += 1
            try:
                entry = _logical_card(cards[at:end])
            except _Unreadable:
                return None
            if entry is not None:
                values.setdefault(*entry)
            at = end
        return None

    @classmethod
    def read(cls, fh: IO[bytes]) -> HeaderCards | None:
        """The header that starts at ``fh``'s position, which is left at the
        first byte after it (its last 2880-byte block); None as :meth:`parse`,
        or when the file ends first."""
        blocks: list[bytes] = []
        for _ in range(MAX_HEADER_BLOCKS):
            block = fh.read(BLOCK)
            if len(block) < BLOCK:
                return None
            blocks.append(block)
            if _has_end(block):
                break
        else:
            return None
        raw = b"".join(blocks)
        if any(b < 32 or b > 126 for b in raw):
            return None
        return cls.parse(raw.decode("ascii"))

    def __getitem__(self, key: str) -> Any:
        return self._values[key.upper()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.upper() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def to_astropy(self) -> fits.Header:
        """astropy's header of the same cards (imports astropy)."""
        import warnings

        from astropy.io import fits

        # astropy warns of the invalid cards it reads as this reader does.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fits.Header.fromstring(self.text)


def _has_end(block: bytes) -> bool:
    return any(block[at : at + 8] == b"END     " for at in range(0, BLOCK, CARD))


def astropy_header(header: Any) -> fits.Header:
    """astropy's header of ``header`` (a :class:`HeaderCards` or astropy's own)."""
    return header.to_astropy() if isinstance(header, HeaderCards) else header


def read_plain_image(
    fh: IO[bytes], *, file_size: int, check: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, HeaderCards] | None:
    """The primary image of a plain FITS file and its header, without astropy.

    ``fh`` is at the start of the file.  Returns the pixels as astropy's
    ``hdu.data`` would give them, in numpy's axis order, with only the first
    plane of each axis beyond the third and the first three planes of a
    third axis of three (a colour cube), else its first plane; and the
    header's cards.  None when the file is not that simple (see the module
    docstring); ``fh`` is then at an unknown position.  ``check(width,
    height)`` is called before any pixel is read (to raise on a size too
    large).
    """
    cards = HeaderCards.read(fh)
    if cards is None or cards.get("SIMPLE") is not True or "GROUPS" in cards:
        return None
    bitpix, naxis = cards.get("BITPIX"), cards.get("NAXIS")
    if bitpix not in _BITPIX_TYPES or not isinstance(naxis, int) or not 2 <= naxis <= 8:
        return None
    if "BLANK" in cards or any(key in cards for key in ("PCOUNT", "GCOUNT", "ZIMAGE")):
        return None
    dims: list[int] = []
    for k in range(1, naxis + 1):
        length = cards.get(f"NAXIS{k}")
        if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
            return None
        dims.append(length)
    scale, zero = cards.get("BSCALE", 1), cards.get("BZERO", 0)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (scale, zero)):
        return None
    dtype = np.dtype(_BITPIX_TYPES[bitpix])
    start = fh.tell()
    if start + dtype.itemsize * math.prod(dims) > file_size:
        return None  # truncated: astropy says so
    width, height = dims[0], dims[1]
    if check is not None:
        check(width, height)
    planes = 3 if naxis == 3 and dims[2] == 3 else 1
    count = width * height * planes
    buffer = fh.read(count * dtype.itemsize)
    if len(buffer) != count * dtype.itemsize:
        return None
    raw = np.frombuffer(buffer, dtype=dtype)
    data = raw.reshape((planes, height, width) if planes > 1 else (height, width))
    return _scaled(data, bitpix=bitpix, scale=scale, zero=zero), cards


def _scaled(data: np.ndarray, *, bitpix: int, scale: float, zero: float) -> np.ndarray:
    """``data * BSCALE + BZERO`` in the type astropy gives."""
    native = data.astype(data.dtype.newbyteorder("="))
    if scale == 1 and zero == 0:
        return native
    if bitpix > 0 and scale == 1 and zero == 2 ** (bitpix - 1) and bitpix > 8:
        # astropy's unsigned integers: the same values, exactly.
        return native.astype(f"u{bitpix // 8}") ^ np.array(zero, dtype=f"u{bitpix // 8}")
    if bitpix == 8 and scale == 1 and zero == -128:
        return (native.astype(np.int16) - 128).astype(np.int8)
    # astropy scales integers in float64 for BITPIX 32 and 64, else in
    # float32; floating-point data in its own type.
    kind = native.dtype.type if bitpix < 0 else np.float64 if bitpix > 16 else np.float32
    out = native.astype(kind)
    if scale != 1:
        out *= kind(scale)
    if zero != 0:
        out += kind(zero)
    return out


# -- Writing cards ----------------------------------------------------------------

#: A header value: a logical, an integer, a real or a string; with its comment.
Value = bool | int | float | str
Card = tuple[str, Value, str]


class CardTooLong(ValueError):
    """A keyword's value does not fit on one header card."""


def format_value(value: Value) -> str:
    """A value as it stands in columns 11-30 (longer for a string) of a card."""
    if isinstance(value, bool):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, int | np.integer):
        return f"{int(value):>20}"
    if isinstance(value, float | np.floating):
        return f"{_format_real(float(value)):>20}"
    text = "'" + str(value).replace("'", "''").ljust(8) + "'"
    if len(text) > CARD - 10:
        raise CardTooLong(f"a string of {len(str(value))} characters needs more than one card")
    return f"{text:<20}"


def _format_real(value: float) -> str:
    """A real in at most 20 characters, with a decimal point, as astropy writes it."""
    if not math.isfinite(value):
        raise ValueError(f"FITS header values must be finite, got {value}")
    for digits in (16, 15, 14, 13, 12):
        text = f"{value:.{digits}G}"
        if "." not in text:
            mantissa, _, exponent = text.partition("E")
            text = mantissa + ".0" + (f"E{exponent}" if exponent else "")
        if len(text) <= 20:
            return text
    raise ValueError(f"cannot write {value!r} in 20 characters")  # pragma: no cover


def card(keyword: str, value: Value, comment: str = "") -> str:
    """One 80-character header card (a comment that does not fit is shortened)."""
    if len(keyword) > 8 or not keyword.isascii():
        raise ValueError(f"not a FITS keyword: {keyword!r}")
    text = f"{keyword.upper():<8}= {format_value(value)}"
    if comment:
        text = f"{text} / {comment}"
    if not text.isascii():
        raise ValueError(f"FITS headers are ASCII: {text!r}")
    return text[:CARD].ljust(CARD)


def header_bytes(cards: Sequence[str]) -> bytes:
    """The cards, ``END`` and blank cards up to a whole block."""
    text = "".join(cards) + "END".ljust(CARD)
    return pad_block(text.encode("ascii"), b" ")


def pad_block(data: bytes, fill: bytes) -> bytes:
    """``data`` filled with ``fill`` up to a whole block."""
    return data + fill * (-len(data) % BLOCK)


def write_plain_image(path: Path, data: np.ndarray) -> None:
    """A FITS file of one 2-D float32 primary image, as astropy writes it, without astropy."""
    image = np.asarray(data, dtype=">f4")
    if image.ndim != 2:
        raise ValueError(f"a 2-D image is needed, not {image.shape}")
    cards = [
        card("SIMPLE", True),
        card("BITPIX", -32),
        card("NAXIS", 2),
        card("NAXIS1", image.shape[1]),
        card("NAXIS2", image.shape[0]),
        card("EXTEND", True),
    ]
    body = np.ascontiguousarray(image).tobytes()
    with open(path, "wb") as fh:
        fh.write(header_bytes(cards))
        fh.write(pad_block(body, b"\0"))


#: numpy's big-endian element type of each binary-table TFORM letter read here.
_TFORM_TYPES = {"B": ">u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


def read_table_columns(
    path: Path, hdu: int, columns: tuple[str, ...]
) -> dict[str, np.ndarray] | None:
    """The named columns (as float) of the binary table in extension ``hdu``,
    without astropy; None when the file is not that simple (a column that is
    not one plain number per row, scaled columns, a header :class:`HeaderCards`
    does not read, a column missing): astropy reads it then."""
    with open(path, "rb") as fh:
        cards = HeaderCards.read(fh)
        for _ in range(hdu):
            if cards is None:
                return None
            fh.seek(_data_bytes(cards), 1)
            cards = HeaderCards.read(fh)
        if cards is None or cards.get("XTENSION") != "BINTABLE":
            return None
        if cards.get("PCOUNT", 0) != 0 or cards.get("NAXIS") != 2:
            return None
        sizes = [cards.get(key) for key in ("NAXIS1", "NAXIS2", "TFIELDS")]
        if not all(isinstance(v, int) and v >= 0 for v in sizes):
            return None
        row_bytes, rows, fields = (int(v or 0) for v in sizes)
        names: list[tuple[str, str]] = []
        for n in range(1, fields + 1):
            form = str(cards.get(f"TFORM{n}", "")).strip().upper().removeprefix("1")
            if form not in _TFORM_TYPES or f"TSCAL{n}" in cards or f"TZERO{n}" in cards:
                return None
            names.append((str(cards.get(f"TTYPE{n}", f"col{n}")).strip(), _TFORM_TYPES[form]))
        dtype = np.dtype([(f"f{n}", kind) for n, (_, kind) in enumerate(names)])
        if dtype.itemsize != row_bytes:
            return None
        buffer = fh.read(row_bytes * rows)
    if len(buffer) != row_bytes * rows:
        return None
    table = np.frombuffer(buffer, dtype=dtype)
    by_name = {name.upper(): f"f{n}" for n, (name, _) in reversed(list(enumerate(names)))}
    if any(col.upper() not in by_name for col in columns):
        return None
    return {col: np.array(table[by_name[col.upper()]], dtype=float) for col in columns}


def read_headers(path: Path) -> list[tuple[HeaderCards, int]] | None:
    """Every HDU's header and the byte offset of its data, without astropy
    (the data is not read); None when a header is not one :class:`HeaderCards`
    reads, or the file does not end where the last HDU's padded data ends:
    astropy reads it then."""
    size = path.stat().st_size
    found: list[tuple[HeaderCards, int]] = []
    with open(path, "rb") as fh:
        at = 0
        while at < size:
            fh.seek(at)
            cards = HeaderCards.read(fh)
            if cards is None:
                return None
            try:
                nbytes = _data_bytes(cards)
            except (TypeError, ValueError):
                return None
            if nbytes < 0:
                return None
            found.append((cards, fh.tell()))
            at = fh.tell() + nbytes
    return found if at == size else None


def _data_bytes(cards: HeaderCards) -> int:
    """The bytes of an HDU's data, padded to whole blocks."""
    naxis = int(cards.get("NAXIS", 0))
    size = 0
    if naxis:
        size = (
            abs(int(cards.get("BITPIX", 8)))
            // 8
            * math.prod(int(cards.get(f"NAXIS{k}", 0)) for k in range(1, naxis + 1))
        )
        size = int(cards.get("GCOUNT", 1)) * (size + int(cards.get("PCOUNT", 0)))
    return size + (-size % BLOCK)
