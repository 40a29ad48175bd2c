"""A job's life: every change of a job's state, each one named transition.

A job is ``queued`` when made; a worker :func:`claim`\\ s it (``running``,
stage :data:`PREPARING`), :func:`renew`\\ s its lease while it works and notes
its stage (:func:`note_stage`); an archive's job is expanded into one job per
image (:func:`record_archive_expansion`).  A verified answer is recorded at once
(:func:`record_answer`: ``success`` in stage :data:`PICTURES`), the files follow
(:func:`record_files`, stage :data:`FINISHED`); any other outcome is one
:func:`finish`.  A worker that stops renewing has its job queued again
(:func:`requeue`) or, past its attempts, failed (:func:`fail_worker_lost`).
Owners cancel (:func:`cancel_job`, :func:`request_cancel`), the queue cancels jobs nobody polls
(:func:`cancel_abandoned`), the staff retry (:func:`retry`).

Each transition is one conditional ``UPDATE`` (it changes the row only from
the state it expects, and says whether it did) together with what must go
with it: the published files, the machine tags, the submission's processing
times.  Nothing else in skysolve updates a ``Job`` row
(``tests/submissions/test_transitions_only.py`` checks that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from skysolve.community.models import Tag, TaggedJob, TaggedUserImage
from skysolve.engine.inputs.archives import ExpandedArchive
from skysolve.errors import (
    AbandonedError,
    BadInputError,
    ServiceError,
    SolveError,
    WorkerLostError,
)
from skysolve.submissions.access import Viewer, owns
from skysolve.submissions.jobfiles import publish
from skysolve.submissions.models import Job, Submission, UserImage
from skysolve.submissions.signals import announce_queued
from skysolve.submissions.sky import sky_columns

log = logging.getLogger(__name__)

# -- names ---------------------------------------------------------------------

#: The job's statuses (the queue state), as the model names them.
QUEUED = Job.QUEUED
RUNNING = Job.RUNNING
SUCCESS = Job.SUCCESS
FAILURE = Job.FAILURE
CANCELLED = Job.CANCELLED
FINISHED_STATUSES = Job.FINISHED

#: Stages the queue sets (the engine's own stages come through :func:`note_stage`).
#: Reading the input: fetching, expanding an archive, the parameters.
PREPARING = "preparing"
#: A success whose pictures and other files are still being made.
PICTURES = "pictures"
#: Nothing more will happen to the job.
FINISHED = "finished"

#: Lines of progress kept in a running job's log.
LOG_LINES = 200


# -- the queue takes a job --------------------------------------------------------


def claim(job_id: int, worker_id: str, *, now: datetime, lease: timedelta) -> bool:
    """Queued to running, ``worker_id``'s until ``now + lease``; False if another took it."""
    changed = Job.objects.filter(id=job_id, status=QUEUED).update(
        status=RUNNING,
        stage=PREPARING,
        worker_id=worker_id,
        started_at=now,
        lease_expires=now + lease,
        attempts=F("attempts") + 1,
    )
    return changed == 1


def start_processing(submission_id: int, *, now: datetime) -> None:
    """The submission's processing started with its first claimed job."""
    Submission.objects.filter(pk=submission_id, processing_started__isnull=True).update(
        processing_started=now
    )


def renew(job_id: int, worker_id: str, *, now: datetime, lease: timedelta, answered: bool) -> bool:
    """Extend the lease of ``worker_id``'s job; False when it is no longer theirs.

    ``answered``: the answer is recorded and the job is a success still
    drawing its pictures.
    """
    status = SUCCESS if answered else RUNNING
    mine = Job.objects.filter(id=job_id, status=status, worker_id=worker_id)
    return bool(mine.update(lease_expires=now + lease))


def stop_requested(job_id: int, worker_id: str) -> str | None:
    """The error code of a stop asked of ``worker_id``'s running job, or None (not asked)."""
    mine = Job.objects.filter(id=job_id, status=RUNNING, worker_id=worker_id, cancel_requested=True)
    return mine.values_list("error_code", flat=True).first()


