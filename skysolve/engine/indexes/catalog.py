"""The reference stars stored inside astrometry.net index files.

An index file keeps its stars in a kd-tree written as FITS binary tables of raw
bytes, one extension per part, each named by its only column's TTYPE1:

``kdtree_header_stars``
    no data; its header says how the tree is stored (``KDT_DATA``: the element
    type of the data, ``KDT_NDAT``: the number of stars, ``KDT_NDIM``: 3).
``kdtree_range_stars``
    ``2 * ndim + 1`` doubles: the lower bounds, the upper bounds and the scale
    (tree units per data unit) that map integer data back to unit-sphere xyz,
    ``xyz = lower + stored / scale``.
``kdtree_data_stars``
    one row per star, ``ndim`` values of type ``KDT_DATA`` (``u32`` for the
    Debian Tycho-2 files), in kd-tree order.

The raw-byte tables are in the byte order the file's ``ENDIAN`` keyword gives
(little-endian for the ``*.littleendian.fits`` files), whatever FITS says.
Later extensions hold "tag-along" columns in the same kd-tree order, such as
``MAG_VT`` (Tycho-2 V_T magnitude); those are ordinary FITS columns and so are
big-endian like every FITS table.

Checked against the Debian ``astrometry-data-tycho2`` files: every decoded xyz
has unit norm to 4e-10, and the brightest ``MAG_VT`` entries land within a few
arcseconds (the stars' proper motion) of Rigel, Arcturus, Capella, Spica,
Antares and alpha Centauri.  Vega, Sirius, Polaris and Canopus are absent: the
Tycho-2 main catalogue leaves out the brightest stars.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from skysolve.engine.config import DEFAULT_INDEX_DIRS
from skysolve.engine.indexes.files import read_index_header
from skysolve.engine.inputs.fitscards import read_headers
from skysolve.errors import BadInputError, ConfigurationError, CorruptFileError

#: numpy element types of the kd-tree data, by the KDT_DATA keyword.
_KDT_TYPES: dict[str, str] = {"double": "f8", "float": "f4", "u32": "u4", "u16": "u2"}

#: Bytes per element of the FITS binary-table column types we may meet.
_TFORM_BYTES: dict[str, int] = {
    "L": 1,
    "B": 1,
    "A": 1,
    "I": 2,
    "J": 4,
    "K": 8,
    "E": 4,
    "D": 8,
    "C": 8,
    "M": 16,
}


@dataclass(frozen=True, eq=False)
class StarCatalog:
    """Star positions (J2000 degrees) with magnitudes where the source has them.

    ``mag`` is ``None`` when the index file carries no magnitude column.
    ``source`` names the file the stars came from.  The arrays are never
    modified; :meth:`cone` returns a new catalogue.
    """

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray | None
    source: str

    def __post_init__(self) -> None:
        if len(self.ra) != len(self.dec):
            raise BadInputError("star catalogue RA and Dec have different lengths")
        if self.mag is not None and len(self.mag) != len(self.ra):
            raise BadInputError("star catalogue magnitudes have the wrong length")

    def __len__(self) -> int:
        return len(self.ra)

    @cached_property
    def xyz(self) -> np.ndarray:
        """Unit vectors, shape ``(n, 3)``."""
        return radec_to_xyz(self.ra, self.dec)

    @cached_property
    def _tree(self) -> Any:
        # Built on first use only: a million-star tree takes about a second (and
        # scipy half a second to import, which the final fit's cones never need).
        from scipy.spatial import cKDTree

        return cKDTree(self.xyz)

    def take(self, index: np.ndarray | slice) -> StarCatalog:
        """The stars selected by ``index`` (integer or boolean array, or a slice)."""
        return StarCatalog(
            ra=np.asarray(self.ra)[index],
            dec=np.asarray(self.dec)[index],
            mag=None if self.mag is None else np.asarray(self.mag)[index],
            source=self.source,
        )

    def cone(self, ra: float, dec: float, radius_deg: float) -> StarCatalog:
        """Stars within ``radius_deg`` of (``ra``, ``dec``), in catalogue order.

        Parameters
        ----------
        ra, dec : float
            Cone centre in degrees.
        radius_deg : float
            Cone radius in degrees, 0 to 180.

        Returns
        -------
        StarCatalog
            The stars inside the cone (possibly none).
        """
        if not (-90.0 <= dec <= 90.0) or not math.isfinite(ra):
            raise BadInputError(f"cone centre ({ra}, {dec}) is not a sky position")
        if not (0.0 <= radius_deg <= 180.0):
            raise BadInputError(f"cone radius {radius_deg} deg is not between 0 and 180")
        centre = radec_to_xyz(np.array([ra]), np.array([dec]))[0]
        chord = 2.0 * math.sin(math.radians(radius_deg) / 2.0)
        if len(self) == 0:
            return self.take(np.zeros(0, dtype=np.intp))
        found = np.sort(np.asarray(self._tree.query_ball_point(centre, chord), dtype=np.intp))
        return self.take(found)


def radec_to_xyz(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Unit vectors ``(n, 3)`` from RA/Dec arrays in degrees."""
    r = np.radians(np.asarray(ra, dtype=float))
    d = np.radians(np.asarray(dec, dtype=float))
    cd = np.cos(d)
    return np.stack([cd * np.cos(r), cd * np.sin(r), np.sin(d)], axis=-1)


