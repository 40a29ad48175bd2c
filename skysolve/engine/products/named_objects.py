"""The catalogues of named objects that annotations draw on, loaded once per process.

* Deep-sky objects come from OpenNGC through ``pyongc`` (NGC, IC and the
  addendum: Messier-only objects, Barnard 33 "Horsehead Nebula", Melotte,
  Caldwell...), with Messier numbers, common names and sizes; the table is
  built once and cached as JSON under :func:`cache_dir`.
* Named bright stars are the 3344-star table compiled into Debian's
  ``libastrometry`` (the one ``plot-constellations -B`` and nova use), read with
  ctypes, so names and V magnitudes are exactly nova's.

:mod:`~skysolve.engine.products.annotations` says which of them are in a field.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.metadata
import logging
import math
import os
import re
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)
# OpenNGC types that are not objects of their own.
_SKIPPED_TYPES = {"Duplicated record", "Nonexistent object"}
#: Common names OpenNGC gives the wrong object (pyongc 1.1's data): the Flame
#: Nebula is NGC 2024, not IC 434 (which the Horsehead stands in front of).
#: Each entry: OpenNGC name -> (common names to drop, common names to add).
COMMON_NAME_FIXES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "IC0434": (("Flame Nebula",), ()),
    "NGC2024": ((), ("Flame Nebula",)),
}
#: Held while a catalogue is read: a solve reads them in a background thread
#: (:func:`load_catalogues_in_background`), and a caller that needs one before
#: that thread is done waits for it rather than reading it a second time.
_READING = threading.Lock()
# -- catalogues ---------------------------------------------------------------


@dataclass(frozen=True)
class _DeepSkyCatalogue:
    xyz: np.ndarray  # (N, 3) unit vectors
    ra: np.ndarray
    dec: np.ndarray
    radius_deg: np.ndarray  # half the major axis, 0 when unknown
    names: list[list[str]]
    types: list[str]
    messier: np.ndarray  # bool
    named: np.ndarray  # bool: has a common name
    mag: np.ndarray  # V (else B) magnitude, +inf when unknown


@dataclass(frozen=True)
class _StarCatalogue:
    xyz: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    vmag: np.ndarray
    common: list[str]
    designation: list[str]


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra = np.radians(np.asarray(ra_deg, dtype=float))
    dec = np.radians(np.asarray(dec_deg, dtype=float))
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)], axis=-1)


_DESIGNATION = re.compile(r"^([A-Za-z]+)0*(\d.*)$")


def _format_designation(name: str) -> str:
    """OpenNGC's compact names in nova's spelling: ``IC0434`` -> ``IC 434``."""
    m = _DESIGNATION.match(name)
    if m is None:
        return name
    return f"{m.group(1)} {m.group(2)}"


def cache_dir() -> Path:
    """Where derived catalogues are kept: ``SKYSOLVE_CACHE_DIR`` or ~/.cache/skysolve."""
    from skysolve.engine.config import DataPaths

    return DataPaths.from_env().cache_dir


def deep_sky_catalogue() -> _DeepSkyCatalogue:
    """The OpenNGC table, read once per process."""
    with _READING:
        return _deep_sky_catalogue()


@functools.lru_cache(maxsize=1)
def _deep_sky_catalogue() -> _DeepSkyCatalogue:
    # Building pyongc's objects takes about 1.5 s; every solve in a new process
    # would pay it, so the distilled table is cached per pyongc version.
    try:
        version = importlib.metadata.version("pyongc")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = "unknown"
    # v3: numbers as arrays and names as text in an .npz (reading v2's JSON
    # held the interpreter for 50-60 ms, beside a solve's source extraction).
    path = cache_dir() / f"openngc-{version}-v3.npz"
    try:
        return _read_deep_sky_cache(path)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        pass
    catalogue = _build_deep_sky_catalogue()
    try:
        _write_deep_sky_cache(path, catalogue)
    except OSError:
        logger.warning("cannot write the OpenNGC cache %s; it is rebuilt per process", path)
    return catalogue


#: Separators of the names in the cache: no OpenNGC name contains either.
_NAME_SEP, _OBJECT_SEP = "\t", "\n"


def _read_deep_sky_cache(path: Path) -> _DeepSkyCatalogue:
    # An open file of our own: np.load leaves the file it opened open when the
    # archive is damaged.
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
        ra_a, dec_a = data["ra"].astype(float), data["dec"].astype(float)
        radius, mag = data["radius_deg"].astype(float), data["mag"].astype(float)
        messier, named = data["messier"].astype(bool), data["named"].astype(bool)
        names_text = data["names"].tobytes().decode("utf-8")
        types_text = data["types"].tobytes().decode("utf-8")
    names = [line.split(_NAME_SEP) for line in names_text.split(_OBJECT_SEP)]
    types = types_text.split(_OBJECT_SEP)
    n = len(ra_a)
    if not n or any(len(a) != n for a in (dec_a, radius, mag, messier, named, names, types)):
        raise ValueError(f"{path}: columns of different lengths")
    return _DeepSkyCatalogue(
        xyz=unit_vectors(ra_a, dec_a),
        ra=ra_a,
        dec=dec_a,
        radius_deg=radius,
        names=names,
        types=types,
        messier=messier,
        named=named,
        mag=mag,
    )


def _write_deep_sky_cache(path: Path, catalogue: _DeepSkyCatalogue) -> None:
    texts = [name for entry in catalogue.names for name in entry] + catalogue.types
    if any(_NAME_SEP in t or _OBJECT_SEP in t for t in texts):
        raise OSError("a name contains a tab or a newline")  # kept in memory, not cached
    names = _OBJECT_SEP.join(_NAME_SEP.join(entry) for entry in catalogue.names)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            ra=catalogue.ra,
            dec=catalogue.dec,
            radius_deg=catalogue.radius_deg,
            mag=catalogue.mag,
            messier=catalogue.messier,
            named=catalogue.named,
            names=np.frombuffer(names.encode("utf-8"), dtype=np.uint8),
            types=np.frombuffer(_OBJECT_SEP.join(catalogue.types).encode("utf-8"), dtype=np.uint8),
        )
    os.replace(tmp, path)


def deep_sky_names() -> list[list[str]]:
    """Every name of every deep-sky object, one list per object, as fields list them.

    ``["NGC 5194", "M 51", "Whirlpool Galaxy"]``: the designation first, then
    the Messier number and common names, spelled as ``objects_in_field`` does.
    """
    return deep_sky_catalogue().names


def _build_deep_sky_catalogue() -> _DeepSkyCatalogue:
    from pyongc import ongc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        objects = ongc.listObjects()
    ra: list[float] = []
    dec: list[float] = []
    radius: list[float] = []
    names: list[list[str]] = []
    types: list[str] = []
    messier: list[bool] = []
    named: list[bool] = []
    mags: list[float] = []
    seen: set[str] = set()
    for obj in objects:
        # listObjects() can return an object twice (NGC 5457 / M 101 does).
        if obj.type in _SKIPPED_TYPES or obj.rad_coords is None or obj.name in seen:
            continue
        seen.add(obj.name)
        r, d = (float(v) for v in np.degrees(obj.rad_coords))
        designation = _format_designation(obj.name)
        m_id, _ngc, _ic, common, _other = obj.identifiers
        drop, add = COMMON_NAME_FIXES.get(obj.name, ((), ()))
        common = [c for c in common or [] if c not in drop] + list(add)
        entry = [designation]
        m_name = _format_designation(m_id) if m_id else None
        if m_name and m_name != designation:
            entry.append(m_name)
        for c in common or []:
            if c not in entry:
                entry.append(c)
        if obj.name.startswith("NGC"):
            kind = "ngc"
        elif obj.name.startswith("IC"):
            kind = "ic"
        elif m_name:
            kind = "m"
        else:
            kind = "other"
        major = obj.dimensions[0]
        v_mag = obj.magnitudes[1] if obj.magnitudes[1] is not None else obj.magnitudes[0]
        ra.append(r % 360.0)
        dec.append(d)
        radius.append(float(major) / 120.0 if major else 0.0)
        names.append(entry)
        types.append(kind)
        messier.append(m_name is not None)
        named.append(bool(common))
        mags.append(float(v_mag) if v_mag is not None else math.inf)
    ra_a = np.array(ra)
    dec_a = np.array(dec)
    return _DeepSkyCatalogue(
        xyz=unit_vectors(ra_a, dec_a),
        ra=ra_a,
        dec=dec_a,
        radius_deg=np.array(radius),
        names=names,
        types=types,
        messier=np.array(messier, dtype=bool),
        named=np.array(named, dtype=bool),
        mag=np.array(mags),
    )


class _BrightStar(ctypes.Structure):
    # Layout of ``brightstar_t`` in astrometry.net 0.93 (catalogs/brightstars.h).
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("common_name", ctypes.c_char_p),
        ("ra", ctypes.c_double),
        ("dec", ctypes.c_double),
        ("vmag", ctypes.c_double),
    ]


def _empty_star_catalogue() -> _StarCatalogue:
    empty = np.zeros(0)
    return _StarCatalogue(
        xyz=np.zeros((0, 3)), ra=empty, dec=empty, vmag=empty, common=[], designation=[]
    )


def star_catalogue() -> _StarCatalogue:
    """The named bright stars of ``libastrometry``, read once per process."""
    with _READING:
        return _star_catalogue()


@functools.lru_cache(maxsize=1)
def _star_catalogue() -> _StarCatalogue:
    path = ctypes.util.find_library("astrometry")
    if path is None:
        logger.warning("libastrometry not found: no bright star names in annotations")
        return _empty_star_catalogue()
    try:
        lib = ctypes.CDLL(path)
        lib.bright_stars_n.restype = ctypes.c_int
        lib.bright_stars_n.argtypes = []
        lib.bright_stars_get.restype = ctypes.POINTER(_BrightStar)
        lib.bright_stars_get.argtypes = [ctypes.c_int]
        n = int(lib.bright_stars_n())
    except (OSError, AttributeError) as exc:
        logger.warning("cannot read bright stars from %s: %s", path, exc)
        return _empty_star_catalogue()
    ra, dec, vmag, common, designation = [], [], [], [], []
    for i in range(n):
        star = lib.bright_stars_get(i).contents
        name = (star.name or b"").decode("utf-8", "replace").strip()
        cname = (star.common_name or b"").decode("utf-8", "replace").strip()
        if not name and not cname:
            continue  # nova skips unnamed stars too
        ra.append(star.ra)
        dec.append(star.dec)
        vmag.append(star.vmag)
        common.append(cname)
        designation.append(name)
    ra_a, dec_a, vmag_a = np.array(ra), np.array(dec), np.array(vmag)
    # A different struct layout would give garbage; refuse it rather than
    # naming random points of the sky.
    if n == 0 or not (
        np.all((ra_a >= 0) & (ra_a <= 360))
        and np.all(np.abs(dec_a) <= 90)
        and np.all((vmag_a > -3) & (vmag_a < 20))
    ):
        logger.warning("bright star table of %s does not look sane; not used", path)
        return _empty_star_catalogue()
    return _StarCatalogue(
        xyz=unit_vectors(ra_a, dec_a),
        ra=ra_a,
        dec=dec_a,
        vmag=vmag_a,
        common=common,
        designation=designation,
    )


def load_catalogues() -> tuple[int, int]:
    """Load and cache the deep-sky and bright-star catalogues now.

    The first :func:`objects_in_field` call otherwise pays for it (about 1.5 s
    for OpenNGC); a worker can call this at start-up.

    Returns
    -------
    tuple of int
        Number of deep-sky objects and of named bright stars available.
    """
    return len(deep_sky_catalogue().names), len(star_catalogue().designation)


def load_catalogues_in_background() -> threading.Thread:
    """Start :func:`load_catalogues` in a daemon thread and return it.

    A solve starts it before finding sources, so the 0.1-0.3 s of reading the
    tables (most of it JSON parsing) overlaps extraction and solving instead
    of coming before them; :func:`objects_in_field
    <skysolve.engine.products.annotations.objects_in_field>` then finds the
    tables read, or waits for the rest.
    """
    thread = threading.Thread(target=load_catalogues, name="catalogues-load", daemon=True)
    thread.start()
    return thread
