"""API keys and the sessions clients log in with (nova's ``/api/login``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from skysolve.accounts.models import ApiKey, ApiSession, Profile
from skysolve.errors import ServiceError


def create_api_key(username: str, *, email: str = "", label: str = "") -> ApiKey:
    """Create the user when missing and give them a new API key."""
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        if created:
            user.set_unusable_password()
            user.save()
        Profile.for_user(user)
        return ApiKey.create_for(user, label=label)


def login(apikey: str) -> ApiSession:
    """Exchange an API key for a session (any key, anonymously, when allowed)."""
    key = ApiKey.objects.select_related("user").filter(key=apikey).first()
    if key is not None and key.user.is_active:
        ApiKey.objects.filter(pk=key.pk).update(last_used=timezone.now())
        return ApiSession.start(key.user, key)
    if settings.SKYSOLVE_ALLOW_ANY_APIKEY:
        return ApiSession.start(None)
    raise ServiceError("bad apikey")


def session_display_name(session: ApiSession) -> str:
    if session.user is None:
        return "anonymous"
    return session.user.email or session.user.username


def find_session(key: str) -> ApiSession | None:
    session = ApiSession.objects.select_related("user").filter(key=key).first()
    if session is None or session.is_expired:
        return None
    if session.user is not None and not session.user.is_active:
        return None
    return session
