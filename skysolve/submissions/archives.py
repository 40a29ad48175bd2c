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
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from skysolve.engine.inputs.archives import ExpandedArchive, expand_archive
from skysolve.errors import WorkerLostError
from skysolve.submissions.models import Job, Submission, UserImage
from skysolve.submissions.signals import announce_queued

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
        job_ids = _record(job, expanded, worker_id=worker_id)
    except BaseException:
        shutil.rmtree(attempt, ignore_errors=True)
        raise
    log.info(
        "job %s (submission %s): %s; %d more job(s) queued",
        job.id, submission.pk, expanded.summary(), len(job_ids),
    )  # fmt: skip
    return expanded.members[0].path


def _record(job: Job, expanded: ExpandedArchive, *, worker_id: str) -> list[int]:
    submission = job.submission
    upload_dir = Path(settings.SKYSOLVE_UPLOAD_DIR)
    first, *others = expanded.members
    now = timezone.now()
    job_ids: list[int] = []
    with transaction.atomic():
        # Both updates are conditional: on PostgreSQL they lock the rows until
        # the commit, on SQLite the first takes the write lock.
        mine = Job.objects.filter(id=job.id, status=Job.RUNNING, worker_id=worker_id).update(
            stage="preparing"
        )
        if not mine:
            raise WorkerLostError("the job was taken away while its archive was read")
        placeholder = job.user_image
        claimed = UserImage.objects.filter(
            pk=placeholder.pk, archive_member__isnull=True, disk_file=""
        ).update(
            archive_member=first.index,
            disk_file=str(first.path.relative_to(upload_dir)),
            original_filename=first.name,
        )
        if not claimed:
            raise WorkerLostError("the archive was expanded already")
        album = submission.album
        for member in others:
            # Created and queued in archive order (ids are random, times are not).
            offset = timedelta(microseconds=member.index)
            image = UserImage.objects.create(
                submission=submission,
                user=submission.user,
                original_filename=member.name,
                publicly_visible=placeholder.publicly_visible,
                created=placeholder.created + offset,
                disk_file=str(member.path.relative_to(upload_dir)),
                archive_member=member.index,
            )
            if album is not None:
                album.user_images.add(image)
            new = Job.objects.create(
                user_image=image, owner_key=job.owner_key, queued_at=now + offset
            )
            job_ids.append(new.id)
        Submission.objects.filter(pk=submission.pk).update(
            error_message=expanded.summary() if expanded.skipped else ""
        )
        transaction.on_commit(lambda: announce_queued(job_ids))
    placeholder.refresh_from_db()
    return job_ids
