"""What the submissions tell the layers above them, without importing them.

``job_queued`` is sent (with ``job_id``) once a job is in the table as
``queued`` and its transaction committed: a new submission, an image of an
archive, a retried job.  The queue app connects its ``enqueue`` to it when
Django starts (:class:`skysolve.queue.apps.QueueConfig`), so that an idle
worker wakes at once; without a receiver a job still waits in the table for
the next poll.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.dispatch import Signal

job_queued = Signal()


def announce_queued(job_ids: Iterable[int]) -> None:
    """Tell the queue these jobs wait (call it after the commit that queued them)."""
    from skysolve.submissions.models import Job

    for job_id in job_ids:
        job_queued.send(sender=Job, job_id=int(job_id))
