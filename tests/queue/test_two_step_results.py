"""The answer first, the pictures after: what a client sees in between."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from skysolve.community.models import TaggedUserImage
from skysolve.submissions.models import Job
from skysolve.submissions.transitions import PICTURES
from tests.api.helpers import call, session_for, submit_xy
from tests.jobs import job_of
from tests.queuefixtures import Clock, worker
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def test_it_shows_the_answer_while_the_pictures_are_drawn(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_FILE_WAIT_SECONDS = 0  # the worker is this thread: nobody draws meanwhile
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    solver = FakeSolver()
    seen: dict[str, Any] = {}

    def between() -> None:
        job = Job.objects.get(id=job_id)
        seen["status"], seen["stage"], seen["ra"] = job.status, job.stage, job.ra
        seen["api"] = call(client, f"/api/jobs/{job_id}")
        seen["calibration"] = call(client, f"/api/jobs/{job_id}/calibration")
        seen["tags"] = call(client, f"/api/jobs/{job_id}/machine_tags")
        seen["wcs"] = status_of(client, f"/wcs_file/{job_id}")
        picture = client.get(f"/annotated_display/{job_id}")
        seen["picture"] = (picture.status_code, json.loads(picture.content))

    solver.after_answer = between
    assert worker(solver).run_once()
    assert (seen["status"], seen["stage"]) == (Job.SUCCESS, PICTURES)
    assert seen["api"] == {"status": "success"}
    assert seen["calibration"]["ra"] == pytest.approx(seen["ra"])
    assert seen["tags"]["tags"] == ["M 66", "NGC 3628"]
    assert seen["wcs"] == 200
    status, body = seen["picture"]
    assert (
        status == 404 and body["status"] == "error" and "still being made" in body["errormessage"]
    )
    job = Job.objects.get(id=job_id)
    assert (job.status, job.stage, job.lease_expires) == (Job.SUCCESS, "finished", None)
    assert "annotated_display" in job.result["files"]
    assert status_of(client, f"/annotated_display/{job_id}") == 200
    assert job.log == "fake solver log\n"
    assert TaggedUserImage.objects.filter(user_image=job.user_image).count() == 2  # the first step


def test_it_keeps_the_answer_when_the_pictures_fail(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    solver = FakeSolver()

    def broken_pictures() -> None:
        raise OSError(28, "No space left on device")

    solver.after_answer = broken_pictures
    assert worker(solver).run_once()
    job = Job.objects.get(id=job_id)
    assert (job.status, job.stage, job.error_code) == (Job.SUCCESS, "finished", "")
    assert set(job.result["files"]) == {"wcs"}
    assert status_of(client, f"/wcs_file/{job_id}") == 200
    missing = client.get(f"/annotated_display/{job_id}")
    assert missing.status_code == 404 and "no annotated_display" in missing.content.decode()


def test_it_stops_waiting_for_the_pictures_of_a_dead_worker(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    clock = Clock()
    solver = FakeSolver()

    def killed() -> None:
        raise SystemExit  # a worker that dies drawing: nothing after the answer runs

    solver.after_answer = killed
    with pytest.raises(SystemExit):
        worker(solver, clock).run_once()
    assert Job.objects.get(id=job_id).stage == PICTURES
    clock.advance(61)  # its lease runs out
    worker(None, clock).requeue_expired()
    job = Job.objects.get(id=job_id)
    assert (job.status, job.stage, job.attempts) == (Job.SUCCESS, "finished", 1)
    assert client.get(f"/annotated_display/{job_id}").status_code == 404


def status_of(client: Client, url: str) -> int:
    response = client.get(url)
    if response.streaming:
        # Reading to the end lets the test client close the file (and only the
        # file: close() itself would also close the database connection).
        response.getvalue()
    return int(response.status_code)
