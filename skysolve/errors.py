"""The one exception tree of skysolve.

Two branches under :class:`SkysolveError`:

- :class:`SolveError`: what goes wrong with a solve.  Everything that goes
  wrong outside our own code (a library that cannot read a file, the solver
  binary, a remote solve host) is translated at the edge into one of these,
  so callers need to know only this module.  ``retryable`` tells the queue
  whether trying the same job again may succeed.
- :class:`ServiceError`: a request the service refuses (a bad parameter, an
  id the viewer may not see, too many submissions, too large an upload, a
  broken multipart body, no picture to show).  Its message is for the client
  and its ``status`` the HTTP status; the API's decorator
  (``skysolve.api.decorators``) and the web site's views turn it into the
  answer, nothing below them knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class SkysolveError(Exception):
    """Base class of every error skysolve raises on purpose."""


class SolveError(SkysolveError):
    """Something went wrong with a solve (the input, the solver, the indexes, the time)."""

    #: Short machine-readable reason, stable across versions (used in metrics and the API).
    code: str = "solve_error"
    #: True when the same work may succeed if tried again (a lost worker, a crashed solver).
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInputError(SolveError):
    """The input cannot be used: unreadable, unsupported, empty or absurd."""

    code = "bad_input"


class UnsupportedFormatError(BadInputError):
    """The file is not in any format skysolve reads."""

    code = "unsupported_format"


class CorruptFileError(BadInputError):
    """The file claims a supported format but is truncated or damaged."""

    code = "corrupt_file"


class ImageTooLargeError(BadInputError):
    """The image (or star list) is larger than the configured limits."""

    code = "too_large"


class InvalidParameterError(BadInputError):
    """A solve parameter is out of range or inconsistent with another."""

    code = "invalid_parameter"


class NoStarsError(SolveError):
    """Source extraction found too few stars to attempt a solve."""

    code = "no_stars"


class NoMatchError(SolveError):
    """The solver searched and found no calibration."""

    code = "no_match"


class NoIndexError(SolveError):
    """No configured index file can match the requested scale range."""

    code = "no_index"


class SolveTimeoutError(SolveError):
    """The solve ran past its wall-clock limit and was stopped."""

    code = "timeout"


class SolveCancelledError(SolveError):
    """The solve was cancelled by its owner."""

    code = "cancelled"


class SolverFailedError(SolveError):
    """The solver process crashed or misbehaved; trying again may work."""

    code = "solver_failed"
    retryable = True


class IndexFetchError(SolveError):
    """An index file could not be downloaded whole and correct; nothing was installed."""

    code = "index_fetch"
    retryable = True


class ConfigurationError(SolveError):
    """skysolve itself is misconfigured (missing binary, no index directory)."""

    code = "configuration"


class FetchError(BadInputError):
    """A submitted URL could not be fetched (refused address, HTTP error, too large, too slow)."""

    code = "fetch_failed"


class StorageError(SolveError):
    """The data directory cannot take the job's files (disk full, read-only, missing)."""

    code = "storage"


class AbandonedError(SolveCancelledError):
    """Cancelled because no client asked for the job any more (SKYSOLVE_ABANDON_SECONDS)."""

    code = "abandoned"


class WorkerLostError(SolveError):
    """The job was taken away from this worker (its lease ran out) while it worked on it."""

    code = "worker_lost"


# -- requests the service refuses --------------------------------------------------------


class ServiceError(SkysolveError):
    """A request that cannot be honoured; the message is shown to the client.

    ``status`` is the HTTP status of the answer (200 by default: nova answers
    a refused API call with ``{"status": "error"}`` and 200); ``headers`` go
    with it.
    """

    status: int = 200

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = {}

    def __str__(self) -> str:
        return self.message


class NotFound(ServiceError):
    """No such thing, or one the viewer may not see; ``kind``/``object_id`` name a looked-up id."""

    status = 404

    def __init__(self, message: str, *, kind: str = "", object_id: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.object_id = object_id


class RateLimited(ServiceError):
    """Too many submissions (or missed ids) lately; ``retry_after`` is in seconds."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


def too_large_message(limit: int) -> str:
    return f"upload larger than {limit} bytes ({limit // (1024 * 1024)} MB)"


class UploadTooLarge(ServiceError):
    """The request body passed SKYSOLVE_MAX_UPLOAD_MB; reading stopped there."""

    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(too_large_message(limit))
        self.limit = limit


class MultipartError(ServiceError, ValueError):
    """A multipart body that cannot be read (no boundary, a part cut short...)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"bad multipart body: {detail}")
        self.detail = detail


class NoPicture(ServiceError):
    """There is nothing to show for this image (no file yet, or not an image)."""

    status = 404


# -- one serialisation, for every transport (Celery task, ssh solve host) ---------------

#: Code of an unexpected failure on a remote host (not one of this module's codes).
INTERNAL = "internal"


def error_to_dict(error: SolveError) -> dict[str, Any]:
    """A JSON-able description of ``error``: its code, message and retryable flag."""
    return {"code": error.code, "message": error.message, "retryable": bool(error.retryable)}


def error_from_dict(doc: object, *, sender: str = "") -> SolveError:
    """The exception of this module that :func:`error_to_dict`'s ``doc`` names.

    A known code gives its class, whose ``retryable`` is the class's own (a
    code means one thing on every host).  A code this side does not know (a
    newer host, or ``internal``) gives a plain :class:`SolveError` keeping the
    sender's code and retryable flag; ``sender`` then prefixes the message.
    """
    if not isinstance(doc, dict):
        return ConfigurationError(f"{sender or 'the solver'} sent an error without details")
    code = str(doc.get("code") or SolveError.code)
    message = str(doc.get("message") or code)
    cls = error_classes().get(code)
    if cls is not None:
        return cls(message)
    error = SolveError(f"{sender}: {message}" if sender else message)
    error.code = code
    error.retryable = bool(doc.get("retryable", False))
    return error


def error_classes() -> dict[str, type[SolveError]]:
    """This module's error classes by code (subclasses defined elsewhere do not count)."""
    found: dict[str, type[SolveError]] = {}

    def walk(cls: type[SolveError]) -> Iterator[type[SolveError]]:
        yield cls
        for sub in cls.__subclasses__():
            yield from walk(sub)

    for cls in walk(SolveError):
        if cls.__module__ == __name__:
            found.setdefault(cls.code, cls)
    return found
