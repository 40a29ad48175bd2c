"""Input preparation: a claimed job in, what to solve and with which parameters out.

:func:`prepare` is the one step between claiming a job and solving it, the
same for every way a solve runs: an embedded worker solving here, the Celery
dispatcher (whose slots are embedded workers with a solve function that sends
the prepared input to a Celery worker) and the ssh solve host (a solve
function the workers load by ``SKYSOLVE_SOLVER``).  So every solver receives
one thing: an image file, a star-list file or a
:class:`~skysolve.engine.results.SourceList`, and the parameters.

In order:

1. the parameters the request stored, checked again (the stored values are
   the request's, so a rule added since can refuse them here);
2. the learned hints: what earlier solves of the same owner found
   (``SKYSOLVE_LEARNED_HINTS``), taken from the database, never from the
   request;
3. the input: the star list of a ``/api/upload`` with x/y columns or of one
   list of a batch; the file of one image of an archive; else the upload,
   fetched first when the submission is a URL (:mod:`skysolve.submissions.fetch`);
   an archive is expanded into one image and job per member
   (:mod:`skysolve.submissions.archives`) and this job goes on with the first;
4. the submission is marked processed: every job of it exists now.

Hints written in the image's own metadata (FITS WCS, RA/DEC, focal length,
EXIF) are read by the engine from the file while solving
(:mod:`skysolve.engine.inputs.hints`); where the file does not travel to the solver
(a large image sent to a Celery worker as a source list), the sender reads
them with the same function and sends them along (:mod:`skysolve.queue.transfer`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError

from skysolve.engine.inputs.archives import archive_format
from skysolve.engine.inputs.starlists import star_list_from_xy
from skysolve.engine.params import LearnedHint, SolveParameters
from skysolve.engine.results import SourceList
from skysolve.errors import BadInputError
from skysolve.submissions.archives import expand_submission_archive
from skysolve.submissions.fetch import fetch_url
from skysolve.submissions.learned_hints import learned_hints_for
from skysolve.submissions.models import Job, Submission
from skysolve.submissions.services import store_upload, upload_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """What a solver gets for one job."""

    #: An image or star-list file, or the star list itself.
    source: Path | SourceList
    params: SolveParameters
    #: The job's submission was an archive and was expanded into jobs just now.
    expanded: bool = False


def prepare(
    job: Job,
    *,
    worker_id: str,
    cancel: threading.Event | None = None,
    progress: Callable[[str], None] | None = None,
    progress_interval: float = 0.5,
) -> Prepared:
    """Turn a claimed job into what to solve and its parameters.

    ``worker_id`` is the worker holding the job: expanding an archive records
    the new jobs only while the job is still that worker's.  ``progress`` gets
    notes for the status page, at most one per ``progress_interval`` seconds
    while an archive is read; ``cancel`` stops the expansion.

    Raises :class:`~skysolve.errors.InvalidParameterError` for stored
    parameters that are no longer valid, :class:`~skysolve.errors.BadInputError`
    (:class:`~skysolve.errors.FetchError` for a URL) for unusable input, the
    engine's archive errors and :class:`~skysolve.errors.WorkerLostError`
    when the job was taken away meanwhile.
    """
    submission = job.submission
    params = SolveParameters.from_mapping(submission.parameters)
    params = params.replace(learned_hints=_learned_hints(job))
    source, expanded = _input(job, worker_id, cancel, progress, progress_interval)
    # Fetched and expanded: every job of the submission exists now.
    submission.jobs_created()
    return Prepared(source, params, expanded)


def _learned_hints(job: Job) -> tuple[LearnedHint, ...]:
    if not settings.SKYSOLVE_LEARNED_HINTS:
        return ()
    try:
        return learned_hints_for(job)
    except (OperationalError, InterfaceError) as exc:
        # Only a head start is lost: the solve goes on without it.
        log.warning("job %s: earlier solves not read: %s", job.id, exc)
        return ()


def _input(
    job: Job,
    worker_id: str,
    cancel: threading.Event | None,
    progress: Callable[[str], None] | None,
    progress_interval: float,
) -> tuple[Path | SourceList, bool]:
    submission = job.submission
    image = job.user_image
    if image.star_list is not None:  # one list of a batch
        return star_list(image.star_list), False
    if submission.source == Submission.SOURCE_XY:
        return star_list(submission.star_list or {}), False
    if image.disk_file:  # one image of an archive
        member = Path(settings.SKYSOLVE_UPLOAD_DIR) / image.disk_file
        if not member.is_file():
            raise BadInputError("the image's file (taken from the archive) is missing")
        return member, False
    if submission.source == Submission.SOURCE_URL and not submission.disk_file:
        fetch_submission(submission)
    path = upload_path(submission)
    if path is None or not path.is_file():
        raise BadInputError("the uploaded file is missing")
    if archive_format(path) is None:
        return path, False
    last = 0.0

    def note(message: str) -> None:
        # One note per member would be a database write per member.
        nonlocal last
        if progress is not None and time.monotonic() - last >= progress_interval:
            last = time.monotonic()
            progress(message)

    first = expand_submission_archive(job, path, worker_id=worker_id, cancel=cancel, progress=note)
    image.refresh_from_db()
    return first, True


def fetch_submission(submission: Submission) -> None:
    """Download a ``url_upload`` submission's file and store it as its upload."""
    tmp = Path(settings.SKYSOLVE_UPLOAD_DIR) / f"fetch-{secrets.token_hex(8)}.part"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        name = fetch_url(
            submission.url,
            tmp,
            max_bytes=settings.SKYSOLVE_URL_FETCH_MAX_BYTES,
            timeout=settings.SKYSOLVE_URL_FETCH_TIMEOUT,
            allow=settings.SKYSOLVE_URL_FETCH_ALLOW,
        )
        data = tmp.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    if not data:
        raise BadInputError("the URL gave an empty file")
    submission.disk_file = store_upload(data, name)
    submission.file_hash = hashlib.sha1(data).hexdigest()
    submission.file_size = len(data)
    submission.save(update_fields=["disk_file", "file_hash", "file_size"])


def star_list(data: dict[str, Any]) -> SourceList:
    """The :class:`SourceList` of a stored x/y upload (``x``, ``y``, ``flux``, image size)."""
    width = data.get("image_width")
    height = data.get("image_height")
    return star_list_from_xy(
        data.get("x", []),
        data.get("y", []),
        data.get("flux"),
        image_width=int(width) if width else None,
        image_height=int(height) if height else None,
    )
