"""The framed stream between a solve client and a solve host (``skysolve-remote/1``).

nova.astrometry.net pipes a tar file of the job through ``ssh solvehost`` and
reads a tar file back; errors then show up only as missing files.  skysolve
keeps the shape -- one job down stdin, its results up stdout, one process per
job -- but frames both directions so every failure comes back with a code.

Request (client to host, on the host's stdin)
    One line of UTF-8 JSON ending in ``\\n`` (at most :data:`MAX_REQUEST_HEADER`
    bytes)::

        {"protocol": "skysolve-remote/1",
         "params": {...SolveParameters.to_dict()...},
         "input": {"kind": "file", "size": N}}

    followed by exactly ``N`` bytes: the image or star-list file as uploaded
    (its format is sniffed from the content; the client's file name is never
    sent).  For a :class:`~skysolve.engine.results.SourceList` the input is ::

        {"kind": "sources", "size": N, "count": n, "width": w, "height": h,
         "columns": ["x", "y", "flux"] (+ "background")}

    and the bytes are the columns one after the other, ``n`` little-endian
    float64 values each.  The client then sends nothing more but keeps the
    stream open: the host takes end-of-file before it has answered as the
    client hanging up, and cancels the solve.

Answer (host to client, on the host's stdout)
    Zero or more progress lines, ``{"type": "progress", "stage": s,
    "message": m}``, then one answer line (at most :data:`MAX_ANSWER_HEADER`
    bytes)::

        {"type": "answer", "protocol": "skysolve-remote/1",
         "status": "ok" | "error",
         "error": null | {"code": c, "message": m, "retryable": bool},
                 (skysolve.errors.error_to_dict, as every transport sends errors)
         "result": {...SolveResult.to_json(), "files" as key -> name...} | null,
                 (rebuilt with SolveResult.from_json, as the Celery reply is)
         "log": "...",
         "wcs_header": the WCS header as FITS card text | null,
         "files": [{"key": "wcs", "name": "wcs.fits", "size": N}, ...]}

    followed by the files' bytes, concatenated in manifest order, then
    end-of-file.  ``status`` is "ok" for a solve that ran, solved or not (an
    unsolved result carries its reason in ``result["error"]``); "error" when it
    could not run (bad input, timeout, a crash), with ``result`` null and no
    files.  Error codes are those of :mod:`skysolve.errors`; an unexpected
    failure on the host is ``internal``.  Names are bare file names: a client
    refuses any with a path separator or ``..``.  The host's stderr carries
    only its log, never part of the protocol.
"""

from __future__ import annotations

import json
from typing import IO, Any, Protocol, TypeGuard

PROTOCOL = "skysolve-remote/1"

#: Longest request header line, bytes.
MAX_REQUEST_HEADER = 1 << 20
#: Longest answer or progress line, bytes (the answer carries the solve log).
MAX_ANSWER_HEADER = 64 << 20

CHUNK = 1 << 20


def dump_line(doc: dict[str, Any]) -> bytes:
    """One protocol line: compact JSON and a newline (JSON never contains a raw one)."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def read_line(stream: IO[bytes], *, limit: int, what: str) -> dict[str, Any] | None:
    """The next JSON line as a dict, or None at end-of-file.

    Raises :class:`ValueError` (with a message for the peer) when the line is
    longer than ``limit`` or not a JSON object, :class:`EOFError` when the
    stream ends inside it.
    """
    line = stream.readline(limit + 1)
    if not line:
        return None
    if not line.endswith(b"\n"):
        if len(line) > limit:
            raise ValueError(f"the {what} is longer than {limit} bytes")
        raise EOFError(f"the stream ended inside the {what}")
    try:
        doc = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the {what} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"the {what} is not a JSON object")
    return doc


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


def copy_exact(source: IO[bytes], target: Writable, size: int) -> int:
    """Copy ``size`` bytes; returns how many arrived before end-of-file."""
    done = 0
    while done < size:
        chunk = source.read(min(CHUNK, size - done))
        if not chunk:
            break
        target.write(chunk)
        done += len(chunk)
    return done


# -- names and numbers ------------------------------------------------------------


def is_safe_name(name: object) -> TypeGuard[str]:
    """A bare file name: no separator, no ``..``, nothing hidden or special."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and "/" not in name
        and "\\" not in name
        and ".." not in name
        and "\x00" not in name
        and not name.startswith(".")
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_size(value: object) -> TypeGuard[int]:
    return _is_int(value) and value >= 0
