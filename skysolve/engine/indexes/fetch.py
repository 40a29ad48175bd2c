"""Downloading astrometry.net index files from a mirror laid out like astrometry.net's own.

A file is written beside its destination under a partial name, checked against
the mirror's checksums and as an index file, then renamed into place, so an
interrupted download never leaves a file that looks installed.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skysolve.engine.indexes.files import IndexFile
from skysolve.engine.indexes.installed import verify_file
from skysolve.engine.indexes.series import INDEX_NAME, SERIES
from skysolve.errors import (
    ConfigurationError,
    IndexFetchError,
    InvalidParameterError,
)

MB = 1_000_000


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
    """``SKYSOLVE_INDEX_MIRRORS`` of the engine's configuration, parsed."""
    from skysolve.engine.config import EngineConfig

    return parse_mirrors(EngineConfig.from_env(environ).index_mirrors)


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
        if not INDEX_NAME.match(name):
            raise InvalidParameterError(f"{name!r} is not an astrometry.net index file name")
    dest.mkdir(parents=True, exist_ok=True)
    if not os.access(dest, os.W_OK):
        raise ConfigurationError(f"{dest} is not writable: choose another with --dir")
    report = FetchReport()
    started = time.monotonic()
    have = {(ix.index_id, ix.healpix if ix.tiled else -1) for ix in installed}
    todo = []
    for name in names:
        m = INDEX_NAME.match(name)
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
            m = INDEX_NAME.match(name)
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
