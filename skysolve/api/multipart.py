"""A tolerant multipart/form-data parser for the API's uploads.

The reference ``client.py`` of astrometry.net writes its body with the email
package: boundary lines end in a bare ``\\n``, part headers in ``\\r\\n``, the
boundary is quoted in the Content-Type header, and parts carry
``MIME-Version`` and a lowercase ``Content-disposition``.  This parser accepts
that and ordinary browser/requests bodies alike.

:func:`parse_file` reads a body spooled to disk block by block and writes
file parts to their own temporary files, so an upload is never held in
memory whole; :func:`parse` does the same on bytes (small bodies, tests).

Why not Django's MultiPartParser: Django 5.2 does read the reference client's
body and ordinary ones (checked), but it silently drops a file part in two
cases.  One, a part cut before its closing boundary, a check of the spooled
body could catch first.  The other it decides alone: a file part whose
filename sanitizes to nothing (``..``, ``photos/``) is skipped without a
word, so the upload would be answered as a request without a file
(``tests/api/test_upload.py::test_it_keeps_a_file_part_whose_name_django_would_drop``).
Django also unescapes HTML entities in filenames, decodes base64 parts and
skips parts without a name, where this parser keeps the bytes and the name
as sent or refuses the body.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import IO

from skysolve.errors import MultipartError

#: Headers of one part must fit in this many bytes.
MAX_HEADER_BYTES = 16 * 1024
#: Fields other than files (request-json) are read into memory up to this size
#: (the same as DATA_UPLOAD_MAX_MEMORY_SIZE for url-encoded bodies).
MAX_FIELD_BYTES = 16 * 1024 * 1024
COPY_CHUNK = 1024 * 1024


__all__ = ["MultipartError"]  # raised here; it lives in skysolve.errors


@dataclass
class Part:
    name: str
    data: bytes
    filename: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: File parts of a spooled body live here instead of in ``data``.
    file: IO[bytes] | None = None

    @property
    def path(self) -> Path | None:
        return None if self.file is None else Path(self.file.name)

    @property
    def size(self) -> int:
        return len(self.data) if self.file is None else self.file.seek(0, 2)

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except FileNotFoundError:
                pass  # moved into the upload directory


_BOUNDARY_RE = re.compile(r"^[ -~]{1,200}$")
_BLANK_LINE_RE = re.compile(rb"\r?\n\r?\n")


def boundary_of(content_type: str) -> str:
    message = Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not _BOUNDARY_RE.match(boundary):
        raise MultipartError("multipart body without a usable boundary")
    return boundary


class _Bytes:
    """A body in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def find_all(self, needle: bytes) -> list[int]:
        out: list[int] = []
        at = self.data.find(needle)
        while at >= 0:
            out.append(at)
            at = self.data.find(needle, at + len(needle))
        return out

    def read(self, start: int, end: int) -> bytes:
        return self.data[start:end]


class _File:
    """A body spooled to disk, read in blocks: memory use does not grow with its size."""

    BLOCK = 1024 * 1024

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.length = file.seek(0, 2)

    def find_all(self, needle: bytes) -> list[int]:
        """Non-overlapping occurrences left to right, as bytes.split would cut."""
        out: list[int] = []
        keep = len(needle) - 1
        self.file.seek(0)
        carry, base, allowed = b"", 0, 0
        while True:
            block = self.file.read(self.BLOCK)
            data = carry + block
            at = data.find(needle, max(0, allowed - base))
            while at >= 0:
                out.append(base + at)
                allowed = base + at + len(needle)
                at = data.find(needle, at + len(needle))
            if not block:
                return out
            tail = data[-keep:] if keep else b""
            base, carry = base + len(data) - len(tail), tail

    def read(self, start: int, end: int) -> bytes:
        self.file.seek(start)
        return self.file.read(max(0, end - start))


Buffer = _Bytes | _File


def parse(body: bytes, content_type: str) -> list[Part]:
    return _parse(_Bytes(body), content_type, spool=None)


