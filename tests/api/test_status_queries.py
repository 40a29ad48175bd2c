"""The polled status URLs answer in one query each (two for /info), whatever the batch size.

Clients poll them every second, so a query per image or per tag kind would
multiply the database's and the web processes' work; the answers are checked
against the models' own methods so the faster reads cannot drift.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from pytest_django import DjangoAssertNumQueries

from skysolve.community.models import Tag, TaggedUserImage
from skysolve.community.tags import image_tag_texts
from skysolve.submissions.models import Job, Submission, UserImage, nova_time
from skysolve.submissions.services import add_machine_tags
from tests.api.helpers import session_for, solve_all, submit_xy
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def _get(client: Client, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def _batch(client: Client, fake_solver: FakeSolver) -> Submission:
    """Three solved star lists; the first image has a newer, still queued retry job."""
    subid = submit_xy(
        client,
        session_for("alice"),
        x=[[10.0, 20.5, 30.0]] * 3,
        y=[[5.0, 15.0, 25.0]] * 3,
    )
    solve_all(fake_solver)
    submission = Submission.objects.get(pk=subid)
    first = submission.user_images.order_by("created", "id")[0]
    solved = first.jobs.get()
    Job.objects.create(
        user_image=first, owner_key=solved.owner_key, queued_at=solved.queued_at + timedelta(1)
    )
    return submission


def test_it_reads_a_batch_status_in_one_query(
    client: Client, fake_solver: FakeSolver, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    submission = _batch(client, fake_solver)
    images = list(submission.user_images.order_by("created", "id"))
    latest = [image.latest_job() for image in images]
    with django_assert_max_num_queries(1):
        data = _get(client, f"/api/submissions/{submission.id}")
    assert data == {
        "user": submission.user_id,  # type: ignore[attr-defined]
        "processing_started": nova_time(submission.processing_started),
        "processing_finished": nova_time(submission.processing_finished),
        "user_images": [image.id for image in images],
        "images": [image.id for image in images],
        "jobs": [job.id for job in latest if job is not None],
        "job_calibrations": [
            [job.id, job.id] for job in latest if job is not None and job.has_calibration
        ],
    }
    assert len(data["job_calibrations"]) == 2  # the retry of the first is still queued


def test_it_reads_a_job_status_in_one_query(
    client: Client, fake_solver: FakeSolver, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    submission = _batch(client, fake_solver)
    for job in Job.objects.filter(user_image__submission=submission):
        with django_assert_max_num_queries(1):
            data = _get(client, f"/api/jobs/{job.id}")
        assert data == {"status": job.nova_status()}
        with django_assert_max_num_queries(1):
            response = client.get(f"/api/jobs/{job.id}/calibration")
        expected: dict[str, Any] | None = job.nova_calibration()
        if expected is None:
            expected = {"error": f"no calibration data available for job {job.id}"}
        assert response.status_code == 200
        assert json.loads(response.content) == expected


def test_it_reads_a_job_info_in_two_queries(
    client: Client, fake_solver: FakeSolver, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    submission = _batch(client, fake_solver)
    image = UserImage.objects.filter(submission=submission).order_by("created", "id")[1]
    add_machine_tags(image, ["Orion Nebula"])
    tag = TaggedUserImage.objects.filter(user_image=image).first()
    assert tag is not None
    TaggedUserImage.objects.create(user_image=image, tag=tag.tag, machine=False)
    own = Tag.objects.create(text="my comet")
    TaggedUserImage.objects.create(user_image=image, tag=own, machine=False)
    job = image.jobs.get()
    with django_assert_max_num_queries(2):
        data = _get(client, f"/api/jobs/{job.id}/info")
    calibration = job.nova_calibration()
    assert calibration is not None
    assert data == {
        "status": job.nova_status(),
        "original_filename": image.original_filename,
        "objects_in_field": job.objects_in_field(),
        "machine_tags": image_tag_texts(image, machine=True),
        "tags": ["M 66", "NGC 3628", "Orion Nebula", "my comet"],
        "calibration": {
            k: calibration[k] for k in ("ra", "dec", "radius", "pixscale", "orientation", "parity")
        },
    }
    # nova's tags are all the image's tags; one both added by hand and by the solver once.
    assert data["machine_tags"] == ["M 66", "NGC 3628", "Orion Nebula"]
    assert _get(client, f"/api/jobs/{job.id}/tags") == {"tags": data["tags"]}


def test_it_records_polls_at_most_once_per_quarter_limit(
    client: Client,
    fake_solver: FakeSolver,
    settings: Any,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    """With SKYSOLVE_ABANDON_SECONDS a poll writes its time only when the stored one is stale."""
    settings.SKYSOLVE_ABANDON_SECONDS = 60
    subid = submit_xy(client, session_for("alice"))
    job = Job.objects.get(user_image__submission_id=subid)
    with django_assert_max_num_queries(2):  # the read and the first note
        _get(client, f"/api/jobs/{job.id}")
    with django_assert_max_num_queries(2):
        _get(client, f"/api/submissions/{subid}")
    noted = Job.objects.get(id=job.id).last_polled
    assert noted is not None and Submission.objects.get(pk=subid).last_polled is not None
    with django_assert_max_num_queries(1):  # fresh: no write
        _get(client, f"/api/jobs/{job.id}")
    with django_assert_max_num_queries(1):
        _get(client, f"/api/submissions/{subid}")
    Job.objects.filter(id=job.id).update(last_polled=noted - timedelta(seconds=16))
    client.get(f"/api/jobs/{job.id}/calibration")  # any status URL counts (404: not solved)
    assert Job.objects.get(id=job.id).last_polled > noted  # type: ignore[operator]


def test_it_records_no_polls_when_abandoning_is_off(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_ABANDON_SECONDS = 0
    subid = submit_xy(client, session_for("alice"))
    job = Job.objects.get(user_image__submission_id=subid)
    _get(client, f"/api/jobs/{job.id}")
    _get(client, f"/api/submissions/{subid}")
    assert Job.objects.get(id=job.id).last_polled is None
    assert Submission.objects.get(pk=subid).last_polled is None
