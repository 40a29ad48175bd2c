"""Per-user and per-address submission limits (skysolve.accounts.ratelimit)."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from skysolve.accounts.models import SubmissionEvent
from skysolve.submissions.models import Submission
from skysolve.web.checks import check_settings
from tests.api.helpers import session_for

pytestmark = pytest.mark.django_db

XY = {"x": [1.0, 2.0], "y": [3.0, 4.0]}


def url_upload(client: Client, session: str, **extra: Any) -> Any:
    payload = {"request-json": json.dumps({"session": session, **XY})}
    return client.post("/api/url_upload", payload, **extra)


@pytest.fixture
def limits(settings: Any) -> Any:
    settings.SKYSOLVE_RATE_LIMIT_USER_PER_HOUR = 2
    settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = 0
    return settings


def test_it_refuses_the_submission_after_the_limit_with_429(client: Client, limits: Any) -> None:
    alice = session_for("alice")
    for _ in range(2):
        assert json.loads(url_upload(client, alice).content)["status"] == "success"
    refused = url_upload(client, alice)
    assert refused.status_code == 429
    assert refused["Content-Type"] == "text/plain"
    data = json.loads(refused.content)
    assert data["status"] == "error"
    assert data["errormessage"].startswith(
        "rate limit reached: at most 2 submissions per hour per user; try again in"
    )
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert refused.reason_phrase.startswith("Too Many Requests (rate limit reached")
    assert Submission.objects.count() == 2
    # The refused request took its reservation back.
    assert SubmissionEvent.objects.count() == 2
    # Another user is not affected.
    assert json.loads(url_upload(client, session_for("bob")).content)["status"] == "success"


def test_it_counts_only_accepted_submissions(client: Client, limits: Any) -> None:
    alice = session_for("alice")
    bad = {"request-json": json.dumps({"session": alice, "x": [1.0], "y": []})}
    for _ in range(5):
        assert json.loads(client.post("/api/url_upload", bad).content)["status"] == "error"
    for _ in range(2):
        assert json.loads(url_upload(client, alice).content)["status"] == "success"


def test_it_limits_uploads_too(client: Client, limits: Any) -> None:
    alice = session_for("alice")

    def upload() -> Any:
        f = io.BytesIO(b"SIMPLE  = T")
        f.name = "m66.fits"
        return client.post(
            "/api/upload", {"request-json": json.dumps({"session": alice}), "file": f}
        )

    assert [upload().status_code for _ in range(3)] == [200, 200, 429]


def test_it_forgets_submissions_older_than_an_hour(client: Client, limits: Any) -> None:
    alice = session_for("alice")
    user = User.objects.get(username="alice")
    old = timezone.now() - timedelta(minutes=61)
    SubmissionEvent.objects.bulk_create([SubmissionEvent(at=old, user=user) for _ in range(5)])
    for _ in range(2):
        assert json.loads(url_upload(client, alice).content)["status"] == "success"
    assert not SubmissionEvent.objects.filter(at=old).exists()  # pruned on the way


def test_it_limits_an_address_whoever_submits(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_RATE_LIMIT_USER_PER_HOUR = 0
    settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = 3
    alice, bob = session_for("alice"), session_for("bob")
    codes = [url_upload(client, s).status_code for s in (alice, alice, bob, bob)]
    assert codes == [200, 200, 200, 429]
    assert "per address" in json.loads(url_upload(client, bob).content)["errormessage"]
    other = url_upload(client, bob, REMOTE_ADDR="192.0.2.7")
    assert other.status_code == 200


def test_it_trusts_only_the_proxys_own_forwarded_entry(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_RATE_LIMIT_USER_PER_HOUR = 0
    settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = 1
    settings.USE_X_FORWARDED_FOR = True
    alice = session_for("alice")
    first = url_upload(client, alice, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.5")
    assert first.status_code == 200
    # A different address written by the client in front does not help.
    spoofed = url_upload(client, alice, HTTP_X_FORWARDED_FOR="198.51.100.2, 203.0.113.5")
    assert spoofed.status_code == 429
    assert url_upload(client, alice, HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 200


def test_it_exempts_staff(client: Client, limits: Any) -> None:
    staff = session_for("root", staff=True)
    assert [url_upload(client, staff).status_code for _ in range(4)] == [200] * 4
    assert not SubmissionEvent.objects.exists()


def test_it_is_off_at_zero(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_RATE_LIMIT_USER_PER_HOUR = 0
    settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = 0
    alice = session_for("alice")
    assert [url_upload(client, alice).status_code for _ in range(4)] == [200] * 4


def test_it_limits_the_upload_form(client: Client, limits: Any) -> None:
    limits.SKYSOLVE_RATE_LIMIT_USER_PER_HOUR = 3
    client.force_login(User.objects.create_user("alice", password="correct horse 42"))
    form = {"scale_preset": "unknown", "scale_units": "degwidth", "scale_type": "ul"}
    form |= {"parity": "2", "tweak_order": "2", "allow_commercial_use": "d"}
    form |= {"allow_modifications": "d", "publicly_visible": "y"}

    def files(n: int) -> list[io.BytesIO]:
        out = []
        for i in range(n):
            f = io.BytesIO(b"SIMPLE  = T")
            f.name = f"f{i}.fits"
            out.append(f)
        return out

    assert client.post("/upload", {**form, "images": files(2)}).status_code == 302
    # Two more files would make four: the whole form is refused, nothing stored.
    refused = client.post("/upload", {**form, "images": files(2)})
    assert refused.status_code == 429
    assert "at most 3 submissions per hour" in refused.content.decode()
    assert Submission.objects.count() == 2
    assert client.post("/upload", {**form, "images": files(1)}).status_code == 302


def test_it_checks_the_settings(settings: Any) -> None:
    settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = -1
    assert "skysolve.E020" in [m.id for m in check_settings()]
    settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = 0
    assert "skysolve.E020" not in [m.id for m in check_settings()]
