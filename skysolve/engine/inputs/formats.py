"""What a file is, and its bytes through any compression wrapper.

Formats are recognised by content, never by name (:func:`sniff_format`); a
gzip or bzip2 wrapper is looked through (:func:`read_head` for the first bytes,
:func:`open_decompressed` for all of them), inflated as a stream that stops at
the caller's byte limit, in memory when small and through a temporary file when
large.  A file people upload by mistake (a PDF, a RAR archive...) is named in
the error (:func:`describe_head`).  :mod:`~skysolve.engine.inputs.images`
decodes the pixels; archives and star lists use the same recognition.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from skysolve.errors import (
    BadInputError,
    CorruptFileError,
    ImageTooLargeError,
    SolveError,
)

#: Formats :func:`~skysolve.engine.inputs.images.load_image` reads, as
#: :attr:`~skysolve.engine.inputs.images.LoadedImage.format` names them.
IMAGE_FORMATS: tuple[str, ...] = ("fits", "jpeg", "png", "tiff", "gif", "bmp", "webp")

# Decompressed data up to this size stays in memory; larger files are inflated a
# second time into a temporary file on disk, once we know they fit max_bytes.
_IN_MEMORY_LIMIT = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
#: Bytes enough to recognise any format (and any wrapper).
HEAD_BYTES = 64

#: The compression wrappers looked through, by name.
WRAPPERS: dict[str, Callable[[IO[bytes]], Any]] = {
    "gzip": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    "bzip2": lambda raw: bz2.BZ2File(raw, mode="rb"),
}

# Signatures of files people upload by mistake, to say what we saw.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"XISF0100", "an XISF image (export it as FITS)"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"8BPS", "a Photoshop document"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"P1", "a PNM image"),
)
# -- format detection ---------------------------------------------------------


def sniff_bytes(head: bytes) -> str | None:
    """Format name from the first bytes; "gzip"/"bzip2" for the wrappers."""
    if head.startswith(b"SIMPLE  ="):
        return "fits"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    # "BM" alone is too weak (text may start with it): also require a known DIB header size.
    if head.startswith(b"BM") and len(head) >= 18:
        if int.from_bytes(head[14:18], "little") in (12, 16, 40, 52, 56, 64, 108, 124):
            return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and head[3:4] in b"123456789" and len(head) >= 4:
        return "bzip2"
    return None


def describe_head(head: bytes) -> str:
    """A short phrase saying what an unrecognised file looks like."""
    if not head:
        return "no data"
    for magic, name in _OTHER_SIGNATURES:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        return "an ISO media file (HEIF/AVIF/MP4)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        snippet = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"text starting with {snippet!r}"
    return "bytes " + head[:8].hex(" ")


def sniff_format(path: Path) -> str | None:
    """The image format of a file judged by its content, not its name.

    Parameters
    ----------
    path : pathlib.Path
        The file to look at.  Only its first bytes are read; a gzip or bzip2
        wrapper is looked into (one level deep).

    Returns
    -------
    str or None
        One of :data:`IMAGE_FORMATS`, or None when the file is unreadable,
        empty, or in no format :func:`load_image` reads.
    """
    head = read_head(path, HEAD_BYTES)
    kind = None if head is None else sniff_bytes(head)
    return kind if kind in IMAGE_FORMATS else None


def read_head(path: Path, size: int) -> bytes | None:
    """The first ``size`` bytes of a file's content, looking into a gzip or bzip2 wrapper.

    Only as much as is needed is inflated, so a compression bomb costs nothing
    here.  None when the file cannot be read or the wrapper is damaged.
    """
    try:
        with open(path, "rb") as raw:
            head = raw.read(size)
            wrapper = WRAPPERS.get(sniff_bytes(head) or "")
            if wrapper is not None:
                raw.seek(0)
                with wrapper(raw) as inner:
                    head = inner.read(size)
    except (OSError, EOFError, ValueError, zlib.error):
        return None
    return head


# -- opening, with decompression ------------------------------------------------


@contextlib.contextmanager
def open_decompressed(path: Path, *, max_bytes: int = 2_000_000_000) -> Iterator[IO[bytes]]:
    """Open a file for binary reading, inflating a gzip or bzip2 wrapper.

    The wrapper is recognised by its magic bytes.  Decompression is streamed
    and stops as soon as more than ``max_bytes`` come out, so a compression
    bomb costs time but neither memory nor disk beyond a fixed buffer.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    max_bytes : int, optional
        Largest accepted size of the (decompressed) content.

    Yields
    ------
    file object
        A seekable binary file positioned at the start of the content.

    Raises
    ------
    BadInputError
        The file cannot be opened or is empty.
    ImageTooLargeError
        The (decompressed) content is larger than ``max_bytes``.
    CorruptFileError
        The compressed stream is damaged or truncated.
    """
    try:
        raw = open(path, "rb")  # closed by the ExitStack below
    except OSError as exc:
        raise BadInputError(f"cannot open {Path(path).name}: {exc.strerror or exc}") from exc
    with contextlib.ExitStack() as stack:
        stack.enter_context(raw)
        head = raw.read(HEAD_BYTES)
        raw.seek(0)
        if not head:
            raise BadInputError("the file is empty")
        kind = sniff_bytes(head)
        if kind not in WRAPPERS:
            size = os.fstat(raw.fileno()).st_size
            if size > max_bytes:
                raise ImageTooLargeError(
                    f"the file is {size} bytes, more than the limit of {max_bytes} bytes"
                )
            yield raw
            return
        assert kind is not None
        yield stack.enter_context(_inflate(raw, kind, max_bytes=max_bytes))


@contextlib.contextmanager
def _inflate(raw: IO[bytes], kind: str, *, max_bytes: int) -> Iterator[IO[bytes]]:
    buffer = io.BytesIO()
    total = _copy_capped(raw, kind, buffer, limit=_IN_MEMORY_LIMIT, max_bytes=max_bytes)
    if total == 0:
        raise BadInputError(f"the {kind} stream decompresses to nothing")
    if total <= _IN_MEMORY_LIMIT:
        buffer.seek(0)
        yield buffer
        return
    # Too big for memory but within max_bytes: inflate again, this time to disk.
    buffer.close()
    with tempfile.TemporaryFile(prefix="skysolve-") as spill:
        raw.seek(0)
        _copy_capped(raw, kind, spill, limit=max_bytes, max_bytes=max_bytes)
        spill.flush()
        # A read-only handle: astropy refuses a file opened for writing in "readonly" mode.
        with open(spill.fileno(), "rb", closefd=False) as reader:
            reader.seek(0)
            yield reader


def _copy_capped(raw: IO[bytes], kind: str, out: IO[bytes], *, limit: int, max_bytes: int) -> int:
    """Inflate ``raw`` into ``out`` up to ``limit`` bytes, then only count.

    Returns the decompressed size; raises ImageTooLargeError beyond ``max_bytes``.
    """
    total = 0
    try:
        with WRAPPERS[kind](raw) as stream:
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    return total
                total += len(chunk)
                if total > max_bytes:
                    raise ImageTooLargeError(
                        f"the {kind}-compressed file inflates to more than the limit of "
                        f"{max_bytes} bytes"
                    )
                if total <= limit:
                    out.write(chunk)
    except SolveError:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise CorruptFileError(f"the {kind} stream is damaged or truncated: {exc}") from exc
