"""A tolerant multipart/form-data parser for the API's uploads.

The reference ``client.py`` of astrometry.net writes its body with the email
package: boundary lines end in a bare ``\\n``, part headers in ``\\r\\n``, the
boundary is quoted in the Content-Type header, and parts carry
``MIME-Version`` and a lowercase ``Content-disposition``.  This parser accepts
that and ordinary browser/requests bodies alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message


class MultipartError(ValueError):
    pass


@dataclass
class Part:
    name: str
    data: bytes
    filename: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


_BOUNDARY_RE = re.compile(r"^[ -~]{1,200}$")


def boundary_of(content_type: str) -> str:
    message = Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not _BOUNDARY_RE.match(boundary):
        raise MultipartError("multipart body without a usable boundary")
    return boundary


def parse(body: bytes, content_type: str) -> list[Part]:
    delimiter = b"--" + boundary_of(content_type).encode("ascii")
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise MultipartError("multipart body does not contain its boundary")
    parts: list[Part] = []
    # chunks[0] is the preamble; each later chunk is one part, the one after
    # the closing delimiter starts with "--".
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(_parse_part(_strip_delimiter_line_ends(chunk)))
    return parts


def _strip_delimiter_line_ends(chunk: bytes) -> bytes:
    # The line break after the delimiter and the one before the next
    # delimiter belong to the delimiters, not to the part.
    for newline in (b"\r\n", b"\n"):
        if chunk.startswith(newline):
            chunk = chunk[len(newline) :]
            break
    for newline in (b"\r\n", b"\n"):
        if chunk.endswith(newline):
            chunk = chunk[: -len(newline)]
            break
    return chunk


def _parse_part(chunk: bytes) -> Part:
    match = re.search(rb"\r?\n\r?\n", chunk)
    if chunk.startswith((b"\r\n", b"\n")):
        head, data = b"", chunk[2 if chunk.startswith(b"\r\n") else 1 :]
    elif match is None:
        raise MultipartError("multipart part without a blank line after its headers")
    else:
        head, data = chunk[: match.start()], chunk[match.end() :]
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
    return Part(
        name=name,
        data=data,
        filename=filename if isinstance(filename, str) else None,
        headers=headers,
    )