def xyz_to_radec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA in [0, 360) and Dec, degrees, from vectors ``(n, 3)`` (normalised first)."""
    v = np.asarray(xyz, dtype=float)
    v = v / np.sqrt(np.einsum("ij,ij->i", v, v))[:, None]
    ra = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(v[:, 2], -1.0, 1.0)))
    return ra, dec


@dataclass(frozen=True)
class _Extension:
    header: Mapping[str, Any]  # a HeaderCards, or astropy's header
    offset: int  # byte offset of the data in the file
    nbytes: int


def _open_extensions(
    path: Path, *, read_all: bool = True
) -> tuple[Mapping[str, Any], dict[str, _Extension], list[_Extension]]:
    """Primary header, extensions by TTYPE1, and all extensions in file order.

    ``read_all`` reads every extension's data to catch a truncated file early
    (astropy only warns); without it only the headers are read (a short read of
    the parts used is still caught by :func:`_read_bytes`).  Read without
    astropy (a quarter of a second to import, for the final fit of a narrow
    field) when every header is plain and the file holds every HDU's data
    whole; astropy reads the rest."""
    if not path.is_file():
        raise BadInputError(f"{path}: no such index file")
    try:
        plain = read_headers(path)
        if plain:
            extensions = [_Extension(h, at, _table_bytes(h)) for h, at in plain[1:]]
            return plain[0][0], _by_name(extensions), extensions
    except (OSError, ValueError, TypeError):
        pass  # astropy says what is wrong
    from astropy.io import fits

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=True)
        with hdul:
            with warnings.catch_warnings(record=True) as more:
                warnings.simplefilter("always")
                if read_all:
                    hdul.readall()
            caught.extend(more)
            primary = hdul[0].header.copy()
            ordered: list[_Extension] = []
            for i in range(1, len(hdul)):
                header = hdul[i].header.copy()
                offset = int(hdul.fileinfo(i)["datLoc"])
                ordered.append(_Extension(header, offset, _table_bytes(header)))
    except (OSError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise BadInputError(f"{path}: not a readable FITS file ({exc})") from exc
    # astropy only warns about a truncated file; for an index that is fatal.
    for w in caught:
        if "truncated" in str(w.message):
            raise CorruptFileError(f"{path}: truncated index file ({w.message})")
    return primary, _by_name(ordered), ordered


def _table_bytes(header: Mapping[str, Any]) -> int:
    return int(header.get("NAXIS1", 0)) * int(header.get("NAXIS2", 0))


def _by_name(extensions: list[_Extension]) -> dict[str, _Extension]:
    """The extensions by their first column's name (TTYPE1), the first of each."""
    by_name: dict[str, _Extension] = {}
    for ext in extensions:
        name = str(ext.header.get("TTYPE1", "")).strip()
        if name and name not in by_name:
            by_name[name] = ext
    return by_name


