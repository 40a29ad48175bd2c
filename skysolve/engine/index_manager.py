"""Choosing, fetching, building, checking and removing astrometry.net index files.

astrometry.net publishes its index files in *series*: 4100 (Tycho-2, scales
7-19, one file per scale for the whole sky), 4200 (2MASS, scales 0-19) and
5200 (Tycho-2 + Gaia DR2, "LITE", scales 0-6).  Scale number ``s`` holds quads
(groups of four stars) of a fixed range of diameters, from 2-2.8 arcmin at
scale 0 up in steps of sqrt(2) to 1400-2000 arcmin at scale 19.  Fine scales
are split into healpix tiles (``index-5203-07.fits`` is scale 3, tile 7 at
nside 2), so a telescope that images one part of the sky needs only the
tiles of that part.

astrometry.net's rule for choosing: a field is solved by index files whose
quads are 10% to 100% of the field's size.  This module applies that rule
(:func:`recommend`), downloads files from a mirror laid out as astrometry.net
lays its files out (:func:`fetch`), builds custom ones from a user's
catalogue with ``build-astrometry-index`` (:func:`build`), and checks that
installed files are whole, readable index files (:func:`verify_file`).  No
Django here: the ``skysolve index`` command and the web page call it.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import math
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skysolve.engine.healpix import healpixes_within, tile_count
from skysolve.engine.indexes import IndexFile, format_arcmin, read_index_header
from skysolve.errors import (
    BadInputError,
    ConfigurationError,
    IndexFetchError,
    InvalidParameterError,
)

#: Quad diameters (arcmin) of each scale number, astrometry.net's presets.
QUAD_ARCMIN: dict[int, tuple[float, float]] = {
    0: (2.0, 2.8), 1: (2.8, 4.0), 2: (4.0, 5.6), 3: (5.6, 8.0), 4: (8.0, 11.0),
    5: (11.0, 16.0), 6: (16.0, 22.0), 7: (22.0, 30.0), 8: (30.0, 42.0), 9: (42.0, 60.0),
    10: (60.0, 85.0), 11: (85.0, 120.0), 12: (120.0, 170.0), 13: (170.0, 240.0),
    14: (240.0, 340.0), 15: (340.0, 480.0), 16: (480.0, 680.0), 17: (680.0, 1000.0),
    18: (1000.0, 1400.0), 19: (1400.0, 2000.0),
}  # fmt: skip

#: astrometry.net's rule: quads of 10% to 100% of the field's size.
MIN_QUAD_FRACTION = 0.1
MAX_QUAD_FRACTION = 1.0
#: The scales most fields need at least one of: quads a quarter to half the field.
CORE_QUAD_FRACTIONS = (0.25, 0.5)

_NAME = re.compile(r"^index-(\d{4})(?:-(\d{2}))?\.fits$")

MB = 1_000_000


@dataclass(frozen=True)
class Series:
    """One of astrometry.net's index series."""

    number: int
    catalogue: str
    scales: tuple[int, ...]
    #: Healpix nside of each tiled scale; scales not listed are one whole-sky file.
    nside: Mapping[int, int]
    #: Whole-sky size of each scale in bytes.  For 4100 these are the files'
    #: real sizes; for 4200 and 5200 estimates (see docs/running.md): ``fetch`` prints
    #: the mirror's own sizes.
    sky_bytes: Mapping[int, int]
    sizes_exact: bool

    def index_id(self, scale: int) -> int:
        return self.number + scale

    def file_name(self, scale: int, tile: int | None = None) -> str:
        if self.nside.get(scale, 0):
            if tile is None:
                raise InvalidParameterError(f"scale {scale} of {self.number} is tiled")
            return f"index-{self.index_id(scale):04d}-{tile:02d}.fits"
        return f"index-{self.index_id(scale):04d}.fits"


def _halving(scale0_bytes: float, scales: Iterable[int]) -> dict[int, int]:
    # Each scale step is sqrt(2) in quad size, so twice the area per quad and
    # about half the quads and stars: the file halves (4100's real sizes halve
    # within 5-10% per step from scale 7 to 11).
    return {s: int(scale0_bytes / 2.0**s) for s in scales}


