"""Which IAU constellation a sky position lies in.

The boundaries are Delporte's, defined along hour circles and parallels of the
B1875.0 equinox, as tabulated by Roman (1987, CDS VI/42); the table and the
names are the ones astropy ships for ``astropy.coordinates.get_constellation``.
This module reads them itself and precesses with ERFA's IAU 2006
bias-precession matrix, because importing ``astropy.coordinates`` costs a
``skysolve solve`` process about 0.17 s, more than a hinted fast-path solve.
It differs from astropy only by the annual aberration astropy's geocentric
frame adds (at most 20.5 arcsec), so a point that close to a boundary may be
named after its neighbour.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import erfa
import numpy as np

# Not get_constellation itself: its import and its transform to a precessed
# geocentric frame cost more than a hinted solve; its data files are read from
# the installed package, found without importing it (importing
# astropy.coordinates costs a tenth of a second), and
# tests/engine/test_constellations.py checks the answers against get_constellation.
_spec = importlib.util.find_spec("astropy")
assert _spec is not None and _spec.origin is not None, "astropy is a dependency"
_DATA = Path(_spec.origin).parent / "coordinates" / "data"


@functools.cache
def _table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of (RA low h, RA high h, Dec low deg, abbreviation, name), in search order."""
    rows = [
        line.split()
        for line in (_DATA / "constellation_data_roman87.dat").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = {}
    for line in (_DATA / "constellation_names.dat").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            names[line[:3]] = line[4:].strip()
    short = np.array([row[3] for row in rows])
    return (
        np.array([float(row[0]) for row in rows]),
        np.array([float(row[1]) for row in rows]),
        np.array([float(row[2]) for row in rows]),
        short,
        np.array([names[s] for s in short]),
    )


@functools.cache
def _to_b1875() -> np.ndarray:
    jd1, jd2 = erfa.epb2jd(1875.0)
    return np.asarray(erfa.pmat06(jd1, jd2))


def precess_to_b1875(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ICRS RA/Dec (deg) to the mean equator and equinox of B1875.0: (RA hours, Dec deg)."""
    ra = np.radians(np.asarray(ra_deg, dtype=float))
    dec = np.radians(np.asarray(dec_deg, dtype=float))
    vectors = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)
    moved = vectors @ _to_b1875().T
    ra_h = (np.degrees(np.arctan2(moved[..., 1], moved[..., 0])) % 360.0) / 15.0
    dec_out = np.degrees(np.arcsin(np.clip(moved[..., 2], -1.0, 1.0)))
    return ra_h, dec_out


def constellations(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(long names, IAU abbreviations) of the constellations holding ICRS positions (deg).

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Positions, any shape (broadcast together).

    Returns
    -------
    tuple of numpy.ndarray
        String arrays of the broadcast shape.
    """
    ra, dec = np.broadcast_arrays(np.asarray(ra_deg, float), np.asarray(dec_deg, float))
    found = _rows(ra, dec)
    # Exactly on a boundary the strict inequalities match no row: take the
    # constellation a hair to the east and north.
    stuck = found == -1
    if stuck.any():
        found[stuck] = _rows(ra[stuck] + 1e-6, np.minimum(dec[stuck] + 1e-6, 90.0))
    *_, short, long_names = _table()
    index = np.maximum(found, 0)
    return long_names[index], short[index]


def _rows(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra_h, dec = precess_to_b1875(ra_deg, dec_deg)
    ra_low, ra_high, dec_low, short, _ = _table()
    found = np.full(ra_h.shape, -1)
    # The table is ordered so that the first row a point satisfies is its
    # constellation (the last one, Octans, takes everything down to the pole).
    for i in range(len(short)):
        todo = found == -1
        if not todo.any():
            break
        found[todo & (ra_low[i] < ra_h) & (ra_h < ra_high[i]) & (dec > dec_low[i])] = i
    return found


#: One stick-figure line: (RA, Dec) of its two stars, degrees (J2000).
Segment = tuple[float, float, float, float]


@functools.cache
def stick_figures() -> dict[str, list[Segment]]:
    """The constellations' stick figures, IAU abbreviation -> line segments.

    They are the ones ``plot-constellations -C`` draws (and nova's sky plots
    show), compiled into Debian's ``libastrometry`` and read with ctypes as the
    bright-star names are (:mod:`skysolve.engine.products.annotations`).  Without the
    library there are no lines (an empty dict), and the maps are drawn without.
    """
    import ctypes
    import ctypes.util

    path = ctypes.util.find_library("astrometry")
    if path is None:
        return {}
    try:
        lib = ctypes.CDLL(path)
        lib.constellations_n.restype = ctypes.c_int
        lib.constellations_get_shortname.restype = ctypes.c_char_p
        lib.constellations_get_shortname.argtypes = [ctypes.c_int]
        lib.constellations_get_nlines.restype = ctypes.c_int
        lib.constellations_get_nlines.argtypes = [ctypes.c_int]
        int_p = ctypes.POINTER(ctypes.c_int)
        lib.constellations_get_line.argtypes = [ctypes.c_int, ctypes.c_int, int_p, int_p]
        double_p = ctypes.POINTER(ctypes.c_double)
        lib.constellations_get_star_radec.argtypes = [ctypes.c_int, double_p, double_p]
    except (OSError, AttributeError):
        return {}

    def star(number: int) -> tuple[float, float]:
        ra, dec = ctypes.c_double(), ctypes.c_double()
        lib.constellations_get_star_radec(number, ctypes.byref(ra), ctypes.byref(dec))
        return ra.value, dec.value

    figures: dict[str, list[Segment]] = {}
    for c in range(lib.constellations_n()):
        name = (lib.constellations_get_shortname(c) or b"").decode()
        segments = []
        for i in range(lib.constellations_get_nlines(c)):
            a, b = ctypes.c_int(), ctypes.c_int()
            lib.constellations_get_line(c, i, ctypes.byref(a), ctypes.byref(b))
            segments.append((*star(a.value), *star(b.value)))
        figures[name] = segments
    return figures
