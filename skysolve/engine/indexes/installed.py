"""The installed index files: where they go, checking that they are whole, removing them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from skysolve.engine.indexes.files import IndexFile, format_arcmin, read_index_header
from skysolve.engine.indexes.series import INDEX_NAME
from skysolve.errors import (
    ConfigurationError,
    InvalidParameterError,
)


def index_dirs_from_env(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """``SKYSOLVE_INDEX_DIRS`` as the engine reads it (first one: where files go)."""
    from skysolve.engine.config import index_dirs_from

    return index_dirs_from(environ)


@dataclass(frozen=True)
class FileCheck:
    path: Path
    ok: bool
    problem: str = ""
    index: IndexFile | None = None
    hdus: int = 0


def _fits_layout(path: Path) -> tuple[int, int]:
    """(HDU count, bytes the headers say the file holds); raises ValueError.

    Reads only the header blocks and seeks over the data, so checking a
    multi-GB file costs a few reads and no memory.
    """
    size = path.stat().st_size
    pos = 0
    hdus = 0
    with path.open("rb") as f:
        while pos < size:
            cards: dict[str, str] = {}
            ended = False
            while not ended:
                f.seek(pos)
                block = f.read(2880)
                if len(block) < 2880:
                    raise ValueError(f"header of HDU {hdus} cut short at byte {pos + len(block)}")
                pos += 2880
                text = block.decode("ascii", "replace")
                if hdus == 0 and not cards and not text.startswith("SIMPLE  ="):
                    raise ValueError("not a FITS file (no SIMPLE card)")
                for i in range(0, 2880, 80):
                    card = text[i : i + 80]
                    key = card[:8].strip()
                    if key == "END":
                        ended = True
                        break
                    if card[8:10] == "= ":
                        cards[key] = card[10:].split("/")[0].strip()
            try:
                bitpix = abs(int(cards["BITPIX"]))
                naxis = int(cards["NAXIS"])
                dims = [int(cards[f"NAXIS{k}"]) for k in range(1, naxis + 1)]
                pcount = int(cards.get("PCOUNT", "0"))
                gcount = int(cards.get("GCOUNT", "1"))
            except (KeyError, ValueError):
                raise ValueError(f"HDU {hdus} has no valid BITPIX/NAXIS cards") from None
            data = 0 if naxis == 0 else bitpix // 8 * gcount * (pcount + math.prod(dims))
            pos += -(-data // 2880) * 2880
            hdus += 1
    return hdus, pos


def verify_file(path: Path, *, expect_name: bool = True) -> FileCheck:
    """Whether ``path`` is a whole astrometry.net index file, and what it holds.

    Checks the FITS structure against the file's size (a truncated or padded
    download fails), the index header (quad scale range, index id) and, for
    astrometry.net's names, that the id and healpix tile agree with the name.
    """
    try:
        hdus, expected = _fits_layout(path)
    except (OSError, ValueError) as exc:
        return FileCheck(path, False, str(exc))
    actual = path.stat().st_size
    if expected != actual:
        return FileCheck(path, False, f"FITS headers describe {expected} bytes, file has {actual}")
    if hdus < 3:
        return FileCheck(path, False, f"{hdus} HDUs: an index file has quads and star trees")
    try:
        index = read_index_header(path)
    except ConfigurationError as exc:
        return FileCheck(path, False, exc.message, hdus=hdus)
    if not (0 < index.scale_lower < index.scale_upper):
        return FileCheck(path, False, "bad quad scale range", index, hdus)
    m = INDEX_NAME.match(path.name)
    if expect_name and m:
        if int(m.group(1)) != index.index_id:
            return FileCheck(
                path, False, f"name says index {m.group(1)}, header {index.index_id}", index, hdus
            )
        if m.group(2) is not None and int(m.group(2)) != index.healpix:
            return FileCheck(
                path, False, f"name says tile {m.group(2)}, header {index.healpix}", index, hdus
            )
    return FileCheck(path, True, "", index, hdus)


def remove(names: Sequence[str], dirs: Sequence[Path]) -> list[Path]:
    """Delete index files by name from the index directories (damaged ones too)."""
    installed: dict[str, Path] = {}
    for directory in dirs:
        if directory.is_dir():
            for path in directory.glob("index-*.fits"):
                installed.setdefault(path.name, path)
    missing = [n for n in names if n not in installed]
    if missing:
        raise InvalidParameterError("not installed: " + ", ".join(missing))
    removed = []
    for name in names:
        installed[name].unlink()
        removed.append(installed[name])
    return removed


def describe(ix: IndexFile) -> str:
    """One line about an installed index file, for people."""
    tile = f"tile {ix.healpix} (nside {ix.nside})" if ix.tiled else "whole sky"
    return (
        f"{ix.name}: series {ix.series}, scale {ix.scale_number}, quads "
        f"{format_arcmin(ix.scale_lower / 60)}-{format_arcmin(ix.scale_upper / 60)}, {tile}"
    )
