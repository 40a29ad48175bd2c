from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from skysolve.accounts.ratelimit import RateLimited, submission_slots

pytestmark = pytest.mark.django_db


@pytest.fixture
def anonymous_limit(settings: Any) -> Any:
    settings.SKYSOLVE_RATE_LIMIT_USER_PER_HOUR = 0
    settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = 0
    settings.SKYSOLVE_RATE_LIMIT_ANONYMOUS_PER_HOUR = 2
    return settings


def test_it_counts_anonymous_web_uploads_per_address(anonymous_limit: Any) -> None:
    for _ in range(2):
        with submission_slots(None, "10.0.0.1", anonymous_web=True):
            pass
    with pytest.raises(RateLimited, match="per address without signing in") as refused:
        with submission_slots(None, "10.0.0.1", anonymous_web=True):
            pass
    assert int(refused.value.headers["Retry-After"]) > 3500
    with submission_slots(None, "10.0.0.2", anonymous_web=True):
        pass  # another address


def test_it_leaves_signed_in_users_and_the_api_alone(anonymous_limit: Any) -> None:
    alice = User.objects.create_user("alice")
    for _ in range(3):
        with submission_slots(alice, "10.0.0.1", anonymous_web=True):
            pass
        with submission_slots(None, "10.0.0.1"):  # the API's anonymous sessions
            pass


def test_it_counts_the_apis_anonymous_submissions_from_the_address(anonymous_limit: Any) -> None:
    # The API records its submissions while some limit applies to them: the
    # per-address one, on by default.
    anonymous_limit.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = 100
    with submission_slots(None, "10.0.0.1"):
        pass
    with submission_slots(None, "10.0.0.1", anonymous_web=True):
        pass
    with pytest.raises(RateLimited):
        with submission_slots(None, "10.0.0.1", anonymous_web=True):
            pass


def test_it_is_off_at_zero(anonymous_limit: Any) -> None:
    anonymous_limit.SKYSOLVE_RATE_LIMIT_ANONYMOUS_PER_HOUR = 0
    for _ in range(5):
        with submission_slots(None, "10.0.0.1", anonymous_web=True):
            pass
