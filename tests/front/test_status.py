from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from skysolve.queue.worker import Worker
from skysolve.submissions.models import Job
from tests.front.helpers import fail, make_user, solve, submit
from tests.jobs import job_of
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def test_it_shows_a_queued_job(client: Client) -> None:
    submission = submit(make_user("alice"))
    response = client.get(f"/status/{submission.id}")
    body = response.content.decode()
    assert response.status_code == 200
    assert f"Job {job_of(submission).id}" in body
    assert "queued" in body
    assert f'data-url="/status/{submission.id}/json"' in body
    assert "front/status.js" in body


def test_it_reports_progress_as_json(client: Client) -> None:
    submission = submit(make_user("alice"))
    job = job_of(submission)
    url = f"/status/{submission.id}/json"

    data = client.get(url).json()
    assert data["finished"] is False
    assert [(j["id"], j["status"], j["label"]) for j in data["jobs"]] == [
        (job.id, "queued", "queued")
    ]

    Job.objects.filter(id=job.id).update(status=Job.RUNNING, stage="extracting")
    assert client.get(url).json()["jobs"][0]["label"] == "extracting sources"
    Job.objects.filter(id=job.id).update(stage="solving")
    assert client.get(url).json()["jobs"][0]["label"] == "solving"

    solve(submission)
    response = client.get(url)
    data = response.json()
    assert "no-cache" in response["Cache-Control"]
    assert data["finished"] is True
    assert data["jobs"][0]["label"] == "done: solved"
    assert data["jobs"][0]["results_url"] == f"/results/{job.id}"
    # Only the tail of the log: the status page stays small.
    assert data["jobs"][0]["log"].splitlines()[-1] == "log line 49"
    assert "log line 0\n" not in data["jobs"][0]["log"]


def test_it_counts_the_jobs_ahead(client: Client) -> None:
    alice = make_user("alice")
    submit(alice)
    second = submit(alice)
    assert client.get(f"/status/{second.id}/json").json()["jobs"][0]["label"] == (
        "queued (1 ahead)"
    )


def test_it_shows_a_failure(client: Client) -> None:
    submission = submit(make_user("alice"))
    fail(submission, "no match found")
    data = client.get(f"/status/{submission.id}/json").json()
    assert data["jobs"][0]["label"] == "failed: no match found"
    assert data["finished"] is True


def test_it_follows_a_real_worker_run(client: Client, settings: Any) -> None:
    submission = submit(make_user("alice"))
    Worker(solver=FakeSolver(), heartbeat_thread=False).run_once()
    data = client.get(f"/status/{submission.id}/json").json()
    assert data["finished"] is True
    assert data["jobs"][0]["status"] == "success"


def test_it_answers_404_for_an_unknown_submission(client: Client) -> None:
    assert client.get("/status/12345").status_code == 404
    assert client.get("/status/12345/json").status_code == 404


def test_it_shows_the_upload_settings_and_the_detected_stars(client: Client) -> None:
    submission = submit(
        make_user("alice"),
        scale_units="arcsecperpix",
        scale_type="ev",
        scale_est=1.5,
        scale_err=10,
        center_ra=83.82,
        center_dec=-5.39,
        radius=2,
        parity=1,
        downsample_factor=2,
        tweak_order=3,
        use_sextractor=True,
    )
    body = client.get(f"/status/{submission.id}").content.decode()
    for text in (
        "1.5 ″ per pixel ± 10%",
        "RA 05h 35m 16.80s, Dec -05° 23′ 24.0″",
        "within 2°",
        "negative (flipped)",
        "2×",
        "<td>3</td>",
        "sextractor",
    ):
        assert text in body, text
    assert client.get(f"/status/{submission.id}/json").json()["jobs"][0]["stars"] is None
    job = solve(submission)
    job.result = {**job.result, "n_sources": 312}
    job.save()
    assert client.get(f"/status/{submission.id}/json").json()["jobs"][0]["stars"] == 312
    assert (
        'Sources used to solve: <span class="n-stars">312</span>'
        in client.get(f"/status/{submission.id}").content.decode()
    )
    # At the engine's cap the number is a limit, and the page says so.
    job.result = {**job.result, "n_sources": 1000}
    job.save()
    text = client.get(f"/status/{submission.id}/json").json()["jobs"][0]["stars_text"]
    assert text == "the brightest 1000 (the most the solver uses; the image holds more)"


def test_it_says_blind_when_no_hints_were_given(client: Client) -> None:
    body = client.get(f"/status/{submit(make_user('alice')).id}").content.decode()
    assert "not given (blind)" in body and "automatic" in body and "<td>sep</td>" in body
