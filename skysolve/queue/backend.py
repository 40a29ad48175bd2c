"""The queue's side of "a job was queued": wake whoever takes it from the table.

In both modes the ``Job`` row *is* the queue entry: the submissions leave it
``queued`` and send :data:`skysolve.submissions.signals.job_queued`, which
:class:`~skysolve.queue.apps.QueueConfig` connects to :func:`enqueue`.
Embedded workers claim the row from the table; in the Celery mode the
dispatcher (:mod:`skysolve.queue.dispatch`) claims it when a worker slot is
free and sends the task then.  Sending at submission time instead would put
one user's burst of 200 uploads in the broker ahead of everyone else's job.
In the Celery mode enqueueing rings the dispatcher through Redis, so an idle
dispatcher sends the job at once instead of at its next poll; in the
embedded mode it wakes the idle workers (:mod:`skysolve.queue.wakeup`).
Cancelling and retrying are changes of the row alone
(:func:`skysolve.submissions.services.request_cancel`, ``retry_job``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

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


def on_job_queued(sender: Any, *, job_id: int, **kwargs: Any) -> None:
    """Receiver of :data:`skysolve.submissions.signals.job_queued`."""
    enqueue(job_id)
