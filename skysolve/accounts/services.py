"""Accounts: creating people, their API keys and their submission defaults."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from skysolve.accounts.models import ApiKey, Profile


def create_account(username: str, email: str, password: str) -> User:
    """A new user with a profile and one API key, so the API works at once."""
    with transaction.atomic():
        user = User.objects.create_user(username=username, email=email, password=password)
        Profile.for_user(user)
        ApiKey.create_for(user, label="created at sign-up")
    return user


def api_keys(user: User) -> list[ApiKey]:
    """The user's keys; one is made when they have none (e.g. made by createsuperuser)."""
    keys = list(ApiKey.objects.filter(user=user).order_by("created", "id"))
    if not keys:
        keys = [ApiKey.create_for(user, label="created on the profile page")]
    return keys


def regenerate_api_key(user: User, key_id: int) -> str | None:
    """Replace one of the user's keys; None when the key is not theirs."""
    key = ApiKey.objects.filter(user=user, pk=key_id).first()
    if key is None:
        return None
    return key.regenerate()


def update_defaults(
    user: User,
    *,
    display_name: str,
    allow_commercial_use: str,
    allow_modifications: str,
    publicly_visible: str,
) -> Profile:
    profile = Profile.for_user(user)
    profile.display_name = display_name
    profile.default_allow_commercial_use = allow_commercial_use
    profile.default_allow_modifications = allow_modifications
    profile.default_publicly_visible = publicly_visible
    profile.save()
    return profile
