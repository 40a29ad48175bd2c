"""Many x/y star lists in one url_upload: one submission, one job per list."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

from skysolve.engine.results import SourceList
from skysolve.submissions.models import Job, Submission
from tests.api.helpers import call, session_for, solve_all
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db

LISTS_X = [[10.0, 20.0, 30.0], [11.0, 21.0, 31.0, 41.0], [5.0, 6.0, 7.0, 8.0, 9.0]]
LISTS_Y = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0, 10.0, 11.0, 12.0]]


def submit_batch(client: Client, session: str, **extra: object) -> dict:
    payload = {"session": session, "x": LISTS_X, "y": LISTS_Y, "image_width": 100}
    payload.update(extra)
    result: dict = call(client, "/api/url_upload", payload)
    return result


def test_it_makes_one_job_per_star_list(client: Client) -> None:
    data = submit_batch(client, session_for("alice"), image_height=80)
    assert data["status"] == "success"
    sub = Submission.objects.get(pk=data["subid"])
    images = list(sub.user_images.order_by("original_filename"))
    assert [im.original_filename for im in images] == [
        "star list 1",
        "star list 2",
        "star list 3",
    ]
    assert [len(im.star_list["x"]) for im in images] == [3, 4, 5]
    assert all(im.star_list["image_width"] == 100 for im in images)
    status = json.loads(client.get(f"/api/submissions/{sub.id}").content)
    assert len(status["jobs"]) == 3 and len(status["user_images"]) == 3


def test_it_solves_each_list_on_its_own_and_reports_per_list(client: Client) -> None:
    data = submit_batch(client, session_for("alice"), image_height=80)
    solver = FakeSolver()
    solve_all(solver)
    sizes = sorted(len(source) for source, _ in solver.calls if isinstance(source, SourceList))
    assert sizes == [3, 4, 5]
    jobs = Job.objects.filter(user_image__submission_id=data["subid"])
    assert {job.status for job in jobs} == {Job.SUCCESS}
    status = json.loads(client.get(f"/api/submissions/{data['subid']}").content)
    assert status["processing_finished"] != "None"
    assert len(status["job_calibrations"]) == 3
    for job in jobs:
        calibration = json.loads(client.get(f"/api/jobs/{job.id}/calibration").content)
        assert "ra" in calibration


def test_it_names_the_bad_list(client: Client) -> None:
    data = call(
        client,
        "/api/url_upload",
        {"session": session_for("alice"), "x": [[1.0, 2.0], [1.0]], "y": [[1.0, 2.0], [1.0, 2.0]]},
    )
    assert data["status"] == "error"
    assert data["errormessage"].startswith("star list 2:")
    assert not Submission.objects.exists()


def test_it_needs_matching_y_lists(client: Client) -> None:
    data = call(
        client,
        "/api/url_upload",
        {"session": session_for("alice"), "x": [[1.0, 2.0], [3.0]], "y": [[1.0, 2.0]]},
    )
    assert data["status"] == "error" and "as many y lists" in data["errormessage"]


@override_settings(SKYSOLVE_MAX_XY_LISTS=2)
def test_it_caps_the_number_of_lists(client: Client) -> None:
    data = submit_batch(client, session_for("alice"))
    assert data["status"] == "error" and "too many star lists" in data["errormessage"]
