"""Writing a source list (and any small binary table) as FITS without astropy's table machinery.

astrometry.net reads its parameters and sources from an augmented star list
(``.axy``): a primary header of keywords and a binary table of X, Y, FLUX
(and BACKGROUND) in single precision.  astropy's ``BinTableHDU.from_columns``
imports :mod:`astropy.table` (and :mod:`astropy.io.ascii`) the first time:
0.12-0.16 s of a blind solve's 0.4-0.7 s astrometry.net step, paid before the
first engine process starts (measured in docs/benchmarks.md, "Against the
faster peer, blind: the engine's start").  The format of such a file is
small enough to write directly: 80-character header cards in blocks of 2880
bytes (written by :mod:`skysolve.engine.inputs.fitscards`, which writes
image2xy's input image the same way), then the rows as big-endian float32,
zero-padded to a block.  The fast
path's ``corr`` and ``rdls`` tables and the final fit's ``corr.fits`` are
written the same way (:func:`write_fits_table`).

A value that does not fit one card (a string longer than 68 characters, which
astropy would split over ``CONTINUE`` cards) raises :class:`CardTooLong`; the
caller then writes the file with astropy as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from skysolve.engine.inputs.fitscards import (
    BLOCK,
    Card,
    CardTooLong,
    card,
    format_value,
    header_bytes,
    pad_block,
)
from skysolve.engine.results import SourceList
from skysolve.engine.solving.base import SolveConstraints

if TYPE_CHECKING:
    from astropy.io import fits

#: The binary-table formats written, by their ``TFORM`` letter: 64-bit and
#: 32-bit reals, 32-bit integers.
TABLE_FORMATS = {"D": ">f8", "E": ">f4", "J": ">i4"}
#: One table column: its name, ``TFORM`` letter, unit ("" for none) and values.
Column = tuple[str, str, str, np.ndarray]


def write_fits_table(
    path: Path,
    columns: Sequence[Column],
    *,
    primary: Sequence[Card] = (),
    table: Sequence[Card] = (),
) -> Path:
    """Write a FITS file: a data-less primary HDU with the ``primary`` cards, and a
    binary table of ``columns`` (formats of :data:`TABLE_FORMATS`) whose header
    also holds the ``table`` cards.

    astropy takes tens of milliseconds for a small table (the fast path's whole
    budget) and imports its table machinery the first time.  Raises
    :class:`CardTooLong` (writing nothing) when a value needs more than one card.
    """
    rows = len(columns[0][3]) if columns else 0
    dtype = np.dtype([(name, TABLE_FORMATS[form]) for name, form, _, _ in columns])
    data = np.zeros(rows, dtype=dtype)
    for name, _, _, values in columns:
        if len(values) != rows:
            raise ValueError("the columns of a table must have one length")
        data[name] = values
    head = [
        card("SIMPLE", True, "conforms to FITS standard"),
        card("BITPIX", 8, "array data type"),
        card("NAXIS", 0, "number of array dimensions"),
        card("EXTEND", True),
    ] + [card(*c) for c in primary]
    ext = [
        card("XTENSION", "BINTABLE", "binary table extension"),
        card("BITPIX", 8, "array data type"),
        card("NAXIS", 2, "number of array dimensions"),
        card("NAXIS1", dtype.itemsize, "length of dimension 1"),
        card("NAXIS2", rows, "length of dimension 2"),
        card("PCOUNT", 0, "number of group parameters"),
        card("GCOUNT", 1, "number of groups"),
        card("TFIELDS", len(columns), "number of table fields"),
    ]
    for i, (name, form, unit, _) in enumerate(columns, start=1):
        ext += [card(f"TTYPE{i}", name), card(f"TFORM{i}", form)]
        if unit:
            ext.append(card(f"TUNIT{i}", unit))
    ext += [card(*c) for c in table]
    blob = header_bytes(head) + header_bytes(ext) + pad_block(data.tobytes(), b"\0")
    path = Path(path)
    path.write_bytes(blob)
    return path


def write_float_table(
    path: Path,
    primary: Sequence[Card],
    columns: Sequence[tuple[str, np.ndarray]],
    table: Sequence[Card] = (),
) -> Path:
    """:func:`write_fits_table` with single-precision ``columns`` (name, values)
    and no units, as astrometry.net's star lists are."""
    floats = [(name, "E", "", values) for name, values in columns]
    return write_fits_table(path, floats, primary=primary, table=table)