def _byte_order(header: Mapping[str, Any], primary: Mapping[str, Any]) -> str:
    endian = str(header.get("ENDIAN", primary.get("ENDIAN", "04:03:02:01"))).strip()
    if endian == "04:03:02:01":
        return "<"
    if endian == "01:02:03:04":
        return ">"
    raise CorruptFileError(f"unknown ENDIAN value {endian!r}")


def _read_bytes(fh: Any, path: Path, ext: _Extension) -> bytes:
    fh.seek(ext.offset)
    data = fh.read(ext.nbytes)
    if len(data) != ext.nbytes:
        raise CorruptFileError(f"{path}: truncated index file")
    return bytes(data)


def _find_mag_column(ordered: list[_Extension]) -> tuple[_Extension, int, str, int] | None:
    """(extension, byte offset in row, numpy dtype, rows) of the first magnitude column."""
    for ext in ordered:
        h = ext.header
        if h.get("XTENSION") != "BINTABLE":
            continue
        row_offset = 0
        for k in range(1, int(h.get("TFIELDS", 0)) + 1):
            name = str(h.get(f"TTYPE{k}", "")).strip().upper()
            tform = str(h.get(f"TFORM{k}", "")).strip().upper()
            repeat_text = tform.rstrip("LXBIJKAEDCMPQ")
            code = tform[len(repeat_text) : len(repeat_text) + 1]
            repeat = int(repeat_text) if repeat_text else 1
            if code not in _TFORM_BYTES:
                break  # a column we cannot size: give up on this table
            if name.startswith("MAG") and repeat == 1 and code in ("E", "D"):
                return ext, row_offset, ">f4" if code == "E" else ">f8", int(h["NAXIS2"])
            row_offset += repeat * _TFORM_BYTES[code]
    return None


def read_index_stars(path: Path) -> StarCatalog:
    """Read the stars of one astrometry.net index file.

    Parameters
    ----------
    path : Path
        An index file (``index-*.fits``) with a star kd-tree.

    Returns
    -------
    StarCatalog
        Every star of the index in kd-tree order, with the index's first
        magnitude column (``MAG*``) when it has one.

    Raises
    ------
    BadInputError
        The file does not exist, is not FITS, or holds no star kd-tree.
    CorruptFileError
        The kd-tree is truncated or inconsistent.
    """
    xyz, mag = _read_index_xyz(Path(path))
    ra, dec = xyz_to_radec(xyz) if len(xyz) else (np.zeros(0), np.zeros(0))
    catalog = StarCatalog(ra=ra, dec=dec, mag=mag, source=str(path))
    catalog.__dict__["xyz"] = xyz  # the unit vectors read (cached_property's slot)
    return catalog


def index_cone(path: Path, ra: float, dec: float, radius_deg: float) -> StarCatalog:
    """The stars of one index file within ``radius_deg`` of (``ra``, ``dec``).

    The file's unit vectors are read once per process (and file version) and
    kept; a cone is a dot product over them, so a field's stars cost tens of
    milliseconds where the whole catalogue as RA/Dec costs a second.

    Raises as :func:`read_index_stars`.
    """
    path = Path(path)
    st = path.stat() if path.is_file() else None
    key = (str(path.resolve()), st.st_mtime_ns if st else 0, st.st_size if st else 0)
    xyz, mag = _cached_index_xyz(key)  # headers only: the 141 MB file is not read whole
    centre = radec_to_xyz(np.array([ra]), np.array([dec]))[0]
    rows = np.flatnonzero(xyz @ centre >= math.cos(math.radians(min(180.0, radius_deg))))
    part = xyz[rows]
    r, d = xyz_to_radec(part) if len(rows) else (np.zeros(0), np.zeros(0))
    catalog = StarCatalog(ra=r, dec=d, mag=None if mag is None else mag[rows], source=str(path))
    catalog.__dict__["xyz"] = part
    return catalog


