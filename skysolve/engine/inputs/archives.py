"""Archives of images: a tar (plain, gzip, bzip2 or xz) or zip file of many images.

nova turns an uploaded archive into one job per image inside; this module does
the reading.  :func:`archive_format` recognises an archive by its content, and
:func:`expand_archive` copies the images out of it, one file per image under a
name it chooses (never the member's name), into a directory of the caller's.

Archives come from strangers, so the reading is defensive:

* Only regular files are taken.  Members whose name is absolute or has a
  ``..`` component, symbolic and hard links, devices, FIFOs, encrypted members
  and archives inside the archive are skipped, and each skip is reported in
  :attr:`ExpandedArchive.skipped`.  Members that are not images (a README, a
  ``.DS_Store``) are skipped the same way.
* Nothing is extracted with ``extractall``: member data is streamed in chunks
  into files named ``0000.fits``, ``0001.jpg``, ...
* The number of members and the uncompressed size are capped, and the caps are
  checked against the sizes the archive declares *before* the data is read,
  then against what actually comes out, so a tar or zip bomb stops early and
  costs neither memory nor disk beyond a chunk.  Headers are read through a
  reader that refuses oversized single reads, so a tar header declaring a huge
  extended (pax/GNU long name) record cannot make :mod:`tarfile` hold it.

Failures are the engine's errors: :class:`~skysolve.errors.UnsupportedFormatError`
(not an archive), :class:`~skysolve.errors.CorruptFileError` (damaged or
truncated), :class:`~skysolve.errors.ImageTooLargeError` (a cap) and
:class:`~skysolve.errors.BadInputError` (no usable image inside).

Kept whole: the tar and the zip reader share the caps, the safe-name rules and
the taker that enforces them; apart, the checks a bomb must pass would live twice.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import stat
import struct
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from skysolve.engine.inputs.formats import describe_head, sniff_format
from skysolve.errors import (
    BadInputError,
    CorruptFileError,
    ImageTooLargeError,
    SolveCancelledError,
    SolveError,
    UnsupportedFormatError,
)

#: Archive formats :func:`archive_format` recognises.
ARCHIVE_FORMATS: tuple[str, ...] = ("tar", "tar.gz", "tar.bz2", "tar.xz", "zip")

DEFAULT_MAX_MEMBERS = 1000
DEFAULT_MAX_BYTES = 2 * 1024**3

_BLOCK = 512
_CHUNK = 1024 * 1024
#: Reads this far past max_bytes are allowed: a tar's end-of-archive blocks.
_SLACK = 64 * 1024
#: Largest single read tarfile may make for a header record (pax, GNU long names).
_MAX_HEADER_READ = 1024 * 1024
#: Bytes of a zip's central directory allowed per member (names, extra fields).
_ZIP_DIRECTORY_PER_MEMBER = 1024
#: Skipped members named in a message; the rest are counted.
_LISTED = 20

_COMPRESSED_TAR: dict[bytes, tuple[str, Callable[[IO[bytes]], Any]]] = {
    b"\x1f\x8b": ("tar.gz", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    b"BZh": ("tar.bz2", lambda raw: bz2.BZ2File(raw, mode="rb")),
    b"\xfd7zXZ\x00": ("tar.xz", lambda raw: lzma.LZMAFile(raw, mode="rb")),
}

# File name endings by image format, so people looking at the data directory see what is what.
_SUFFIXES = {"fits": ".fits", "jpeg": ".jpg", "png": ".png", "tiff": ".tif", "gif": ".gif"}
_WRAPPER_SUFFIXES = {b"\x1f\x8b": ".gz", b"BZh": ".bz2"}

# Decompressors' complaints about damaged data.
_DAMAGE = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, tarfile.TarError)


@dataclass(frozen=True)
class ArchiveMember:
    """One image taken out of an archive.

    Attributes
    ----------
    index : int
        Its number among the images taken, from 0, in archive order.
    name : str
        Its name inside the archive, for display only (control characters
        replaced); never used to build a path.
    path : pathlib.Path
        The file :func:`expand_archive` wrote it to.
    size : int
        Its size in bytes.
    """

    index: int
    name: str
    path: Path
    size: int


@dataclass(frozen=True)
class ExpandedArchive:
    """What :func:`expand_archive` took out of an archive and what it left."""

    format: str
    members: list[ArchiveMember] = field(default_factory=list)
    #: One line per member left out: ``"<name>: <reason>"``.
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A sentence for people: how many images were taken and which members were not."""
        taken = f"{len(self.members)} image(s) taken from the {self.format} archive"
        if not self.skipped:
            return taken
        return f"{taken}; {len(self.skipped)} member(s) skipped: {_listing(self.skipped)}"