def note_stage(job_id: int, worker_id: str, stage: str, lines: Sequence[str]) -> None:
    """Show the running job's stage and the last lines of its progress (replaced at the end)."""
    Job.objects.filter(id=job_id, status=RUNNING, worker_id=worker_id).update(
        stage=stage[:20], log="\n".join(lines[-LOG_LINES:])
    )


def record_archive_expansion(job: Job, expanded: ExpandedArchive, *, worker_id: str) -> list[int]:
    """``job``'s image becomes the archive's first member; each other member a new queued job.

    Both updates are conditional (the job is still ``worker_id``'s, its image
    not expanded yet), else :class:`~skysolve.errors.WorkerLostError`.
    Returns the new jobs' ids.
    """
    submission = job.submission
    upload_dir = Path(settings.SKYSOLVE_UPLOAD_DIR)
    first, *others = expanded.members
    now = timezone.now()
    job_ids: list[int] = []
    with transaction.atomic():
        # Both updates are conditional: on PostgreSQL they lock the rows until
        # the commit, on SQLite the first takes the write lock.
        mine = Job.objects.filter(id=job.id, status=RUNNING, worker_id=worker_id).update(
            stage=PREPARING
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


# -- the answer and the outcome ---------------------------------------------------


def record_answer(
    job: Job,
    worker_id: str,
    *,
    now: datetime,
    lease: timedelta,
    result: dict[str, Any],
    calibration: dict[str, Any],
    objects_in_field: Sequence[str],
    out_dir: Path,
    log_lines: Sequence[str] | None = None,
    on_published: Callable[[], None] = lambda: None,
) -> bool:
    """Running to success in stage :data:`PICTURES`: the calibration, visible at once.

    The job keeps its lease while the pictures are drawn (:func:`record_files`
    ends that).  ``out_dir`` becomes the job's files and ``on_published`` is
    called inside the transaction; the objects in the field become machine
    tags.  False when the job is no longer ``worker_id``'s.
    """
    values: dict[str, Any] = {
        "status": SUCCESS,
        "stage": PICTURES,
        "finished_at": now,
        "lease_expires": now + lease,
        "error_code": "",
        "error_message": "",
        "result": result,
        **calibration_columns(calibration),
    }
    if log_lines is not None:
        values["log"] = "\n".join(log_lines[-LOG_LINES:])
    with transaction.atomic():
        changed = Job.objects.filter(id=job.id, status=RUNNING, worker_id=worker_id).update(
            **values
        )
        if not changed:
            log.info("job %s: answer dropped, the job was cancelled or taken away", job.id)
            return False
        publish(job.id, out_dir)
        on_published()
        add_machine_tags(job.user_image, objects_in_field)
    log.info("job %s (submission %s): success (pictures follow)", job.id, job.submission.pk)
    _finish_submission(job.id)
    return True


def record_files(
    job_id: int,
    worker_id: str,
    *,
    result: dict[str, Any] | None,
    log_text: str = "",
    error: Exception | None = None,
) -> bool:
    """A success's stage :data:`PICTURES` to :data:`FINISHED`, with the whole result.

    Without ``result`` (``error`` says why some files are missing) the
    answer's result and log stay.  False when the job was retried or taken away.
    """
    values: dict[str, Any] = {"stage": FINISHED, "lease_expires": None}
    if result is not None:
        values["result"] = result
        values["log"] = log_text
    changed = Job.objects.filter(
        id=job_id, status=SUCCESS, stage=PICTURES, worker_id=worker_id
    ).update(**values)
    if error is not None and changed:
        log.warning("job %s: some result files are missing: %s", job_id, error)
    if not changed:
        log.info("job %s: files dropped, the job was retried or taken away", job_id)
    return bool(changed)


def finish(
    job: Job,
    worker_id: str,
    status: str,
    *,
    now: datetime,
    error: SolveError | None = None,
    result: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    objects_in_field: Sequence[str] = (),
    log_text: str | None = None,
    out_dir: Path | None = None,
    on_published: Callable[[], None] = lambda: None,
) -> bool:
    """Running to ``status`` (success, failure or cancelled), stage :data:`FINISHED`.

    ``out_dir``, when it exists, becomes the job's files inside the
    transaction (if it cannot, nothing is recorded: the ``OSError`` goes to
    the caller); a success's objects become machine tags; an unusable input
    sets the submission's message.  False when the job is no longer
    ``worker_id``'s (cancelled or requeued meanwhile: the outcome is stale).
    """
    values: dict[str, Any] = {
        "status": status,
        "stage": FINISHED,
        "finished_at": now,
        "lease_expires": None,
        "error_code": "" if error is None else error.code,
        "error_message": "" if error is None else error.message,
    }
    if result is not None:
        values["result"] = result
    if calibration is not None:
        values.update(calibration_columns(calibration))
    if log_text is not None:
        values["log"] = log_text
    with transaction.atomic():
        changed = Job.objects.filter(id=job.id, status=RUNNING, worker_id=worker_id).update(
            **values
        )
        if not changed:
            log.info("job %s: result dropped, the job was cancelled or taken away", job.id)
            return False
        if out_dir is not None and out_dir.is_dir():
            # Still inside the transaction: if the files cannot be published
            # the result is not recorded either.
            publish(job.id, out_dir)
            on_published()
        if objects_in_field:
            add_machine_tags(job.user_image, objects_in_field)
        # An image of an archive fails alone: the submission's message is the archive's.
        if isinstance(error, BadInputError) and job.user_image.archive_member is None:
            Submission.objects.filter(pk=job.submission.pk).update(error_message=error.message)
    log.info(
        "job %s (submission %s): %s%s",
        job.id, job.submission.pk, status, f" ({error.code}: {error.message})" if error else "",
    )  # fmt: skip
    _finish_submission(job.id)
    return True


# -- lost workers ---------------------------------------------------------------------


def requeue(job_id: int, worker_id: str, *, error: SolveError | None = None) -> bool:
    """Running (``worker_id``'s) to queued under the same id; ``error`` says why, if any.

    Conditional on the worker id: a late heartbeat of the old worker or
    another worker's requeue must not be overwritten.  The caller marks the
    submitter waiting (the queue's own index).
    """
    values: dict[str, Any] = {"status": QUEUED, "worker_id": "", "lease_expires": None, "stage": ""}
    if error is not None:
        values.update(error_code=error.code, error_message=f"retrying after: {error.message}")
    return bool(Job.objects.filter(id=job_id, status=RUNNING, worker_id=worker_id).update(**values))


def fail_worker_lost(job_id: int, worker_id: str, *, attempts: int, now: datetime) -> bool:
    """Running to failure: the workers running it stopped ``attempts`` times."""
    changed = Job.objects.filter(id=job_id, status=RUNNING, worker_id=worker_id).update(
        status=FAILURE,
        finished_at=now,
        lease_expires=None,
        error_code=WorkerLostError.code,
        error_message=f"the worker running this job stopped {attempts} times",
    )
    if changed:
        _finish_submission(job_id)
    return bool(changed)


def give_up_pictures(now: datetime) -> int:
    """Successes whose worker died drawing the pictures: the pictures will not come."""
    drawing = Job.objects.filter(status=SUCCESS, stage=PICTURES, lease_expires__lt=now)
    if not drawing.exists():  # a read first: an UPDATE would take SQLite's write lock
        return 0
    return drawing.update(stage=FINISHED, lease_expires=None)


# -- owners, the staff, and clients that went away ----------------------------------------


def request_cancel(job_id: int) -> None:
    """Cancel a queued job at once; ask the worker running it to stop."""
    now = timezone.now()
    if _cancel_queued(job_id, now=now, code="cancelled", message="cancelled by its owner"):
        _finish_submission(job_id)
    else:
        # Running: the worker's heartbeat sees the flag and stops the solve.
        Job.objects.filter(id=job_id, status=RUNNING).update(cancel_requested=True)


def cancel_abandoned(*, now: datetime, limit: float) -> int:
    """Cancel queued and ask running jobs to stop that nobody polled within ``limit`` seconds.

    A job counts as abandoned when neither it nor its submission was polled
    (or made) within the limit.  Returns how many jobs were cancelled or asked.
    """
    cutoff = now - timedelta(seconds=limit)
    job_quiet = Q(last_polled__lt=cutoff) | Q(last_polled__isnull=True, queued_at__lt=cutoff)
    submission_quiet = Q(user_image__submission__last_polled__lt=cutoff) | Q(
        user_image__submission__last_polled__isnull=True,
        user_image__submission__created__lt=cutoff,
    )
    message = f"nobody asked for this job for {limit:g} s (SKYSOLVE_ABANDON_SECONDS)"
    abandoned = Job.objects.filter(job_quiet, submission_quiet)
    count = 0
    for job_id in abandoned.filter(status=QUEUED).values_list("id", flat=True)[:100]:
        if _cancel_queued(job_id, now=now, code=AbandonedError.code, message=message):
            count += 1
            log.info("job %s: cancelled, abandoned by its client", job_id)
            _finish_submission(job_id)
    # A running one: its worker's heartbeat sees the request and stops the solve.
    count += Job.objects.filter(
        id__in=abandoned.filter(status=RUNNING, cancel_requested=False).values("id")
    ).update(cancel_requested=True, error_code=AbandonedError.code, error_message=message)
    return count


def _cancel_queued(job_id: int, *, now: datetime, code: str, message: str) -> bool:
    return bool(
        Job.objects.filter(id=job_id, status=QUEUED).update(
            status=CANCELLED,
            cancel_requested=True,
            finished_at=now,
            error_code=code,
            error_message=message,
        )
    )


def retry(job_id: int) -> bool:
    """Queue a failed or cancelled job again under its id; False if it is not finished so."""
    now = timezone.now()
    changed = Job.objects.filter(id=job_id, status__in=(FAILURE, CANCELLED)).update(
        status=QUEUED,
        stage="",
        queued_at=now,
        started_at=None,
        finished_at=None,
        attempts=0,
        worker_id="",
        lease_expires=None,
        cancel_requested=False,
        error_code="",
        error_message="",
    )
    if not changed:
        return False
    # jobs_by_tag lists the job in its new place.
    TaggedJob.objects.filter(job_id=job_id).update(queued_at=now)
    # processing_finished stays: the job exists, which is all it says (as on nova).
    announce_queued([job_id])
    return True


def note_poll(model: type[Job] | type[Submission], pk: int, last_polled: datetime | None) -> None:
    """Remember that a client asked, for SKYSOLVE_ABANDON_SECONDS; off: nothing.

    The status query already read ``last_polled``, so a poll writes only when
    the stored time is older than a quarter of the limit: one UPDATE per job
    every few seconds at most, however often a client polls.
    """
    limit = settings.SKYSOLVE_ABANDON_SECONDS
    if not limit:
        return
    now = timezone.now()
    if last_polled is None or (now - last_polled).total_seconds() > limit / 4:
        model.objects.filter(pk=pk).update(last_polled=now)


# -- what goes with them ------------------------------------------------------------------


def add_machine_tags(user_image: UserImage, names: Sequence[str]) -> None:
    for name in names:
        tag, _ = Tag.objects.get_or_create(text=name[:200])
        TaggedUserImage.objects.get_or_create(user_image=user_image, tag=tag, machine=True)


def calibration_columns(calibration: dict[str, Any]) -> dict[str, Any]:
    """The job's calibration columns with the sky index's, which follow the centre."""
    sky = sky_columns(calibration.get("ra"), calibration.get("dec"), calibration.get("radius"))
    return {**calibration, **sky}


def _finish_submission(job_id: int) -> None:
    job = Job.objects.select_related("user_image__submission").get(id=job_id)
    job.submission.update_processing_times()


def cancel_job(job: Job, viewer: Viewer) -> None:
    """The owner's (or the staff's) cancel: :func:`request_cancel` of an unfinished job."""
    if not (viewer.is_staff or owns(viewer, job.submission)):
        raise ServiceError("only the owner of a job can cancel it", status=403)
    if job.is_finished:
        raise ServiceError(f"job {job.id} has already finished ({job.status})")
    request_cancel(job.id)
