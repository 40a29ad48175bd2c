"""Star-list readers: source positions a user measured already.

nova accepts a list of star positions instead of an image.  They arrive as FITS
binary tables (astrometry.net ``.xyls``/``.axy`` files, SourceExtractor
catalogues, KStars uploads), as text with one ``x y [flux]`` line per star, or
as lists in a JSON request.  Each becomes a :class:`~skysolve.engine.results.SourceList`.

Coordinates are kept exactly as given: by convention they are already 1-based
FITS pixel coordinates, as astrometry.net writes them.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from skysolve.engine.inputs.formats import open_decompressed, read_head
from skysolve.engine.inputs.images import MAX_FITS_HDUS
from skysolve.engine.results import SourceList

if TYPE_CHECKING:
    from astropy.io import fits
from skysolve.errors import (
    BadInputError,
    CorruptFileError,
    ImageTooLargeError,
    InvalidParameterError,
    SolveError,
)

#: Column names accepted for x, y and flux, in order of preference (case-insensitive).
X_COLUMNS: tuple[str, ...] = ("X", "X_IMAGE", "XIMAGE", "X_PIX")
Y_COLUMNS: tuple[str, ...] = ("Y", "Y_IMAGE", "YIMAGE", "Y_PIX")
FLUX_COLUMNS: tuple[str, ...] = ("FLUX", "FLUX_AUTO", "FLUX_ISO", "FLUX_BEST", "FLUX_APER")
MAG_COLUMNS: tuple[str, ...] = ("MAG", "MAG_AUTO", "MAG_ISO", "MAG_BEST", "MAG_APER")

#: Pixels added beyond the furthest source when the image size must be guessed.
EXTENT_MARGIN = 1

# A star-list line is short; a longer one means the file is something else.
_MAX_LINE = 10_000
_SEPARATORS = re.compile(r"[,;\s]+")


def star_list_from_xy(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    flux: Sequence[float] | np.ndarray | None = None,
    *,
    image_width: int | None = None,
    image_height: int | None = None,
) -> SourceList:
    """Build a source list from coordinate sequences (e.g. a JSON request).

    Parameters
    ----------
    x, y : sequence of float or numpy.ndarray
        1-based FITS pixel coordinates.
    flux : sequence of float or numpy.ndarray, optional
        Brightness of each source; when given the list is sorted brightest first.
    image_width, image_height : int, optional
        Size of the image the positions belong to; by default the extent of the
        sources plus :data:`EXTENT_MARGIN`.

    Returns
    -------
    SourceList
        Brightest first when ``flux`` is given, else in the given order (flux 1).

    Raises
    ------
    BadInputError
        Empty lists, different lengths, non-numeric, NaN or infinite values.
    InvalidParameterError
        A non-positive image size.
    """
    xs = _as_column(x, "x")
    ys = _as_column(y, "y")
    if len(xs) != len(ys):
        raise BadInputError(f"x has {len(xs)} values but y has {len(ys)}")
    fluxes = None if flux is None else _as_column(flux, "flux")
    if fluxes is not None and len(fluxes) != len(xs):
        raise BadInputError(f"flux has {len(fluxes)} values but x and y have {len(xs)}")
    if len(xs) == 0:
        raise BadInputError("the star list is empty")
    for name, column in (("x", xs), ("y", ys), ("flux", fluxes)):
        if column is not None:
            bad = np.flatnonzero(~np.isfinite(column))
            if bad.size:
                raise BadInputError(f"{name} value number {bad[0] + 1} is not a finite number")
    return _source_list(xs, ys, fluxes, width=image_width, height=image_height)


def read_star_list(
    path: Path,
    *,
    image_width: int | None = None,
    image_height: int | None = None,
    max_sources: int = 1_000_000,
) -> SourceList:
    """Read a star list from a FITS table or a text file.

    Parameters
    ----------
    path : pathlib.Path
        A FITS file (possibly gzip/bzip2-compressed) whose first table with X and
        Y columns holds the sources, or a text file of ``x y [flux]`` lines
        separated by whitespace or commas, with optional ``#`` comment lines
        and an optional first line of column names.
    image_width, image_height : int, optional
        Image size; wins over ``IMAGEW``/``IMAGEH`` in the FITS headers, which win
        over the sources' extent.
    max_sources : int, optional
        Largest accepted number of rows.

    Returns
    -------
    SourceList
        Brightest first when a flux (or magnitude) column exists, else in file order.

    Raises
    ------
    BadInputError
        Unreadable, empty or non-numeric content (with the line number), NaN
        or infinite coordinates, no X/Y columns.
    ImageTooLargeError
        More than ``max_sources`` rows.
    """
    with open_decompressed(Path(path)) as fh:
        head = fh.read(9)
        fh.seek(0)
        if head == b"SIMPLE  =":
            xs, ys, fluxes, width, height = _read_fits_table(fh, max_sources=max_sources)
        else:
            xs, ys, fluxes = _read_text(fh, max_sources=max_sources)
            width = height = None
    return _source_list(
        xs,
        ys,
        fluxes,
        width=image_width if image_width is not None else width,
        height=image_height if image_height is not None else height,
    )


def looks_like_star_list(path: Path) -> bool:
    """Whether a file is a star list rather than an image.

    True for a FITS file whose first table HDU has X and Y columns, and for a
    text file whose first lines are ``x y [flux]`` numbers.  Never raises.
    """
    head = read_head(Path(path), 64 * 1024)
    if not head:
        return False
    if not head.startswith(b"SIMPLE  ="):
        return _text_looks_like_xy(head)
    # A FITS file whose primary HDU holds an image is an image: deciding so from
    # the first header spares inflating a whole compressed file (or a bomb) twice.
    if _primary_has_data(head):
        return False
    try:
        with open_decompressed(Path(path)) as fh:
            return _fits_has_xy_table(fh)
    except SolveError:
        return False


# -- helpers --------------------------------------------------------------------


def _as_column(values: Any, name: str) -> np.ndarray:
    if isinstance(values, str | bytes):
        raise BadInputError(f"{name} must be a list of numbers, not a string")
    try:
        column = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"{name} must be a list of numbers: {exc}") from exc
    if column.ndim != 1:
        raise BadInputError(f"{name} must be a flat list of numbers")
    return column.copy()


def _source_list(
    xs: np.ndarray,
    ys: np.ndarray,
    fluxes: np.ndarray | None,
    *,
    width: int | None,
    height: int | None,
) -> SourceList:
    if len(xs) == 0:
        raise BadInputError("the star list is empty")
    for name, value in (("image_width", width), ("image_height", height)):
        if value is not None and (isinstance(value, bool) or int(value) != value or value <= 0):
            raise InvalidParameterError(f"{name} must be a positive whole number, not {value!r}")
    sources = SourceList(
        x=xs,
        y=ys,
        flux=np.ones(len(xs)) if fluxes is None else fluxes,
        width=int(width) if width is not None else _extent(xs),
        height=int(height) if height is not None else _extent(ys),
    )
    return sources if fluxes is None else sources.sorted_by_flux()


def _extent(values: np.ndarray) -> int:
    return max(1, math.ceil(float(np.max(values))) + EXTENT_MARGIN)


# -- FITS tables ------------------------------------------------------------------


def _find_column(names: Sequence[str], wanted: tuple[str, ...]) -> str | None:
    by_upper = {n.upper(): n for n in names}
    for candidate in wanted:
        if candidate in by_upper:
            return by_upper[candidate]
    return None


def _first_xy_table(hdul: fits.HDUList) -> tuple[int, Any, str, str] | None:
    from astropy.io import fits

    for index, hdu in enumerate(hdul):
        if index >= MAX_FITS_HDUS:
            return None
        if isinstance(hdu, fits.BinTableHDU | fits.TableHDU) and not isinstance(
            hdu, fits.CompImageHDU
        ):
            names = list(hdu.columns.names or [])
            x_name = _find_column(names, X_COLUMNS)
            y_name = _find_column(names, Y_COLUMNS)
            if x_name is not None and y_name is not None:
                return index, hdu, x_name, y_name
            return None  # only the first table counts
    return None


def _primary_has_data(head: bytes) -> bool:
    """Whether the primary header at the start of ``head`` declares an image array."""
    axes: dict[str, int] = {}
    for start in range(0, len(head) - 79, 80):
        card = head[start : start + 80].decode("ascii", "replace")
        key = card[:8].strip()
        if key == "END":
            break
        if key.startswith("NAXIS") and card[8:10] == "= ":
            try:
                axes[key] = int(card[10:].split("/")[0].strip())
            except ValueError:
                return False
    count = axes.get("NAXIS", 0)
    return count > 0 and all(axes.get(f"NAXIS{i}", 0) > 0 for i in range(1, count + 1))


def _fits_has_xy_table(fh: IO[bytes]) -> bool:
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with fits.open(fh, memmap=False, lazy_load_hdus=True) as hdul:
                return _first_xy_table(hdul) is not None
        except Exception:
            return False


def _read_fits_table(
    fh: IO[bytes], *, max_sources: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int | None, int | None]:
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with fits.open(fh, memmap=False, lazy_load_hdus=True) as hdul:
                found = _first_xy_table(hdul)
                if found is None:
                    raise BadInputError(
                        "the FITS file has no table with X and Y columns "
                        f"(accepted names: {', '.join(X_COLUMNS)} / {', '.join(Y_COLUMNS)})"
                    )
                index, hdu, x_name, y_name = found
                rows = int(hdu.header.get("NAXIS2", 0) or 0)
                if rows > max_sources:
                    raise ImageTooLargeError(
                        f"the star list has {rows} rows, more than the limit of {max_sources}"
                    )
                table = hdu.data
                xs = _fits_column(table, x_name)
                ys = _fits_column(table, y_name)
                fluxes = _fits_flux(table, list(hdu.columns.names))
                width = _header_size(hdu.header, hdul[0].header, "IMAGEW")
                height = _header_size(hdu.header, hdul[0].header, "IMAGEH")
        except SolveError:
            raise
        except Exception as exc:
            raise CorruptFileError(f"cannot read the FITS star list: {exc}") from exc
    if len(xs) == 0:
        raise BadInputError(f"the star list table (HDU {index}) has no rows")
    for name, column in (("X", xs), ("Y", ys), ("flux", fluxes)):
        if column is not None:
            bad = np.flatnonzero(~np.isfinite(column))
            if bad.size:
                raise BadInputError(f"{name} in table row {bad[0] + 1} is not a finite number")
    return xs, ys, fluxes, width, height


def _fits_column(table: Any, name: str) -> np.ndarray:
    column = np.asarray(table[name])
    if column.ndim != 1 or not np.issubdtype(column.dtype, np.number):
        raise BadInputError(f"column {name} is not a column of single numbers")
    return column.astype(float)


def _fits_flux(table: Any, names: list[str]) -> np.ndarray | None:
    flux_name = _find_column(names, FLUX_COLUMNS)
    if flux_name is not None:
        return _fits_column(table, flux_name)
    mag_name = _find_column(names, MAG_COLUMNS)
    if mag_name is not None:
        return np.power(10.0, -0.4 * _fits_column(table, mag_name))
    return None


def _header_size(table_header: fits.Header, primary: fits.Header, key: str) -> int | None:
    for header in (table_header, primary):
        value = header.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value) and value >= 1 and float(value).is_integer():
                return int(value)
    return None


# -- text -------------------------------------------------------------------------


def _read_text(
    fh: IO[bytes], *, max_sources: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rows: list[tuple[float, ...]] = []
    columns: int | None = None
    mag_column = False
    saw_data = False
    for number, line in _text_lines(fh):
        fields = [f for f in _SEPARATORS.split(line.strip()) if f]
        if not fields or fields[0].startswith("#"):
            continue
        if not saw_data and _is_column_names(fields):
            mag_column = len(fields) >= 3 and fields[2].lower().startswith("mag")
            saw_data = True
            continue
        saw_data = True
        try:
            values = tuple(float(f) for f in fields[:3])
        except ValueError:
            raise BadInputError(
                f"line {number} is not 'x y [flux]' numbers: {line.strip()[:60]!r}"
            ) from None
        if len(fields) < 2:
            raise BadInputError(f"line {number} has one number; 'x y [flux]' needs at least two")
        width = min(len(fields), 3)
        if columns is None:
            columns = width
        elif width != columns:
            raise BadInputError(
                f"line {number} has {width} columns where earlier lines have {columns}"
            )
        if not all(math.isfinite(v) for v in values):
            raise BadInputError(f"line {number} has a NaN or infinite value")
        rows.append(values)
        if len(rows) > max_sources:
            raise ImageTooLargeError(f"the star list has more than the limit of {max_sources} rows")
    if not rows:
        raise BadInputError("the star list has no 'x y [flux]' lines")
    table = np.asarray(rows, dtype=float)
    fluxes = None
    if table.shape[1] >= 3:
        fluxes = np.power(10.0, -0.4 * table[:, 2]) if mag_column else table[:, 2].copy()
    return table[:, 0].copy(), table[:, 1].copy(), fluxes


def _is_column_names(fields: list[str]) -> bool:
    names = [f.lower() for f in fields]
    return (
        len(names) >= 2
        and names[0] in {n.lower() for n in X_COLUMNS}
        and names[1] in {n.lower() for n in Y_COLUMNS}
    )


def _text_lines(fh: IO[bytes]) -> Iterator[tuple[int, str]]:
    """Numbered lines, refusing binary data and absurdly long lines."""
    number = 0
    while True:
        raw = fh.readline(_MAX_LINE + 1)
        if not raw:
            return
        number += 1
        if len(raw) > _MAX_LINE:
            raise BadInputError(f"line {number} is longer than {_MAX_LINE} characters")
        if b"\x00" in raw:
            raise BadInputError("the file is neither a FITS table nor text: it holds binary data")
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInputError(f"line {number} is not UTF-8 text") from None


def _text_looks_like_xy(head: bytes) -> bool:
    lines = head.splitlines()
    if len(head) == 64 * 1024 and lines:
        lines = lines[:-1]  # the last line may be cut
    numeric = 0
    for raw in lines[:50]:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
        fields = [f for f in _SEPARATORS.split(line.strip()) if f]
        if not fields or fields[0].startswith("#"):
            continue
        if numeric == 0 and _is_column_names(fields):
            continue
        try:
            values = [float(f) for f in fields[:3]]
        except ValueError:
            return False
        if len(fields) < 2 or not all(math.isfinite(v) for v in values):
            return False
        numeric += 1
    return numeric > 0