def parse_file(body: IO[bytes], content_type: str, spool: Callable[[], IO[bytes]]) -> list[Part]:
    """Parse a spooled body; file parts go to files made by ``spool()`` (the caller closes them)."""
    buf = _File(body)
    if buf.length == 0:
        raise MultipartError("empty multipart body")
    return _parse(buf, content_type, spool=spool)


def _parse(buf: Buffer, content_type: str, spool: Callable[[], IO[bytes]] | None) -> list[Part]:
    delimiter = b"--" + boundary_of(content_type).encode("ascii")
    parts: list[Part] = []
    try:
        for start, end in _spans(buf, delimiter):
            parts.append(_parse_part(buf, start, end, spool))
    except BaseException:
        for part in parts:
            part.close()
        raise
    return parts


def _spans(buf: Buffer, delimiter: bytes) -> list[tuple[int, int]]:
    """(start, end) of every part: what lies between one delimiter and the next.

    The text before the first delimiter is the preamble; a delimiter followed
    by "--" closes the body, and a body without it is refused.
    """
    positions = buf.find_all(delimiter)
    if not positions:
        raise MultipartError("multipart body does not contain its boundary")
    spans: list[tuple[int, int]] = []
    for i, position in enumerate(positions):
        start = position + len(delimiter)
        if buf.read(start, start + 2) == b"--":
            return spans
        if i + 1 == len(positions):
            # A body cut short (a client or proxy gave up, or a Content-Length
            # shorter than the body) must not pass as a smaller upload.
            raise MultipartError("multipart body ends without its closing boundary")
        spans.append(_strip_delimiter_line_ends(buf, start, positions[i + 1]))
    return spans


def _strip_delimiter_line_ends(buf: Buffer, start: int, end: int) -> tuple[int, int]:
    # The line break after the delimiter and the one before the next
    # delimiter belong to the delimiters, not to the part.
    head = buf.read(start, min(end, start + 2))
    for newline in (b"\r\n", b"\n"):
        if head.startswith(newline):
            start += len(newline)
            break
    tail = buf.read(max(start, end - 2), end)
    for newline in (b"\r\n", b"\n"):
        if tail.endswith(newline) and end - len(newline) >= start:
            end -= len(newline)
            break
    return start, end


def _parse_part(buf: Buffer, start: int, end: int, spool: Callable[[], IO[bytes]] | None) -> Part:
    window = buf.read(start, min(end, start + MAX_HEADER_BYTES))
    match = _BLANK_LINE_RE.search(window)
    if window.startswith((b"\r\n", b"\n")):
        head, data_start = b"", start + (2 if window.startswith(b"\r\n") else 1)
    elif match is None:
        raise MultipartError("multipart part without a blank line after its headers")
    else:
        head, data_start = window[: match.start()], start + match.end()
    headers: dict[str, str] = {}
    for line in re.split(rb"\r?\n", head):
        if not line.strip():
            continue
        key, sep, value = line.decode("utf-8", "replace").partition(":")
        if not sep:
            raise MultipartError(f"bad multipart header line {line[:80]!r}")
        headers[key.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise MultipartError("multipart part without Content-Disposition")
    message = Message()
    message["Content-Disposition"] = disposition
    name = message.get_param("name", header="content-disposition")
    filename = message.get_param("filename", header="content-disposition")
    if not isinstance(name, str):
        raise MultipartError("multipart part without a name")
    # NUL cannot be stored (PostgreSQL) and means nothing in a file name.
    name = name.replace("\x00", "")
    filename = filename.replace("\x00", "") if isinstance(filename, str) else None
    if filename is not None and spool is not None:
        out = spool()
        for offset in range(data_start, end, COPY_CHUNK):
            out.write(buf.read(offset, min(end, offset + COPY_CHUNK)))
        out.flush()
        out.seek(0)
        return Part(name=name, data=b"", filename=filename, headers=headers, file=out)
    if end - data_start > MAX_FIELD_BYTES:
        raise MultipartError(
            f"multipart field {name[:80]!r} is larger than {MAX_FIELD_BYTES} bytes"
        )
    return Part(name=name, data=buf.read(data_start, end), filename=filename, headers=headers)
