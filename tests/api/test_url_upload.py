from __future__ import annotations

import pytest
from django.test import Client

from skysolve.submissions.models import Submission
from tests.api.helpers import call, session_for, submit_xy
from tests.jobs import job_of

pytestmark = pytest.mark.django_db


def test_it_accepts_an_xy_list(client: Client) -> None:
    session = session_for("alice")
    subid = submit_xy(client, session)
    sub = Submission.objects.get(pk=subid)
    assert sub.source == "xy"
    assert sub.star_list is not None
    assert sub.star_list["image_width"] == 100
    assert job_of(subid).status == "queued"


def test_it_records_a_url_without_fetching_it(client: Client) -> None:
    session = session_for("alice")
    data = call(
        client, "/api/url_upload/", {"session": session, "url": "http://example.org/a.fits"}
    )
    sub = Submission.objects.get(pk=data["subid"])
    assert (sub.source, sub.url, sub.disk_file) == ("url", "http://example.org/a.fits", "")
    # The worker's fetch (an archive may give more jobs) decides when it is processed.
    assert sub.processing_finished is None


def test_it_refuses_other_schemes(client: Client) -> None:
    session = session_for("alice")
    data = call(client, "/api/url_upload", {"session": session, "url": "file:///etc/passwd"})
    assert data["status"] == "error"
    assert "http" in data["errormessage"]


def test_it_refuses_mismatched_lists(client: Client) -> None:
    session = session_for("alice")
    data = call(client, "/api/url_upload", {"session": session, "x": [1.0, 2.0], "y": [1.0]})
    assert data["status"] == "error"


def test_it_needs_a_url_or_a_list(client: Client) -> None:
    session = session_for("alice")
    assert call(client, "/api/url_upload", {"session": session})["status"] == "error"