def write_axy(
    path: Path,
    sources: SourceList,
    constraints: SolveConstraints,
    *,
    outputs: dict[str, Path],
    cpu_limit: float,
    depths: tuple[int, ...],
    odds_to_solve: float,
) -> Path:
    """Write an augmented star list: the sources plus every solve parameter.

    ``outputs`` maps the engine's output keywords (solved, match, rdls, wcs,
    corr, cancel) to the files it should write.  Written directly
    (:func:`write_float_table`), or by astropy when a value needs more than
    one header card (a long path).
    """
    cards = axy_cards(
        sources,
        constraints,
        outputs=outputs,
        cpu_limit=cpu_limit,
        depths=depths,
        odds_to_solve=odds_to_solve,
    )
    try:
        return write_float_table(path, cards, source_columns(sources), size_cards(sources))
    except CardTooLong:
        pass
    from astropy.io import fits

    hdr = fits.Header()
    for keyword, value, comment in cards:
        hdr[keyword] = (value, comment) if comment else value
    fits.HDUList([fits.PrimaryHDU(header=hdr), source_table(sources)]).writeto(path, overwrite=True)
    return path


def axy_cards(
    sources: SourceList,
    constraints: SolveConstraints,
    *,
    outputs: dict[str, Path],
    cpu_limit: float,
    depths: tuple[int, ...],
    odds_to_solve: float,
) -> list[Card]:
    """The primary header of an augmented star list, as ``augment-xylist`` writes it."""
    hdr: list[Card] = [
        ("IMAGEW", int(sources.width), "image width"),
        ("IMAGEH", int(sources.height), "image height"),
        ("ANRUN", True, "Solve this field!"),
        ("ANCLIM", max(1, int(np.ceil(cpu_limit))), "CPU time limit (seconds)"),
        ("ANVERUNI", True, "Uniformize field during verification"),
        ("ANVERDUP", False, "Deduplicate field during verification"),
        ("ANODDSSL", float(odds_to_solve), "Odds ratio to consider a field solved"),
        ("ANPOSERR", float(constraints.positional_error), "star position error (pixels)"),
    ]
    if constraints.scale_low is not None or constraints.scale_high is not None:
        lo = constraints.scale_low or 0.0
        hi = constraints.scale_high if constraints.scale_high is not None else 1e6
        hdr.append(("ANAPPL1", float(lo), "scale: arcsec/pixel min"))
        hdr.append(("ANAPPU1", float(min(hi, 1e6)), "scale: arcsec/pixel max"))
    if constraints.crpix_center:
        hdr.append(("ANCRPIXC", True, "Set CRPIX to the image center."))
    if constraints.tweak_order > 0:
        hdr.append(("ANTWEAK", True, "Tweak: yes please!"))
        hdr.append(("ANTWEAKO", int(constraints.tweak_order), "Tweak order"))
    else:
        hdr.append(("ANTWEAK", False, "Tweak: no, thanks."))
    if constraints.parity in (0, 1):
        hdr.append(("ANPARITY", "POS" if constraints.parity == 0 else "NEG", "parity to search"))
    if constraints.has_position:
        hdr.append(("ANERA", float(constraints.center_ra or 0.0), "RA center estimate (deg)"))
        hdr.append(("ANEDEC", float(constraints.center_dec or 0.0), "Dec center estimate (deg)"))
        hdr.append(("ANERAD", float(constraints.radius or 180.0), "Search radius (deg)"))
    lower = 1
    for i, upper in enumerate(depths, start=1):
        hdr.append((f"ANDPL{i}", lower, ""))
        hdr.append((f"ANDPU{i}", upper, ""))
        lower = upper + 1
    keys = {
        "solved": "ANSOLVED",
        "match": "ANMATCH",
        "rdls": "ANRDLS",
        "wcs": "ANWCS",
        "corr": "ANCORR",
        "cancel": "ANCANCEL",
    }
    for name, key in keys.items():
        if name in outputs:
            hdr.append((key, str(outputs[name]), ""))
    return hdr


def source_columns(sources: SourceList) -> list[tuple[str, np.ndarray]]:
    """The X, Y, FLUX[, BACKGROUND] columns astrometry.net reads."""
    cols = [("X", sources.x), ("Y", sources.y), ("FLUX", sources.flux)]
    if sources.background is not None:
        cols.append(("BACKGROUND", sources.background))
    return [(name, np.asarray(values, np.float32)) for name, values in cols]


def size_cards(sources: SourceList) -> list[Card]:
    """The image size, which the source table's header carries too."""
    return [("IMAGEW", int(sources.width), ""), ("IMAGEH", int(sources.height), "")]


def source_table(sources: SourceList) -> fits.BinTableHDU:
    """The sources as the X, Y, FLUX[, BACKGROUND] table astrometry.net reads (astropy)."""
    from astropy.io import fits

    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name=name, format="E", array=values)
            for name, values in source_columns(sources)
        ]
    )
    for keyword, value, _ in size_cards(sources):
        table.header[keyword] = value
    return table


__all__ = [
    "BLOCK",
    "TABLE_FORMATS",
    "Card",
    "CardTooLong",
    "Column",
    "axy_cards",
    "card",
    "format_value",
    "header_bytes",
    "source_columns",
    "source_table",
    "write_axy",
    "write_fits_table",
    "write_float_table",
]
