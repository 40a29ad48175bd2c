"""What the accounts app stores itself: the events counted by the rate limits."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import models
from django.utils import timezone


class SubmissionEvent(models.Model):
    """One submission made by a user and/or from an address, kept for an hour.

    The rate limits count these rows, so every web process and machine that
    shares the database shares the counts (no cache server needed).
    """

    at: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        default=timezone.now, db_index=True
    )
    user: models.ForeignKey[User | None] = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    ip: models.CharField[str, str] = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "at"], name="accounts_event_user_at"),
            models.Index(fields=["ip", "at"], name="accounts_event_ip_at"),
        ]

    def __str__(self) -> str:
        return f"submission by {self.user_id or '-'} from {self.ip or '-'} at {self.at}"  # type: ignore[attr-defined]


class LookupMiss(models.Model):
    """A lookup of a job or submission id that does not exist, from one address.

    Kept for an hour and counted per address by the id-probing guard
    (:func:`skysolve.accounts.ratelimit.record_miss`); one row per distinct id,
    so a client polling one vanished job counts once, a prober once per guess.
    """

    at: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        default=timezone.now, db_index=True
    )
    ip: models.CharField[str, str] = models.CharField(max_length=64)
    kind: models.CharField[str, str] = models.CharField(max_length=12)
    object_id: models.BigIntegerField[int, int] = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ip", "kind", "object_id"], name="one_miss_per_id")
        ]
        indexes = [models.Index(fields=["ip", "at"], name="accounts_miss_ip_at")]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} missed from {self.ip} at {self.at}"
