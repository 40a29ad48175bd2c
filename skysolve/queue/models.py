from __future__ import annotations

from datetime import datetime

from django.db import models


class ServedOwner(models.Model):
    """When a submitter (user or anonymous session) last had a job started.

    The worker serves the submitter served longest ago first, so one user's
    burst of uploads cannot starve another user's single job.
    """

    owner_key: models.CharField[str, str] = models.CharField(max_length=80, primary_key=True)
    #: 1970 for a submitter never served (see :mod:`skysolve.queue.waiting`).
    last_served: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    #: Whether it has jobs queued, and since when (kept by :mod:`skysolve.queue.waiting`).
    waiting: models.BooleanField[bool, bool] = models.BooleanField(default=False)
    waiting_since: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )

    class Meta:
        indexes = [
            # The claim's choice: waiting submitters, served longest ago first.
            models.Index(
                fields=["last_served", "waiting_since", "owner_key"],
                name="servedowner_fair_order",
                condition=models.Q(waiting=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.owner_key} served {self.last_served}"


class WorkerHeartbeat(models.Model):
    """A running worker process, idle or busy, and when it last gave a sign of life.

    Embedded workers and the dispatcher write their own row every
    SKYSOLVE_HEARTBEAT_SECONDS; Celery workers have no database, so each keeps
    a key in Redis that the dispatcher copies here (see
    :mod:`skysolve.queue.heartbeat`).  A process counts as alive while its
    row is younger than three intervals; one that stops cleanly removes it.
    """

    EMBEDDED = "embedded"
    DISPATCHER = "dispatcher"
    CELERY = "celery"
    KIND_CHOICES = [
        (EMBEDDED, "embedded worker"),
        (DISPATCHER, "Celery dispatcher"),
        (CELERY, "Celery worker"),
    ]

    worker_id: models.CharField[str, str] = models.CharField(max_length=200, primary_key=True)
    kind: models.CharField[str, str] = models.CharField(max_length=20, choices=KIND_CHOICES)
    host: models.CharField[str, str] = models.CharField(max_length=255)
    pid: models.IntegerField[int, int] = models.IntegerField()
    #: Jobs it runs at once: 1 for an embedded worker, the slots of a
    #: dispatcher, the processes of a Celery worker.
    concurrency: models.IntegerField[int, int] = models.IntegerField(default=1)
    started_at: models.DateTimeField[datetime, datetime] = models.DateTimeField()
    last_seen: models.DateTimeField[datetime, datetime] = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ("kind", "worker_id")

    def __str__(self) -> str:
        return f"{self.kind} {self.worker_id}"
