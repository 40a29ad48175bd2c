"""The queue interface the web layer uses: enqueue and request_cancel.

In both modes the ``Job`` row *is* the queue entry: enqueueing leaves it
``queued``.  Embedded workers claim it from the table; in the Celery mode the
dispatcher (:mod:`skysolve.queue.dispatch`) claims it when a worker slot is
free and sends the task then.  Sending at submission time instead would put
one user's burst of 200 uploads in the broker ahead of everyone else's job.
In the Celery mode enqueueing also rings the dispatcher through Redis, so an
idle dispatcher sends the job at once instead of at its next poll; in the
embedded mode it wakes the idle workers (:mod:`skysolve.queue.wakeup`).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from skysolve.submissions.models import Job

log = logging.getLogger(__name__)


def enqueue(job_id: int) -> None:
    if settings.SKYSOLVE_QUEUE in ("embedded", "celery"):
        submission_id = (
            Job.objects.filter(id=job_id)
            .values_list("user_image__submission_id", flat=True)
            .first()
        )
        log.info("job %s (submission %s): queued", job_id, submission_id)
        if settings.SKYSOLVE_QUEUE == "celery":
            from skysolve.queue.notify import job_queued

            job_queued(job_id)
        else:
            from skysolve.queue import wakeup

            wakeup.job_queued(job_id)
        return  # workers (or the dispatcher) take it from the table, fairly
    raise NotImplementedError(f"queue backend {settings.SKYSOLVE_QUEUE!r} is not available")


def request_cancel(job_id: int) -> None:
    """Cancel a queued job at once; ask the worker running it to stop."""
    now = timezone.now()
    cancelled = Job.objects.filter(id=job_id, status=Job.QUEUED).update(
        status=Job.CANCELLED,
        cancel_requested=True,
        finished_at=now,
        error_code="cancelled",
        error_message="cancelled by its owner",
    )
    if cancelled:
        job = Job.objects.select_related("user_image__submission").get(id=job_id)
        job.submission.update_processing_times()
    else:
        # Running: the worker's heartbeat sees the flag and stops the solve.
        Job.objects.filter(id=job_id, status=Job.RUNNING).update(cancel_requested=True)


def retry(job_id: int) -> bool:
    """Queue a failed or cancelled job again under its id; False if it is not finished so."""
    changed = Job.objects.filter(id=job_id, status__in=(Job.FAILURE, Job.CANCELLED)).update(
        status=Job.QUEUED,
        stage="",
        queued_at=timezone.now(),
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
    # processing_finished stays: the job exists, which is all it says (as on nova).
    enqueue(job_id)
    return True