SERIES: dict[int, Series] = {
    4100: Series(
        4100,
        "Tycho-2",
        tuple(range(7, 20)),
        {},
        {
            7: 140_644_800,
            8: 78_831_360,
            9: 41_060_160,
            10: 20_514_240,
            11: 8_015_040,
            12: 4_164_480,
            13: 2_154_240,
            14: 1_097_280,
            15: 593_280,
            16: 336_960,
            17: 210_240,
            18: 161_280,
            19: 129_600,
        },  # fmt: skip
        True,
    ),
    4200: Series(
        4200,
        "2MASS",
        tuple(range(0, 20)),
        {**{s: 2 for s in range(0, 5)}, **{s: 1 for s in range(5, 8)}},
        _halving(16e9, range(0, 20)),
        False,
    ),
    5200: Series(
        5200,
        "Tycho-2 + Gaia DR2 (LITE)",
        tuple(range(0, 7)),
        {s: 2 for s in range(0, 7)},
        _halving(5.0e9, range(0, 7)),
        False,
    ),
}

#: astrometry.net's public locations of each series.
DEFAULT_MIRRORS: dict[int, str] = {
    4100: "http://data.astrometry.net/4100/",
    4200: "http://data.astrometry.net/4200/",
    5200: "https://portal.nersc.gov/project/cosmo/temp/dstn/index-5200/LITE/",
}


def parse_mirrors(text: str | None) -> dict[int, str]:
    """``SKYSOLVE_INDEX_MIRRORS``: ``4100=URL,5200=URL`` (comma- or space-separated).

    Series not named keep astrometry.net's location.
    """
    mirrors = dict(DEFAULT_MIRRORS)
    for item in re.split(r"[,\s]+", (text or "").strip()):
        if not item:
            continue
        key, sep, url = item.partition("=")
        if not sep or not key.strip().isdigit() or int(key) not in SERIES:
            raise ConfigurationError(
                f"SKYSOLVE_INDEX_MIRRORS: {item!r} is not SERIES=URL with SERIES one of "
                + ", ".join(str(s) for s in SERIES)
            )
        if not re.match(r"^https?://", url):
            raise ConfigurationError(f"SKYSOLVE_INDEX_MIRRORS: {url!r} is not an http(s) URL")
        mirrors[int(key)] = url
    return mirrors


def mirrors_from_env(environ: Mapping[str, str] | None = None) -> dict[int, str]:
    env = os.environ if environ is None else environ
    return parse_mirrors(env.get("SKYSOLVE_INDEX_MIRRORS"))


