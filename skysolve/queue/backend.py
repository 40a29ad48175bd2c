"""The queue interface the web layer uses: enqueue and request_cancel.

In the embedded mode the ``Job`` row *is* the queue entry: enqueueing leaves it
``queued`` for a worker to claim.  A Celery backend would send a task here.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from skysolve.submissions.models import Job


def enqueue(job_id: int) -> None:
    if settings.SKYSOLVE_QUEUE == "embedded":
        return  # the worker polls the table
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
