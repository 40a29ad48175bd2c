"""Uploads stream to temporary files under the data directory, capped while they arrive.

``SKYSOLVE_MAX_UPLOAD_MB`` is enforced on the bytes read, not on what the
client announces: a request body is read in chunks and reading stops as soon
as the limit is passed, so a client that lies about (or leaves out)
Content-Length, or sends a chunked body, can neither fill memory nor disk.
Uploaded files never sit in memory whole; they are moved, not copied, into
the upload directory when accepted.

Two users: the API reads its own (tolerant) multipart bodies with
:func:`spool_body`; the web site's forms go through Django's multipart parser
with :class:`LimitedUploadHandler` (the one entry of ``FILE_UPLOAD_HANDLERS``).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, QueryDict
from django.utils.datastructures import MultiValueDict

from skysolve.errors import UploadTooLarge, too_large_message

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
#: Attribute set on a request whose body went over the limit.
TOO_LARGE_FLAG = "skysolve_upload_too_large"


__all__ = ["UploadTooLarge", "too_large_message"]  # they live in skysolve.errors


def spool_dir() -> Path:
    """Where bodies and files wait while a request is handled (same disk as the uploads)."""
    path = Path(settings.DATA_DIR) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


#: A spooled file untouched for this long belongs to a process that died mid-request
#: (a closed spool file is deleted at once; an upload in progress keeps writing).
STALE_SPOOL_SECONDS = 3600.0
_SWEEP_EVERY_SECONDS = 600.0
_last_sweep = 0.0


def spool_file(suffix: str = ".part") -> IO[bytes]:
    """A new temporary file in :func:`spool_dir`, deleted when closed."""
    global _last_sweep
    directory = spool_dir()
    now = time.monotonic()
    if now - _last_sweep > _SWEEP_EVERY_SECONDS:
        _last_sweep = now
        sweep_spool(directory)
    return tempfile.NamedTemporaryFile(dir=directory, prefix="upload-", suffix=suffix)


def sweep_spool(directory: Path, *, max_age: float = STALE_SPOOL_SECONDS) -> int:
    """Remove the spool files a killed process left behind; returns how many.

    Only this module's own ``upload-*`` files older than ``max_age`` seconds
    since their last write are removed.
    """
    removed = 0
    cutoff = time.time() - max_age
    for path in directory.glob("upload-*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue  # removed meanwhile by its own process, or not ours to remove
    if removed:
        log.info("removed %d stale upload spool files from %s", removed, directory)
    return removed


def body_stream(request: HttpRequest) -> Any:
    """The request body as a file-like object that never reads past its end.

    Django reads at most Content-Length bytes and takes a body without one as
    empty; a chunked body (gunicorn de-chunks it) has no Content-Length, so it
    is read from the WSGI input directly and only our limit stops it.
    """
    meta = request.META
    chunked = meta.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    if chunked and not meta.get("CONTENT_LENGTH") and "wsgi.input" in meta:
        return meta["wsgi.input"]
    return request


def announced_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def spool_body(request: HttpRequest, limit: int) -> IO[bytes]:
    """Copy the request body into a temporary file; raise UploadTooLarge past ``limit``.

    An announced length over the limit is refused before anything is read.
    The caller closes the file (which deletes it).
    """
    if announced_length(request) > limit:
        raise UploadTooLarge(limit)
    stream = body_stream(request)
    out = spool_file(".body")
    try:
        total = 0
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise UploadTooLarge(limit)
            out.write(chunk)
        out.flush()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


class SpooledUpload(UploadedFile):
    """An uploaded file written to :func:`spool_dir` as it arrives."""

    def __init__(self, name: str, content_type: str, charset: str | None) -> None:
        self.spooled = spool_file(".upload")
        super().__init__(self.spooled, name, content_type, 0, charset)

    def temporary_file_path(self) -> str:
        return str(self.spooled.name)

    def close(self) -> None:
        try:
            self.spooled.close()
        except FileNotFoundError:
            # Accepted uploads are moved into the upload directory.
            pass


class LimitedUploadHandler(FileUploadHandler):
    """Django upload handler: every file to disk, the whole body capped at the limit.

    Past the limit it stops the upload without reading the rest (the
    connection is closed after the answer) and marks the request, so the view
    answers 413 instead of treating a cut-off form as a short one.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = int(settings.SKYSOLVE_MAX_UPLOAD_BYTES)
        self.received = 0
        self.upload: SpooledUpload | None = None

    def _too_large(self) -> None:
        if self.request is not None:
            setattr(self.request, TOO_LARGE_FLAG, True)

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> tuple[QueryDict, MultiValueDict[str, UploadedFile]] | None:
        if content_length > self.limit:
            # Refused before reading a byte: empty POST and FILES, and the flag.
            self._too_large()
            return QueryDict(), MultiValueDict()
        return None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.upload = SpooledUpload(self.file_name or "", self.content_type or "", self.charset)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self._too_large()
            raise StopUpload(connection_reset=True)
        assert self.upload is not None
        self.upload.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        assert self.upload is not None
        self.upload.seek(0)
        self.upload.size = file_size
        return self.upload

    def upload_interrupted(self) -> None:
        if self.upload is not None:
            self.upload.close()


def was_too_large(request: HttpRequest) -> bool:
    return bool(getattr(request, TOO_LARGE_FLAG, False))