def index_dirs_from_env(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """``SKYSOLVE_INDEX_DIRS`` as the engine reads it (first one: where files go)."""
    from skysolve.engine.indexes import DEFAULT_INDEX_DIRS

    env = os.environ if environ is None else environ
    dirs = env.get("SKYSOLVE_INDEX_DIRS", "")
    return tuple(Path(d) for d in dirs.split(os.pathsep) if d) if dirs else DEFAULT_INDEX_DIRS


# -- choosing -------------------------------------------------------------------


def scales_for_field(
    fov_low_arcmin: float, fov_high_arcmin: float, fractions: tuple[float, float]
) -> list[int]:
    """Scale numbers whose quads overlap ``fractions`` of the field sizes given."""
    if not (0 < fov_low_arcmin <= fov_high_arcmin) or not math.isfinite(fov_high_arcmin):
        raise InvalidParameterError(
            f"field sizes must be positive and ordered, not {fov_low_arcmin}-{fov_high_arcmin}'"
        )
    lo = fractions[0] * fov_low_arcmin
    hi = fractions[1] * fov_high_arcmin
    return [s for s, (qlo, qhi) in QUAD_ARCMIN.items() if qhi >= lo and qlo <= hi]


def default_series_for(scale: int) -> int:
    """5200 for the fine scales only it and 4200 have; 4100 (small, whole-sky) above."""
    return 5200 if scale < 7 else 4100


@dataclass(frozen=True)
class Recommendation:
    """One scale of one series: what to have, how big it is, what is installed."""

    series: int
    scale: int
    quad_arcmin: tuple[float, float]
    required: bool
    nside: int
    files: tuple[str, ...]
    bytes: int
    bytes_exact: bool
    installed: tuple[str, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        have = set(self.installed)
        return tuple(f for f in self.files if f not in have)

    def to_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "scale": self.scale,
            "index_id": self.series + self.scale,
            "quad_arcmin": list(self.quad_arcmin),
            "required": self.required,
            "nside": self.nside,
            "files": len(self.files),
            "bytes": self.bytes,
            "bytes_exact": self.bytes_exact,
            "installed": len(self.installed),
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class RecommendationSet:
    fov_low_deg: float
    fov_high_deg: float
    center: tuple[float, float] | None
    radius: float | None
    items: tuple[Recommendation, ...]

    def commands(self, *, required_only: bool = False) -> list[str]:
        """``skysolve index fetch`` commands for what is missing."""
        by_series: dict[int, list[int]] = {}
        for item in self.items:
            if item.missing and (item.required or not required_only):
                by_series.setdefault(item.series, []).append(item.scale)
        out = []
        for series, scales in sorted(by_series.items()):
            cmd = f"skysolve index fetch --series {series} --scales {','.join(map(str, scales))}"
            tiled = any(SERIES[series].nside.get(s, 0) for s in scales)
            if tiled and self.center is not None and self.radius is not None:
                cmd += (
                    f" --ra {self.center[0]:.4f} --dec {self.center[1]:.4f}"
                    f" --radius {self.radius:.3g}"
                )
            out.append(cmd)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "fov_deg": [self.fov_low_deg, self.fov_high_deg],
            "position": None
            if self.center is None
            else {"ra": self.center[0], "dec": self.center[1], "radius": self.radius},
            "scales": [item.to_json() for item in self.items],
            "fetch_commands": self.commands(),
            "required_fetch_commands": self.commands(required_only=True),
        }


def recommend(
    fov_low_deg: float,
    fov_high_deg: float | None = None,
    *,
    installed: Sequence[IndexFile] = (),
    center: tuple[float, float] | None = None,
    radius: float | None = None,
    series: int | None = None,
) -> RecommendationSet:
    """Which series and scales fields of these widths need, by the 10-100% rule.

    ``required``: the scales whose quads are a quarter to half the field, one of
    which nearly every field needs; the others are recommended.  With a
    position (``center``, ``radius`` degrees), tiled scales count only the
    tiles of that region.  ``series`` forces the series for scales it has.
    """
    high = fov_low_deg if fov_high_deg is None else fov_high_deg
    lo_arcmin, hi_arcmin = fov_low_deg * 60.0, high * 60.0
    wanted = scales_for_field(lo_arcmin, hi_arcmin, (MIN_QUAD_FRACTION, MAX_QUAD_FRACTION))
    core = set(scales_for_field(lo_arcmin, hi_arcmin, CORE_QUAD_FRACTIONS))
    if series is not None and series not in SERIES:
        raise InvalidParameterError(f"unknown series {series}: one of {sorted(SERIES)}")
    have: dict[tuple[int, int], list[str]] = {}
    for ix in installed:
        if ix.series is not None and ix.scale_number is not None:
            tile = ix.healpix if ix.tiled else -1
            have.setdefault((ix.index_id, tile), []).append(ix.name)
    items = []
    for scale in wanted:
        number = series if series is not None and scale in SERIES[series].scales else None
        chosen = SERIES[number or default_series_for(scale)]
        nside = chosen.nside.get(scale, 0)
        if nside:
            if center is not None and radius is not None:
                tiles = healpixes_within(center[0], center[1], radius, nside)
            else:
                tiles = tuple(range(tile_count(nside)))
            files = tuple(chosen.file_name(scale, t) for t in tiles)
            keys = [(chosen.index_id(scale), t) for t in tiles]
            size = chosen.sky_bytes[scale] * len(tiles) // tile_count(nside)
        else:
            files = (chosen.file_name(scale),)
            keys = [(chosen.index_id(scale), -1)]
            size = chosen.sky_bytes[scale]
        installed_names = tuple(
            name for key, fname in zip(keys, files, strict=True) if key in have for name in [fname]
        )
        items.append(
            Recommendation(
                series=chosen.number,
                scale=scale,
                quad_arcmin=QUAD_ARCMIN[scale],
                required=scale in core,
                nside=nside,
                files=files,
                bytes=size,
                bytes_exact=chosen.sizes_exact,
                installed=installed_names,
            )
        )
    return RecommendationSet(fov_low_deg, high, center, radius, tuple(items))


def fix_command(
    fov_low_deg: float,
    fov_high_deg: float,
    *,
    installed: Sequence[IndexFile],
    center: tuple[float, float] | None = None,
    radius: float | None = None,
) -> str:
    """The ``skysolve index fetch`` command(s) that would let such a field solve."""
    rec = recommend(fov_low_deg, fov_high_deg, installed=installed, center=center, radius=radius)
    commands = rec.commands(required_only=True) or rec.commands()
    return " && ".join(commands)


def field_of_camera(
    *, focal_mm: float, pixel_um: float, pixels: tuple[int, int]
) -> tuple[float, float]:
    """Field width and height (degrees) of a camera behind a telescope."""
    if focal_mm <= 0 or pixel_um <= 0 or min(pixels) <= 0:
        raise InvalidParameterError("focal length, pixel size and pixel counts must be positive")
    arcsec_per_pixel = 206.264806 * pixel_um / focal_mm
    return pixels[0] * arcsec_per_pixel / 3600.0, pixels[1] * arcsec_per_pixel / 3600.0


def files_for(
    series: int,
    scales: Sequence[int],
    *,
    center: tuple[float, float] | None = None,
    radius: float | None = None,
) -> list[str]:
    """File names of these scales of a series, only the tiles of a region if given."""
    if series not in SERIES:
        raise InvalidParameterError(f"unknown series {series}: one of {sorted(SERIES)}")
    chosen = SERIES[series]
    names = []
    for scale in scales:
        if scale not in chosen.scales:
            raise InvalidParameterError(
                f"series {series} has scales {chosen.scales[0]}-{chosen.scales[-1]}, not {scale}"
            )
        nside = chosen.nside.get(scale, 0)
        if not nside:
            names.append(chosen.file_name(scale))
            continue
        if center is not None:
            tiles = healpixes_within(center[0], center[1], radius or 0.0, nside)
        else:
            tiles = tuple(range(tile_count(nside)))
        names += [chosen.file_name(scale, t) for t in tiles]
    return names


# -- checking -------------------------------------------------------------------


@dataclass(frozen=True)
class FileCheck:
    path: Path
    ok: bool
    problem: str = ""
    index: IndexFile | None = None
    hdus: int = 0


def _fits_layout(path: Path) -> tuple[int, int]:
    """(HDU count, bytes the headers say the file holds); raises ValueError.

    Reads only the header blocks and seeks over the data, so checking a
    multi-GB file costs a few reads and no memory.
    """
    size = path.stat().st_size
    pos = 0
    hdus = 0
    with path.open("rb") as f:
        while pos < size:
            cards: dict[str, str] = {}
            ended = False
            while not ended:
                f.seek(pos)
                block = f.read(2880)
                if len(block) < 2880:
                    raise ValueError(f"header of HDU {hdus} cut short at byte {pos + len(block)}")
                pos += 2880
                text = block.decode("ascii", "replace")
                if hdus == 0 and not cards and not text.startswith("SIMPLE  ="):
                    raise ValueError("not a FITS file (no SIMPLE card)")
                for i in range(0, 2880, 80):
                    card = text[i : i + 80]
                    key = card[:8].strip()
                    if key == "END":
                        ended = True
                        break
                    if card[8:10] == "= ":
                        cards[key] = card[10:].split("/")[0].strip()
            try:
                bitpix = abs(int(cards["BITPIX"]))
                naxis = int(cards["NAXIS"])
                dims = [int(cards[f"NAXIS{k}"]) for k in range(1, naxis + 1)]
                pcount = int(cards.get("PCOUNT", "0"))
                gcount = int(cards.get("GCOUNT", "1"))
            except (KeyError, ValueError):
                raise ValueError(f"HDU {hdus} has no valid BITPIX/NAXIS cards") from None
            data = 0 if naxis == 0 else bitpix // 8 * gcount * (pcount + math.prod(dims))
            pos += -(-data // 2880) * 2880
            hdus += 1
    return hdus, pos


def verify_file(path: Path, *, expect_name: bool = True) -> FileCheck:
    """Whether ``path`` is a whole astrometry.net index file, and what it holds.

    Checks the FITS structure against the file's size (a truncated or padded
    download fails), the index header (quad scale range, index id) and, for
    astrometry.net's names, that the id and healpix tile agree with the name.
    """
    try:
        hdus, expected = _fits_layout(path)
    except (OSError, ValueError) as exc:
        return FileCheck(path, False, str(exc))
    actual = path.stat().st_size
    if expected != actual:
        return FileCheck(path, False, f"FITS headers describe {expected} bytes, file has {actual}")
    if hdus < 3:
        return FileCheck(path, False, f"{hdus} HDUs: an index file has quads and star trees")
    try:
        index = read_index_header(path)
    except ConfigurationError as exc:
        return FileCheck(path, False, exc.message, hdus=hdus)
    if not (0 < index.scale_lower < index.scale_upper):
        return FileCheck(path, False, "bad quad scale range", index, hdus)
    m = _NAME.match(path.name)
    if expect_name and m:
        if int(m.group(1)) != index.index_id:
            return FileCheck(
                path, False, f"name says index {m.group(1)}, header {index.index_id}", index, hdus
            )
        if m.group(2) is not None and int(m.group(2)) != index.healpix:
            return FileCheck(
                path, False, f"name says tile {m.group(2)}, header {index.healpix}", index, hdus
            )
    return FileCheck(path, True, "", index, hdus)


# -- fetching -------------------------------------------------------------------

#: Bytes read per step: big enough that system calls cost nothing next to the
#: network, small enough that memory stays flat whatever the file size.
CHUNK = 1 << 20

Progress = Callable[[str, int, int | None], None]


@dataclass
class FetchReport:
    installed: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    seconds: float = 0.0


def partial_path(dest: Path, name: str) -> Path:
    """Where a download in progress lives: hidden, in the same directory (so the
    final rename is atomic) and not matching ``index-*.fits``."""
    return dest / f".{name}.part"


def _open(url: str, headers: dict[str, str], timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "skysolve", **headers})
    return urllib.request.urlopen(request, timeout=timeout)  # http(s) only: parse_mirrors


def mirror_checksums(mirror: str, *, timeout: float = 30.0) -> dict[str, tuple[str, str]]:
    """The checksums a mirror lists (``SHA256SUMS`` or ``MD5SUMS``), by file name."""
    base = mirror if mirror.endswith("/") else mirror + "/"
    for listing, algorithm in (("SHA256SUMS", "sha256"), ("MD5SUMS", "md5")):
        try:
            with _open(base + listing, {}, timeout) as resp:
                text = resp.read(4 * MB).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            if exc.code in (403, 404, 410):
                continue
            raise IndexFetchError(f"{base}{listing}: HTTP {exc.code}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise IndexFetchError(f"{base}{listing}: {exc}") from None
        sums = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and re.fullmatch(r"[0-9a-fA-F]{32,64}", parts[0]):
                sums[parts[1].lstrip("*").rsplit("/", 1)[-1]] = (algorithm, parts[0].lower())
        return sums
    return {}


def fetch(
    names: Sequence[str],
    *,
    mirror: str,
    dest: Path,
    progress: Progress | None = None,
    timeout: float = 60.0,
    force: bool = False,
    installed: Sequence[IndexFile] = (),
) -> FetchReport:
    """Download index files from ``mirror`` into ``dest``, each verified, then renamed.

    A file is written to a hidden ``.NAME.part`` beside its final place; an
    interrupted download stays there and the next call asks the mirror for the
    rest (HTTP Range).  Only a file whose FITS structure matches its size,
    whose header is an index file's matching its name, and whose checksum
    matches the mirror's ``SHA256SUMS``/``MD5SUMS`` (when it lists one) is
    moved into place, atomically; a corrupt one is deleted.  Files already in
    ``dest``, or in ``installed`` under another name (Debian names the 4100
    series ``index-tycho2-07.littleendian.fits``), are skipped unless ``force``.
    """
    for name in names:
        if not _NAME.match(name):
            raise InvalidParameterError(f"{name!r} is not an astrometry.net index file name")
    dest.mkdir(parents=True, exist_ok=True)
    if not os.access(dest, os.W_OK):
        raise ConfigurationError(f"{dest} is not writable: choose another with --dir")
    report = FetchReport()
    started = time.monotonic()
    have = {(ix.index_id, ix.healpix if ix.tiled else -1) for ix in installed}
    todo = []
    for name in names:
        m = _NAME.match(name)
        assert m is not None
        key = (int(m.group(1)), int(m.group(2)) if m.group(2) is not None else -1)
        if ((dest / name).exists() or key in have) and not force:
            report.skipped.append(name)
        else:
            todo.append(name)
    # The checksum list is asked for only when there is something to download.
    sums = mirror_checksums(mirror, timeout=timeout) if todo else {}
    base = mirror if mirror.endswith("/") else mirror + "/"
    for name in todo:
        try:
            got = _fetch_one(base + name, dest, name, sums.get(name), progress, timeout)
        except IndexFetchError as exc:
            report.failed[name] = exc.message
            continue
        report.bytes += got
        report.installed.append(dest / name)
    report.seconds = time.monotonic() - started
    return report


def _fetch_one(
    url: str,
    dest: Path,
    name: str,
    checksum: tuple[str, str] | None,
    progress: Progress | None,
    timeout: float,
) -> int:
    part = partial_path(dest, name)
    with part.open("ab") as out:
        try:
            fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexFetchError(f"{name}: another fetch of this file is running") from None
        received = _download(url, out, name, progress, timeout)
        out.flush()
        os.fsync(out.fileno())
        check = verify_file(part, expect_name=False)
        problem = "" if check.ok else check.problem
        if not problem and check.index is not None:
            m = _NAME.match(name)
            assert m is not None
            if int(m.group(1)) != check.index.index_id or (
                m.group(2) is not None and int(m.group(2)) != check.index.healpix
            ):
                problem = (
                    f"header says index {check.index.index_id} tile {check.index.healpix}, "
                    "not what the name says"
                )
        if not problem and checksum is not None:
            digest = _hash_file(part, checksum[0])
            if digest != checksum[1]:
                problem = f"{checksum[0]} {digest} is not the mirror's {checksum[1]}"
        if problem:
            # A complete file that is wrong will not get better by resuming it.
            part.unlink(missing_ok=True)
            raise IndexFetchError(f"{name}: not installed, the download is bad: {problem}")
        os.replace(part, dest / name)
    _fsync_dir(dest)
    return received


def _download(url: str, out: Any, name: str, progress: Progress | None, timeout: float) -> int:
    have = out.seek(0, os.SEEK_END)
    headers = {"Range": f"bytes={have}-"} if have else {}
    received = 0
    try:
        resp = _open(url, headers, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return 0  # nothing left to send: the part is whole, verification decides
        raise IndexFetchError(f"{name}: {url}: HTTP {exc.code} {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise IndexFetchError(f"{name}: {url}: {exc}") from None
    with resp:
        total: int | None = None
        if resp.status == 206:
            m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if m is None or int(m.group(1)) != have:
                raise IndexFetchError(f"{name}: the mirror answered a range we did not ask")
            total = None if m.group(2) == "*" else int(m.group(2))
        else:
            if have:  # the mirror ignores ranges: start again
                out.seek(0)
                out.truncate()
                have = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        done = have
        if progress is not None:
            progress(name, done, total)
        try:
            while True:
                n = resp.readinto(view)
                if not n:
                    break
                out.write(view[:n])
                done += n
                received += n
                if progress is not None:
                    progress(name, done, total)
        except (OSError, http.client.HTTPException) as exc:
            out.flush()
            raise IndexFetchError(
                f"{name}: interrupted after {done} bytes ({exc.__class__.__name__}); "
                "run the same fetch again to resume"
            ) from None
        out.flush()
        if total is not None and done != total:
            raise IndexFetchError(
                f"{name}: interrupted after {done} of {total} bytes; "
                "run the same fetch again to resume"
            )
    return received


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(view):
            digest.update(view[:n])
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- removing -------------------------------------------------------------------


def remove(names: Sequence[str], dirs: Sequence[Path]) -> list[Path]:
    """Delete index files by name from the index directories (damaged ones too)."""
    installed: dict[str, Path] = {}
    for directory in dirs:
        if directory.is_dir():
            for path in directory.glob("index-*.fits"):
                installed.setdefault(path.name, path)
    missing = [n for n in names if n not in installed]
    if missing:
        raise InvalidParameterError("not installed: " + ", ".join(missing))
    removed = []
    for name in names:
        installed[name].unlink()
        removed.append(installed[name])
    return removed


# -- building -------------------------------------------------------------------


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


def describe(ix: IndexFile) -> str:
    """One line about an installed index file, for people."""
    tile = f"tile {ix.healpix} (nside {ix.nside})" if ix.tiled else "whole sky"
    return (
        f"{ix.name}: series {ix.series}, scale {ix.scale_number}, quads "
        f"{format_arcmin(ix.scale_lower / 60)}-{format_arcmin(ix.scale_upper / 60)}, {tile}"
    )
