"""What travels between the web host and a Celery worker on another machine.

A remote worker shares no filesystem with the web host, so a solve request
carries everything the solve needs and the reply carries everything it made:

* request: the parameters and either a source list (the columns of
  :func:`skysolve.engine.wire.encode_sources` in base64 -- a few KB) or the
  bytes of an image file up to a size cap.  A larger image stays on the web
  host (:func:`outgoing`): its sources and its file's hints are found there by
  the engine (:func:`skysolve.engine.offload.image_sources`) and sent instead,
  and its pictures are drawn there once the answer is back
  (:func:`skysolve.engine.offload.draw_pictures`; the module says why).
* reply: the :meth:`SolveResult.to_json` object (rebuilt with
  :meth:`SolveResult.from_json`, as the ssh solve host's answer is), the WCS
  header as text and every result file (FITS, pictures, log) base64-encoded,
  which the web host writes into the job's directory; an error as
  :func:`skysolve.errors.error_to_dict`.

Both are plain JSON-able dicts (Celery's JSON serializer, no pickle), built
and read here without Django, so the worker needs only the engine.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astropy.io import fits

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveResult, SourceList
from skysolve.engine.wire import decode_sources, encode_sources
from skysolve.errors import BadInputError, SolverFailedError

#: Version of the request/reply layout; a worker refuses requests it does not know.
FORMAT = 2


# -- requests ------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """What is sent for one solve."""

    source: Path | SourceList
    params: SolveParameters
    #: An image above the cap, kept here: its pictures are drawn here after the reply.
    image_kept: Path | None = None


def outgoing(
    source: Path | SourceList, params: SolveParameters, *, max_file_bytes: int
) -> Outgoing:
    """``source`` as it travels: files above ``max_file_bytes`` become their source lists.

    An image's list carries the image's metadata hints in ``params.file_hints``.
    """
    if not isinstance(source, Path) or source.stat().st_size <= max_file_bytes:
        return Outgoing(source, params)
    from skysolve.engine.inputs.starlists import looks_like_star_list, read_star_list
    from skysolve.engine.offload import image_sources

    if looks_like_star_list(source):
        found = read_star_list(
            source, image_width=params.image_width, image_height=params.image_height
        )
        return Outgoing(found, params)
    sources, with_hints = image_sources(source, params)
    # The pictures are drawn here on the kept image: the worker draws none.
    return Outgoing(sources, with_hints.replace(pictures=False), image_kept=source)


def pack_request(
    job_id: int,
    source: Path | SourceList,
    params: SolveParameters,
    *,
    max_file_bytes: int,
) -> dict[str, Any]:
    """The task argument for solving ``source`` (see :func:`outgoing` for large files)."""
    sent = outgoing(source, params, max_file_bytes=max_file_bytes)
    request: dict[str, Any] = {
        "format": FORMAT,
        "job_id": int(job_id),
        "params": sent.params.to_dict(),
    }
    if isinstance(sent.source, SourceList):
        meta, body = encode_sources(sent.source)
        request["sources"] = {**meta, "data": base64.b64encode(body).decode("ascii")}
    else:
        request["file"] = {
            "name": sent.source.name,
            "data": base64.b64encode(sent.source.read_bytes()).decode("ascii"),
        }
    return request


def unpack_request(
    request: dict[str, Any], work_dir: Path
) -> tuple[Path | SourceList, SolveParameters]:
    """The solver's input and parameters; an image file is written under ``work_dir``."""
    if request.get("format") != FORMAT:
        raise BadInputError(f"unknown solve request format {request.get('format')!r}")
    params = SolveParameters.from_mapping(request["params"])
    if "sources" in request:
        meta = dict(request["sources"])
        return decode_sources(meta, base64.b64decode(meta.pop("data"))), params
    f = request["file"]
    # The client's file name never builds a path: keep only a safe suffix.
    suffix = Path(str(f.get("name", ""))).suffix.lower()
    if not suffix[1:].isalnum() or len(suffix) > 6:
        suffix = ""
    path = work_dir / f"input{suffix}"
    path.write_bytes(base64.b64decode(f["data"]))
    return path, params


# -- replies ---------------------------------------------------------------------


def pack_result(result: SolveResult) -> dict[str, Any]:
    """The task's return value: the result and the bytes of every file it names."""
    files: dict[str, dict[str, str]] = {}
    first_with: dict[bytes, str] = {}
    for key, path in result.files.items():
        path = Path(path)
        if not path.is_file():
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).digest()
        if digest in first_with:
            # Display and full-size pictures of a small image are the same bytes.
            files[key] = {"name": path.name, "same_as": first_with[digest]}
        else:
            first_with[digest] = key
            files[key] = {"name": path.name, "data": base64.b64encode(data).decode("ascii")}
    return {
        "format": FORMAT,
        "result": result.to_json(),
        "wcs_header": None if result.wcs_header is None else result.wcs_header.tostring(),
        "log": result.log,
        "files": files,
    }


def unpack_result(reply: dict[str, Any], out_dir: Path) -> SolveResult:
    """Write the reply's files into ``out_dir`` and rebuild the :class:`SolveResult`."""
    if reply.get("format") != FORMAT:
        raise SolverFailedError(f"unknown solve reply format {reply.get('format')!r}")
    data = reply["result"]
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    sent = reply.get("files", {})
    tag = secrets.token_hex(4)
    for key, item in sent.items():
        name = Path(str(item["name"])).name or key
        target = out_dir / name
        encoded = item["data"] if "data" in item else sent[item["same_as"]]["data"]
        _write_beside(target, base64.b64decode(encoded), tag)
        files[str(key)] = target
    header_text = reply.get("wcs_header")
    return SolveResult.from_json(
        data,
        files=files,
        log=str(reply.get("log") or ""),
        wcs_header=None if header_text is None else fits.Header.fromstring(header_text),
        sender="the worker",
    )


def _write_beside(target: Path, data: bytes, tag: str) -> None:
    """Write ``target`` beside and rename it: a reader never sees half a file.

    The temporary name is unique to this reply (``tag``), so two replies for
    the same job never write into one temporary file.
    """
    tmp = target.with_name(f"{target.name}.{tag}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