def _listing(lines: list[str]) -> str:
    """The first few lines joined; a message must stay readable for 1000 skipped members."""
    shown = "; ".join(lines[:_LISTED])
    return shown if len(lines) <= _LISTED else f"{shown}; and {len(lines) - _LISTED} more"


# -- recognising ----------------------------------------------------------------


def _is_tar_header(block: bytes) -> bool:
    """Whether a 512-byte block is a tar header (POSIX/GNU magic, or a valid v7 checksum)."""
    if len(block) < _BLOCK or block.count(0) == _BLOCK:
        return False
    if block[257:262] == b"ustar":
        return True
    stored = block[148:156].replace(b"\x00", b" ").strip()
    if not stored or any(c not in b"01234567" for c in stored):
        return False
    computed = sum(block[:148]) + 8 * ord(" ") + sum(block[156:_BLOCK])
    return int(stored, 8) == computed and block[0] != 0


def archive_format(path: Path) -> str | None:
    """The archive format of a file judged by its content, not its name.

    Parameters
    ----------
    path : pathlib.Path
        The file.  Only its first bytes are read (a compressed file's first
        bytes are inflated to see whether a tar is inside).

    Returns
    -------
    str or None
        One of :data:`ARCHIVE_FORMATS`, or None for anything else (an image,
        a gzip-compressed FITS file, an unreadable file).
    """
    try:
        with open(path, "rb") as raw:
            head = raw.read(_BLOCK)
            if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
                return "zip"
            if _is_tar_header(head):
                return "tar"
            for magic, (name, opener) in _COMPRESSED_TAR.items():
                if head.startswith(magic):
                    raw.seek(0)
                    with opener(raw) as inner:
                        return name if _is_tar_header(inner.read(_BLOCK)) else None
    except _DAMAGE:
        return None
    return None


# -- expanding ------------------------------------------------------------------


