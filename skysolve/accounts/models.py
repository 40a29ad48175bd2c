"""Who uses the service: profiles, API keys and sessions, and the rate-limit tables.

:class:`Profile`, :class:`ApiKey` and :class:`ApiSession` were models of the
submissions app; they moved here without touching the database (their tables
keep their ``submissions_`` names: see migration 0003).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models
from django.utils import timezone

from skysolve.submissions.models import (
    LICENCE_COMMERCIAL_CHOICES,
    LICENCE_MODIFICATIONS_CHOICES,
    VISIBILITY_CHOICES,
)


def new_api_key() -> str:
    """An API key like nova's: 16 lowercase letters (clients validate nothing more)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(16))


def new_session_key() -> str:
    return secrets.token_hex(16)


class Profile(models.Model):
    """Per-user defaults for new submissions."""

    user: models.OneToOneField[User] = models.OneToOneField(
        User, on_delete=models.CASCADE, related_name="profile"
    )
    display_name: models.CharField[str, str] = models.CharField(max_length=100, blank=True)
    default_allow_commercial_use: models.CharField[str, str] = models.CharField(
        max_length=2, choices=LICENCE_COMMERCIAL_CHOICES, default="d"
    )
    default_allow_modifications: models.CharField[str, str] = models.CharField(
        max_length=2, choices=LICENCE_MODIFICATIONS_CHOICES, default="d"
    )
    default_publicly_visible: models.CharField[str, str] = models.CharField(
        max_length=1, choices=VISIBILITY_CHOICES, default="y"
    )

    class Meta:
        db_table = "submissions_profile"

    def __str__(self) -> str:
        return f"profile of {self.user.username}"

    @classmethod
    def for_user(cls, user: User) -> Profile:
        profile, _ = cls.objects.get_or_create(user=user)
        return profile


class ApiKey(models.Model):
    """A key a client exchanges for a session at /api/login; a user may hold several."""

    user: models.ForeignKey[User] = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="api_keys"
    )
    key: models.CharField[str, str] = models.CharField(
        max_length=64, unique=True, default=new_api_key
    )
    label: models.CharField[str, str] = models.CharField(max_length=100, blank=True)
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now)
    last_used: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        null=True, blank=True
    )

    class Meta:
        db_table = "submissions_apikey"

    def __str__(self) -> str:
        return f"API key of {self.user.username} ({self.label or 'unlabelled'})"

    @classmethod
    def create_for(cls, user: User, label: str = "") -> ApiKey:
        return cls.objects.create(user=user, label=label)

    def regenerate(self) -> str:
        """Replace the key (the old one stops working at once) and return the new one."""
        self.key = new_api_key()
        self.created = timezone.now()
        self.save(update_fields=["key", "created"])
        # Sessions made with the leaked key must not outlive it.
        ApiSession.objects.filter(api_key=self).delete()
        return self.key


class ApiSession(models.Model):
    """What /api/login hands out; later requests carry its key as ``session``.

    ``user`` is None for an anonymous session (SKYSOLVE_ALLOW_ANY_APIKEY); such
    a session owns the submissions made through it.
    """

    key: models.CharField[str, str] = models.CharField(
        max_length=64, unique=True, default=new_session_key
    )
    user: models.ForeignKey[User | None] = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="api_sessions"
    )
    api_key: models.ForeignKey[ApiKey | None] = models.ForeignKey(
        ApiKey, on_delete=models.CASCADE, null=True, blank=True, related_name="sessions"
    )
    created: models.DateTimeField[datetime, datetime] = models.DateTimeField(default=timezone.now)
    expires: models.DateTimeField[datetime, datetime] = models.DateTimeField()

    class Meta:
        db_table = "submissions_apisession"
        indexes = [models.Index(fields=["expires"], name="submissions_expires_548822_idx")]

    def __str__(self) -> str:
        return f"API session of {self.user.username if self.user else 'anonymous'}"

    @classmethod
    def start(cls, user: User | None, api_key: ApiKey | None = None) -> ApiSession:
        now = timezone.now()
        days = max(14, settings.SKYSOLVE_SESSION_DAYS)
        return cls.objects.create(
            user=user, api_key=api_key, created=now, expires=now + timedelta(days=days)
        )

    @property
    def is_expired(self) -> bool:
        return self.expires <= timezone.now()


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