@lru_cache(maxsize=2)
def _cached_index_xyz(key: tuple[str, int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    return _read_index_xyz(Path(key[0]), read_all=False)


def _read_index_xyz(path: Path, *, read_all: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Unit vectors ``(n, 3)`` and magnitudes (or None) of an index file's stars."""
    path = Path(path)
    primary, by_name, ordered = _open_extensions(path, read_all=read_all)
    for needed in ("kdtree_header_stars", "kdtree_data_stars"):
        if needed not in by_name:
            raise BadInputError(f"{path}: not an astrometry.net index file (no {needed} table)")
    kdt = by_name["kdtree_header_stars"].header
    data_type = str(kdt.get("KDT_DATA", "")).strip()
    if data_type not in _KDT_TYPES:
        raise CorruptFileError(f"{path}: unsupported kd-tree data type {data_type!r}")
    try:
        ndim = int(kdt["KDT_NDIM"])
        ndata = int(kdt["KDT_NDAT"])
    except (KeyError, ValueError) as exc:
        raise CorruptFileError(f"{path}: kd-tree header lacks KDT_NDIM/KDT_NDAT") from exc
    if ndim != 3:
        raise CorruptFileError(f"{path}: star kd-tree has {ndim} dimensions, expected 3")
    order = _byte_order(kdt, primary)
    dtype = np.dtype(order + _KDT_TYPES[data_type])
    data_ext = by_name["kdtree_data_stars"]
    if data_ext.nbytes != ndata * ndim * dtype.itemsize:
        raise CorruptFileError(
            f"{path}: kd-tree data holds {data_ext.nbytes} bytes, expected "
            f"{ndata} stars of {ndim} x {dtype.itemsize} bytes"
        )
    # Tag-along columns come after the tree, in the same (kd-tree) order.
    after = next(i for i, ext in enumerate(ordered) if ext is data_ext) + 1
    mag_column = _find_mag_column(ordered[after:])

    with open(path, "rb") as fh:
        raw = np.frombuffer(_read_bytes(fh, path, data_ext), dtype=dtype).reshape(ndata, ndim)
        if dtype.kind == "f":
            xyz = raw.astype(float)
        else:
            if "kdtree_range_stars" not in by_name:
                raise CorruptFileError(f"{path}: integer kd-tree without kdtree_range_stars")
            rng_ext = by_name["kdtree_range_stars"]
            rng = np.frombuffer(_read_bytes(fh, path, rng_ext), dtype=order + "f8")
            if len(rng) < 2 * ndim + 1 or not rng[2 * ndim] > 0:
                raise CorruptFileError(f"{path}: bad kdtree_range_stars table")
            xyz = rng[:ndim] + raw.astype(float) / rng[2 * ndim]
        mag: np.ndarray | None = None
        if mag_column is not None:
            ext, col_offset, mag_dtype, rows = mag_column
            if rows == ndata:
                table = np.frombuffer(_read_bytes(fh, path, ext), dtype=np.uint8)
                row_bytes = int(ext.header["NAXIS1"])
                width = np.dtype(mag_dtype).itemsize
                cells = table.reshape(rows, row_bytes)[:, col_offset : col_offset + width]
                mag = np.ascontiguousarray(cells).view(mag_dtype).ravel().astype(float)

    norms = np.sqrt(np.einsum("ij,ij->i", xyz, xyz))  # a third of np.linalg.norm's time
    if ndata and not np.all(np.abs(norms - 1.0) < 1e-6):
        raise CorruptFileError(f"{path}: kd-tree star positions are not unit vectors")
    return xyz, mag


def index_scale_range(path: Path) -> tuple[float, float]:
    """The quad diameter range of an index file, arcminutes.

    Parameters
    ----------
    path : Path
        An astrometry.net index file.

    Returns
    -------
    tuple of float
        ``(SCALE_L, SCALE_U)`` from the primary header, converted from radians.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such index file")
    try:
        index = read_index_header(path)
    except ConfigurationError as exc:
        raise BadInputError(exc.message) from exc
    return index.scale_lower / 60.0, index.scale_upper / 60.0


def _star_count(path: Path) -> int | None:
    """KDT_NDAT of the star tree, or None when ``path`` is not an index file."""
    try:
        plain = read_headers(path)
        if plain:
            trees = [
                h for h, _ in plain if str(h.get("TTYPE1", "")).strip() == "kdtree_header_stars"
            ]
            return int(trees[0]["KDT_NDAT"]) if trees else None
    except (OSError, KeyError, TypeError, ValueError):
        return None
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=True)
        with hdul, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for hdu in hdul[1:]:
                if str(hdu.header.get("TTYPE1", "")).strip() == "kdtree_header_stars":
                    return int(hdu.header["KDT_NDAT"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


@lru_cache(maxsize=4)
def _densest_index(index_dirs: tuple[Path, ...]) -> Path:
    candidates: list[tuple[int, str]] = []
    for directory in index_dirs:
        if not directory.is_dir():
            continue
        for name in sorted(os.listdir(directory)):
            if name.startswith("index") and name.endswith((".fits", ".fit")):
                count = _star_count(directory / name)
                if count is not None:
                    candidates.append((count, str(directory / name)))
    if not candidates:
        dirs = ", ".join(str(d) for d in index_dirs) or "(none)"
        raise ConfigurationError(f"no astrometry.net index files with stars found in {dirs}")
    # Most stars wins; ties go to the first name so the choice is stable.
    best = min(candidates, key=lambda c: (-c[0], c[1]))
    return Path(best[1])


def densest_index(index_dirs: Sequence[Path] = DEFAULT_INDEX_DIRS) -> Path:
    """The densest index file in ``index_dirs``: the largest file, whose star count
    is then checked (looked up once per process).

    Opening every file's headers to count stars costs about 0.1 s for Debian's
    thirteen Tycho-2 files; the largest one (index-tycho2-07, 141 MB) is the one
    with the most stars there, and only it is opened.  Falls back to counting
    when the largest file holds no star kd-tree.

    Raises
    ------
    ConfigurationError
        No index file with a star kd-tree was found.
    """
    return _largest_index(tuple(Path(d) for d in index_dirs))


@lru_cache(maxsize=4)
def _largest_index(index_dirs: tuple[Path, ...]) -> Path:
    files: list[tuple[int, str]] = []
    for directory in index_dirs:
        if directory.is_dir():
            for name in sorted(os.listdir(directory)):
                if name.startswith("index") and name.endswith((".fits", ".fit")):
                    path = directory / name
                    files.append((-path.stat().st_size, str(path)))
    if files and _star_count(Path(min(files)[1])) is not None:
        return Path(min(files)[1])
    return _densest_index(index_dirs)


@lru_cache(maxsize=4)
def _default_catalog(index_dirs: tuple[Path, ...]) -> StarCatalog:
    return read_index_stars(_densest_index(index_dirs))


def default_catalog(index_dirs: Sequence[Path] = DEFAULT_INDEX_DIRS) -> StarCatalog:
    """The stars of the densest index file in ``index_dirs``, read once per process.

    Parameters
    ----------
    index_dirs : sequence of Path
        Directories searched for ``index*.fits`` files.

    Returns
    -------
    StarCatalog
        The stars of the index file with the most stars (``index-tycho2-07``
        among the Debian Tycho-2 files: 1.87 million stars to V_T ~ 15).

    Raises
    ------
    ConfigurationError
        No index file with a star kd-tree was found.
    """
    return _default_catalog(tuple(Path(d) for d in index_dirs))