def expand_archive(
    path: Path,
    dest_dir: Path,
    *,
    max_members: int = DEFAULT_MAX_MEMBERS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    cancel: threading.Event | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExpandedArchive:
    """Copy the images of a tar or zip archive into ``dest_dir``, one file each.

    Parameters
    ----------
    path : pathlib.Path
        The archive (see :data:`ARCHIVE_FORMATS`; recognised by content).
    dest_dir : pathlib.Path
        Where the images go (created if missing), as ``0000.fits``,
        ``0001.jpg``, ...  On error every file written here is removed again.
    max_members : int, optional
        Most members (files, directories and links alike) the archive may have.
    max_bytes : int, optional
        Largest total uncompressed size of the archive's content.
    cancel : threading.Event, optional
        When set, the expansion stops (between chunks) with SolveCancelledError.
    progress : callable, optional
        Called with a short message before each member is read.

    Returns
    -------
    ExpandedArchive
        The images taken, in archive order, and the members skipped with why.

    Raises
    ------
    UnsupportedFormatError
        ``path`` is not a tar or zip archive.
    ImageTooLargeError
        More than ``max_members`` members or more than ``max_bytes`` bytes
        (declared or found while reading).
    SolveCancelledError
        ``cancel`` was set.
    CorruptFileError
        The archive is damaged or truncated.
    BadInputError
        The archive holds no usable image (the message lists what was skipped).
    """
    for name, value in (("max_members", max_members), ("max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise BadInputError(f"{name} must be a positive integer, not {value!r}")
    kind = archive_format(Path(path))
    if kind is None:
        raise UnsupportedFormatError("the file is not a tar or zip archive")
    dest_dir.mkdir(parents=True, exist_ok=True)
    taker = _Taker(
        dest_dir,
        kind,
        max_members=max_members,
        max_bytes=max_bytes,
        cancel=cancel,
        progress=progress or (lambda message: None),
    )
    try:
        if kind == "zip":
            _expand_zip(Path(path), taker)
        else:
            _expand_tar(Path(path), kind, taker)
    except BaseException:
        taker.remove_all()
        raise
    expanded = ExpandedArchive(kind, taker.members, taker.skipped)
    if not expanded.members:
        detail = f": {_listing(expanded.skipped)}" if expanded.skipped else " (it is empty)"
        raise BadInputError(f"the {kind} archive holds no usable image{detail}")
    return expanded


def _display_name(name: str) -> str:
    cleaned = "".join(c if c.isprintable() else "?" for c in name)
    return cleaned[-255:] or "(no name)"


def _unsafe_name(name: str) -> bool:
    """Absolute, drive-relative or ``..`` names: a naive extractor would write outside."""
    normal = name.replace("\\", "/")
    if not normal or normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        return True
    return ".." in normal.split("/")


def _classify(part: Path, size: int) -> tuple[str | None, str]:
    """(image format, "") for an image; (None, why not) for anything else."""
    if size == 0:
        return None, "empty file"
    nested = archive_format(part)
    if nested is not None:
        return None, f"a {nested} archive inside the archive (not expanded)"
    fmt = sniff_format(part)
    if fmt is None:
        with part.open("rb") as fh:
            return None, f"not an image ({describe_head(fh.read(64))})"
    return fmt, ""


class _Taker:
    """Counts members and bytes against the caps and writes the images taken."""

    def __init__(
        self,
        dest_dir: Path,
        kind: str,
        *,
        max_members: int,
        max_bytes: int,
        cancel: threading.Event | None,
        progress: Callable[[str], None],
    ) -> None:
        self.dest_dir = dest_dir
        self.kind = kind
        self.max_members = max_members
        self.max_bytes = max_bytes
        self.cancel = cancel
        self.progress = progress
        self.seen = 0
        self.written = 0
        self.members: list[ArchiveMember] = []
        self.skipped: list[str] = []
        self._files: list[Path] = []

    def entry(self, name: str) -> None:
        """Count one more member of any kind against the cap."""
        self.seen += 1
        if self.seen > self.max_members:
            raise self.too_many()
        self.check_cancel()
        self.progress(f"archive member {self.seen}: {_display_name(name)}")

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise SolveCancelledError("the expansion of the archive was cancelled")

    def too_many(self) -> ImageTooLargeError:
        return ImageTooLargeError(
            f"the {self.kind} archive has more than the limit of {self.max_members} members"
        )

    def too_big(self) -> ImageTooLargeError:
        return ImageTooLargeError(
            f"the {self.kind} archive holds more than the limit of {self.max_bytes} bytes "
            "(uncompressed)"
        )

    def admits(self, name: str, refusal: str | None) -> bool:
        """Whether a (non-directory) member may be read; a refused one is noted as skipped.

        ``refusal`` is the format's own reason to refuse the entry (a link, a
        device...), or None.
        """
        if _unsafe_name(name):
            self.skip(name, "unsafe path (absolute or with '..')")
            return False
        if refusal is not None:
            self.skip(name, refusal)
            return False
        return True

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append(f"{_display_name(name)}: {reason}")

    def take(self, name: str, stream: IO[bytes]) -> None:
        """Copy one regular member's data; keep it when it is an image."""
        index = len(self.members)
        part = self.dest_dir / f"{index:04d}.part"
        self._files.append(part)
        size = 0
        with part.open("wb") as out:
            while True:
                self.check_cancel()
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                self.written += len(chunk)
                if self.written > self.max_bytes:
                    raise self.too_big()
                out.write(chunk)
        fmt, reason = _classify(part, size)
        if fmt is None:
            part.unlink()
            self.skip(name, reason)
            return
        with part.open("rb") as fh:
            head = fh.read(4)
        wrapper = next((s for magic, s in _WRAPPER_SUFFIXES.items() if head.startswith(magic)), "")
        final = part.with_name(f"{index:04d}{_SUFFIXES.get(fmt, '.' + fmt)}{wrapper}")
        part.replace(final)
        self._files.append(final)
        self.members.append(ArchiveMember(index, _display_name(name), final, size))

    def remove_all(self) -> None:
        for path in self._files:
            with contextlib.suppress(OSError):
                path.unlink()


# -- tar ------------------------------------------------------------------------


class _CappedReader(io.RawIOBase):
    """A read-only view of a (decompressing) stream that stops past ``max_bytes``.

    tarfile reads an extended header (pax record, GNU long name) with one
    ``read(size)`` of the size the header declares; refusing single reads above
    ``_MAX_HEADER_READ`` keeps such a record from being held in memory.  Member
    data is read by :meth:`_Taker.take` in chunks no larger than that.
    """

    def __init__(self, inner: IO[bytes], taker: _Taker) -> None:
        super().__init__()
        self.inner = inner
        self.taker = taker

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.inner.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = offset if whence == os.SEEK_SET else self.inner.tell() + offset
        if whence not in (os.SEEK_SET, os.SEEK_CUR) or target > self.taker.max_bytes:
            raise self.taker.too_big()
        return self.inner.seek(target)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > _MAX_HEADER_READ:
            raise ImageTooLargeError(
                f"the {self.taker.kind} archive has a header record larger than "
                f"{_MAX_HEADER_READ} bytes"
            )
        if self.inner.tell() + size > self.taker.max_bytes + _SLACK:
            raise self.taker.too_big()
        return self.inner.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def _tar_stream(path: Path, kind: str) -> Iterator[IO[bytes]]:
    with open(path, "rb") as raw:
        if kind == "tar":
            yield raw
            return
        opener = next(op for name, op in _COMPRESSED_TAR.values() if name == kind)
        with opener(raw) as inner:
            yield inner


def _tar_entry_kind(info: tarfile.TarInfo) -> str | None:
    """Why a tar entry is not a regular file, or None when it is one."""
    if info.isfile():
        return None
    if info.issym():
        return "symbolic link (not followed)"
    if info.islnk():
        return "hard link (not followed)"
    if info.ischr() or info.isblk():
        return "device file"
    if info.isfifo():
        return "FIFO"
    return f"not a regular file (tar type {info.type!r})"


def _expand_tar(path: Path, kind: str, taker: _Taker) -> None:
    try:
        with _tar_stream(path, kind) as stream:
            reader = _CappedReader(stream, taker)
            with tarfile.open(fileobj=reader, mode="r:") as tar:
                while True:
                    info = tar.next()
                    if info is None:
                        return
                    # Only the current entry is needed: do not let the list grow.
                    cast(Any, tar).members.clear()
                    taker.entry(info.name)
                    if info.offset_data + max(0, info.size) > taker.max_bytes:
                        raise taker.too_big()
                    if info.isdir() or not taker.admits(info.name, _tar_entry_kind(info)):
                        continue
                    member = tar.extractfile(info)
                    if member is None:
                        taker.skip(info.name, "no data")
                        continue
                    with member:
                        taker.take(info.name, member)
    except SolveError:
        raise
    except _DAMAGE as exc:
        raise CorruptFileError(f"the {kind} archive is damaged or truncated: {exc}") from exc


# -- zip ------------------------------------------------------------------------


def _zip_directory_size(path: Path) -> tuple[int, int] | None:
    """(members, central directory bytes) the zip's end record declares; None if not found."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        tail_start = max(0, size - (22 + 65535))
        fh.seek(tail_start)
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        entries, directory = struct.unpack("<HI", tail[at + 10 : at + 16])
        if entries != 0xFFFF and directory != 0xFFFFFFFF:
            return entries, directory
        # Zip64: the locator just before the end record points to the zip64 end record.
        locator = tail[at - 20 : at] if at >= 20 else b""
        if not locator.startswith(b"PK\x06\x07"):
            return None
        (offset,) = struct.unpack("<Q", locator[8:16])
        fh.seek(offset)
        record = fh.read(56)
        if len(record) < 56 or not record.startswith(b"PK\x06\x06"):
            return None
        entries64, directory64 = struct.unpack("<QQ", record[32:48])
        return int(entries64), int(directory64)


def _zip_entry_kind(info: zipfile.ZipInfo) -> str | None:
    """Why a zip entry is not a regular file, or None when it is one."""
    if info.flag_bits & 0x1:
        return "encrypted"
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:  # Unix attributes are stored
        if stat.S_ISLNK(mode):
            return "symbolic link (not followed)"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            return "device file"
        if stat.S_ISFIFO(mode):
            return "FIFO"
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            return "not a regular file"
    return None


def _expand_zip(path: Path, taker: _Taker) -> None:
    declared = _zip_directory_size(path)
    if declared is not None:
        entries, directory = declared
        if entries > taker.max_members:
            raise taker.too_many()
        if directory > taker.max_members * _ZIP_DIRECTORY_PER_MEMBER + 65536:
            raise taker.too_many()
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > taker.max_members:
                raise taker.too_many()
            if sum(info.file_size for info in infos) > taker.max_bytes:
                raise taker.too_big()
            for info in infos:
                taker.entry(info.filename)
                if info.is_dir() or not taker.admits(info.filename, _zip_entry_kind(info)):
                    continue
                try:
                    member = archive.open(info)
                except NotImplementedError as exc:
                    taker.skip(info.filename, f"unsupported compression ({exc})")
                    continue
                with member:
                    taker.take(info.filename, member)
    except SolveError:
        raise
    except (zipfile.BadZipFile, *_DAMAGE) as exc:
        raise CorruptFileError(f"the zip archive is damaged or truncated: {exc}") from exc
