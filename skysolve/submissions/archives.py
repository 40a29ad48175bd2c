"""A tar or zip submission becomes one image and one job per image inside.

nova does the same: the submission keeps the archive, and each image in it is
solved on its own with its own results.  The expansion happens in the worker's
input preparation (:func:`skysolve.submissions.preparation.prepare`), whatever the
way the archive arrived (API upload, web upload, ``url_upload``): the content
of a URL is only known there, and a request thread must not unpack 2 GB.

The first image takes over the job that found the archive (its user image
gets the member's file), so clients polling that job follow the first image;
the others get new images and jobs, queued like any other job of the same
submitter (the round-robin fairness applies to them too).

Expansion is idempotent.  The engine writes the images into a fresh directory
first; then one transaction, guarded by two conditional updates (the job is
still this worker's; its image is not expanded yet), creates every image and
job.  A worker that dies before the commit leaves only files nobody refers to,
removed by the next attempt; one that dies after it leaves a job whose image
points at its member, and the next attempt just solves that.  The unique
(submission, archive_member) constraint backs this up in the database.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from skysolve.engine.inputs.archives import expand_archive
from skysolve.submissions.models import Job, Submission
from skysolve.submissions.transitions import record_archive_expansion

log = logging.getLogger(__name__)


def archive_root(submission: Submission) -> Path:
    return Path(settings.SKYSOLVE_UPLOAD_DIR) / "archives" / str(int(submission.pk))


def expand_submission_archive(
    job: Job,
    archive: Path,
    *,
    worker_id: str,
    cancel: threading.Event | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Turn the archive of ``job``'s submission into one image and job per image inside.

    Returns the file of the first image, which ``job`` goes on to solve.
    Raises the engine's errors for an unusable archive (see
    :func:`skysolve.engine.inputs.archives.expand_archive`) and
    :class:`~skysolve.errors.WorkerLostError`
    when the job stopped being ``worker_id``'s meanwhile.
    """
    submission = job.submission
    root = archive_root(submission)
    # Files of an attempt that never committed: nothing refers to them.
    shutil.rmtree(root, ignore_errors=True)
    attempt = root / secrets.token_hex(8)
    expanded = expand_archive(
        archive,
        attempt,
        max_members=settings.SKYSOLVE_ARCHIVE_MAX_MEMBERS,
        max_bytes=settings.SKYSOLVE_ARCHIVE_MAX_BYTES,
        cancel=cancel,
        progress=progress,
    )
    try:
        job_ids = record_archive_expansion(job, expanded, worker_id=worker_id)
    except BaseException:
        shutil.rmtree(attempt, ignore_errors=True)
        raise
    log.info(
        "job %s (submission %s): %s; %d more job(s) queued",
        job.id, submission.pk, expanded.summary(), len(job_ids),
    )  # fmt: skip
    return expanded.members[0].path
