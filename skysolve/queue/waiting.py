"""Which submitters have jobs waiting, kept so that a claim never scans the queue.

The fair order serves the submitter (user or anonymous session) served
longest ago first.  Finding the submitters with queued jobs by grouping the
queued jobs reads the whole queue (100,000 rows: tens of milliseconds per
claim), and grouping only the first thousand submitters would never serve the
1,001st.  So each submitter's :class:`ServedOwner` row says whether it has
jobs waiting: set when one of its jobs is queued (made, retried, requeued),
cleared by the claim that finds none of its jobs left.  A partial index on
the waiting rows in the fair order makes the claim's choice one index read.

A job queued by a path that does not mark its owner (rows written by hand)
is still found: a claim that finds no waiting submitter, and every worker
once every :data:`RESYNC_SECONDS`, marks every submitter with queued jobs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, Min, OuterRef, Value, When

from skysolve.queue.models import ServedOwner
from skysolve.submissions.models import Job

#: ``last_served`` of a submitter never served: before anyone served.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
#: How often a worker marks every submitter with queued jobs, in case a mark was lost.
RESYNC_SECONDS = 60.0


def mark_waiting(owner_key: str, since: datetime) -> None:
    """``owner_key`` has a job queued (since ``since``, unless it waited already)."""
    fields: dict[str, Any] = {
        "waiting": True,
        "waiting_since": Case(When(waiting=True, then=F("waiting_since")), default=Value(since)),
    }
    if ServedOwner.objects.filter(owner_key=owner_key).update(**fields):
        return
    try:
        with transaction.atomic():
            ServedOwner.objects.create(
                owner_key=owner_key, last_served=NEVER, waiting=True, waiting_since=since
            )
    except IntegrityError:  # made meanwhile by another submission of theirs
        ServedOwner.objects.filter(owner_key=owner_key).update(**fields)


def job_marked(sender: Any, instance: Job, created: bool, **kwargs: Any) -> None:
    """post_save of a Job: a new queued job makes its owner wait (in its transaction)."""
    if created and instance.status == Job.QUEUED and not kwargs.get("raw"):
        mark_waiting(instance.owner_key, instance.queued_at)


def job_queued(sender: Any, job_id: int, **kwargs: Any) -> None:
    """The submissions' ``job_queued`` (a retried job among them): its owner waits."""
    row = Job.objects.filter(id=job_id, status=Job.QUEUED).values_list("owner_key", "queued_at")
    for owner_key, queued_at in row:
        mark_waiting(owner_key, queued_at)


def waiting_owners(limit: int) -> list[str]:
    """The next ``limit`` waiting submitters in the fair order."""
    owners = ServedOwner.objects.filter(waiting=True).order_by(
        "last_served", "waiting_since", "owner_key"
    )
    return list(owners.values_list("owner_key", flat=True)[:limit])


def stop_waiting(owner_key: str) -> None:
    """Clear the mark of a submitter none of whose jobs is queued (any more)."""
    queued = Job.objects.filter(status=Job.QUEUED, owner_key=OuterRef("owner_key"))
    ServedOwner.objects.filter(owner_key=owner_key, waiting=True).exclude(Exists(queued)).update(
        waiting=False, waiting_since=None
    )


def resync() -> int:
    """Mark every submitter with queued jobs (one read of the whole queue); how many."""
    firsts = (
        Job.objects.filter(status=Job.QUEUED)
        .values("owner_key")
        .annotate(first=Min("queued_at"))
        .order_by()
    )
    rows = [
        ServedOwner(
            owner_key=r["owner_key"], last_served=NEVER, waiting=True, waiting_since=r["first"]
        )
        for r in firsts
    ]
    marked = ServedOwner.objects.filter(owner_key__in=[r.owner_key for r in rows], waiting=True)
    known = set(marked.values_list("owner_key", flat=True))
    rows = [row for row in rows if row.owner_key not in known]
    for row in rows:
        mark_waiting(row.owner_key, row.waiting_since)  # type: ignore[arg-type]
    return len(rows)
