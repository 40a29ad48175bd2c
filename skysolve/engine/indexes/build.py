"""Building custom index files from a user's catalogue with ``build-astrometry-index``."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skysolve.engine.indexes.healpix import healpixes_within
from skysolve.engine.indexes.installed import verify_file
from skysolve.engine.indexes.series import QUAD_ARCMIN
from skysolve.errors import (
    BadInputError,
    ConfigurationError,
    InvalidParameterError,
)


@dataclass(frozen=True)
class Catalogue:
    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray


_RA_NAMES = ("ra", "ra_deg", "raj2000", "ra_icrs")


_DEC_NAMES = ("dec", "dec_deg", "dej2000", "decj2000", "de_icrs", "dec_icrs")


_MAG_NAMES = ("mag", "phot_g_mean_mag", "gmag", "vmag", "magnitude", "rmag", "bt_mag", "vt_mag")


def read_catalogue(path: Path) -> Catalogue:
    """RA, Dec (degrees) and magnitude from a FITS table or a CSV file."""
    from astropy.table import Table

    try:
        fmt = "fits" if path.read_bytes()[:9] == b"SIMPLE  =" else "ascii.csv"
        table = Table.read(path, format=fmt)
    except (OSError, ValueError, IndexError) as exc:
        raise BadInputError(f"{path}: not a readable FITS or CSV star catalogue: {exc}") from None
    columns = {c.lower(): c for c in table.colnames}

    def pick(names: tuple[str, ...], what: str) -> np.ndarray:
        for n in names:
            if n in columns:
                return np.asarray(table[columns[n]], dtype=float)
        raise BadInputError(f"{path}: no {what} column (one of {', '.join(names)})")

    ra, dec, mag = pick(_RA_NAMES, "RA"), pick(_DEC_NAMES, "Dec"), pick(_MAG_NAMES, "magnitude")
    good = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mag) & (np.abs(dec) <= 90)
    if good.sum() < 10:
        raise BadInputError(f"{path}: fewer than 10 stars with RA, Dec and magnitude")
    return Catalogue(ra[good] % 360.0, dec[good], mag[good])


def _cap(cat: Catalogue) -> tuple[tuple[float, float], float]:
    """A centre and radius (degrees) enclosing the catalogue."""
    r, d = np.radians(cat.ra), np.radians(cat.dec)
    xyz = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=1)
    mean = xyz.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-6:
        return (0.0, 0.0), 180.0
    c = mean / norm
    radius = float(np.degrees(np.arccos(np.clip(xyz @ c, -1, 1))).max())
    ra = float(np.degrees(np.arctan2(c[1], c[0])) % 360.0)
    return (ra, float(np.degrees(np.arcsin(c[2])))), radius


BuildProgress = Callable[[str], None]


#: Catalogues up to this size are indexed in memory (``build-astrometry-index
#: -M``: about 1 KB a star at most, and a quarter of the time of temporary files).
IN_MEMORY_STARS = 2_000_000


def build(
    catalogue: Path,
    dest: Path,
    *,
    scales: Sequence[int],
    index_id: int = 9000,
    nside: int = 2,
    binary: str = "build-astrometry-index",
    progress: BuildProgress | None = None,
) -> list[Path]:
    """Index files for ``scales`` from a star catalogue, one per healpix tile it touches.

    Files are named as astrometry.net names its tiled series,
    ``index-{index_id + scale}-{tile}.fits`` (``nside=0``: one file per scale,
    ``index-{index_id + scale}.fits``), built in a temporary directory with
    ``build-astrometry-index``, verified, and moved into ``dest``.
    """
    if not (1000 <= index_id <= 9900) or index_id % 100:
        raise InvalidParameterError("the index id base must be a multiple of 100, 1000-9900")
    for s in scales:
        if s not in QUAD_ARCMIN:
            raise InvalidParameterError(f"scale {s} is not 0-19")
    say: BuildProgress = progress or (lambda message: None)
    cat = read_catalogue(catalogue)
    dest.mkdir(parents=True, exist_ok=True)
    from astropy.io import fits

    built: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="skysolve-index-", dir=dest) as tmp:
        work = Path(tmp)
        order = np.argsort(cat.mag, kind="stable")
        cols = [
            fits.Column(name="RA", format="D", array=cat.ra[order]),
            fits.Column(name="DEC", format="D", array=cat.dec[order]),
            fits.Column(name="MAG", format="E", array=cat.mag[order]),
        ]
        stars = work / "stars.fits"
        fits.BinTableHDU.from_columns(cols).writeto(stars)
        if nside:
            centre, radius = _cap(cat)
            tiles: Sequence[int | None] = healpixes_within(centre[0], centre[1], radius, nside)
        else:
            tiles = [None]
        say(f"{len(cat.ra)} stars; scales {list(scales)}; {len(tiles)} tile(s)")
        for scale in scales:
            for tile in tiles:
                name = (
                    f"index-{index_id + scale:04d}.fits"
                    if tile is None
                    else f"index-{index_id + scale:04d}-{tile:02d}.fits"
                )
                out = work / name
                command = [
                    binary, "-i", str(stars), "-o", str(out), "-P", str(scale), "-S", "MAG",
                    "-I", str(index_id + scale), "-E", "-t", str(work),
                ]  # fmt: skip
                if len(cat.ra) <= IN_MEMORY_STARS:
                    command.append("-M")  # four times faster than its temporary files
                if tile is not None:
                    command += ["-H", str(tile), "-s", str(nside)]
                started = time.monotonic()
                try:
                    done = subprocess.run(  # noqa: S603 - fixed argument list, no shell
                        command, capture_output=True, text=True, check=False
                    )
                except FileNotFoundError:
                    raise ConfigurationError(
                        f"{binary} not found: install the Debian package astrometry.net"
                    ) from None
                if done.returncode != 0 or not out.exists():
                    if tile is not None and _no_stars_in_tile(done.stdout + done.stderr):
                        continue  # the catalogue only grazes this tile
                    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
                    raise ConfigurationError(f"{binary} failed for {name}: {tail}")
                check = verify_file(out)
                if not check.ok:
                    raise ConfigurationError(f"{binary} wrote a bad {name}: {check.problem}")
                if _header_int(out, "NQUADS") == 0:
                    out.unlink()
                    continue
                say(f"built {name} in {time.monotonic() - started:.1f} s")
                os.replace(out, dest / name)
                built.append(dest / name)
    if not built:
        raise BadInputError(
            f"{catalogue}: no quads at scales {list(scales)}: too few stars for those sizes"
        )
    return built


def _no_stars_in_tile(log: str) -> bool:
    # build-astrometry-index says "Total: 0 stars" and then fails to build a tree.
    return bool(re.search(r"Total: 0 stars\b", log))


def _header_int(path: Path, key: str) -> int:
    from astropy.io import fits

    try:
        return int(fits.getheader(path, 0).get(key, -1))
    except (OSError, ValueError, TypeError):
        return -1
