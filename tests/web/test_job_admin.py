from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from skysolve.queue.models import WorkerHeartbeat
from skysolve.submissions.models import Job
from tests.api.helpers import session_for, submit_xy
from tests.jobs import job_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Client) -> Client:
    User.objects.create_superuser("root", "root@example.org", "pw-for-tests")
    client.login(username="root", password="pw-for-tests")
    return client


def act(client: Client, action: str, *job_ids: int) -> None:
    response = client.post(
        "/admin/submissions/job/",
        {"action": action, "_selected_action": [str(i) for i in job_ids]},
    )
    assert response.status_code == 302


def test_it_lists_the_queue(staff_client: Client) -> None:
    job = job_of(submit_xy(staff_client, session_for("alice")))
    page = staff_client.get("/admin/submissions/job/?status__exact=queued").content.decode()
    assert str(job.id) in page and "user:" in page


def test_it_retries_a_failed_job(staff_client: Client) -> None:
    job = job_of(submit_xy(staff_client, session_for("alice")))
    Job.objects.filter(id=job.id).update(status=Job.FAILURE, error_code="no_match", attempts=1)
    act(staff_client, "retry_jobs", job.id)
    job.refresh_from_db()
    assert (job.status, job.error_code, job.attempts) == (Job.QUEUED, "", 0)
    # Its job exists, which is all processing_finished says: a retry keeps it.
    assert job.submission.processing_finished is not None


def test_it_does_not_retry_a_running_job(staff_client: Client) -> None:
    job = job_of(submit_xy(staff_client, session_for("alice")))
    Job.objects.filter(id=job.id).update(status=Job.RUNNING, worker_id="w")
    act(staff_client, "retry_jobs", job.id)
    assert Job.objects.get(id=job.id).worker_id == "w"


def test_it_cancels_queued_jobs(staff_client: Client) -> None:
    jobs = [job_of(submit_xy(staff_client, session_for("alice"))) for _ in range(2)]
    act(staff_client, "cancel_jobs", *(j.id for j in jobs))
    assert set(Job.objects.values_list("status", flat=True)) == {Job.CANCELLED}


def test_it_asks_the_worker_to_stop_a_running_job(staff_client: Client) -> None:
    job = job_of(submit_xy(staff_client, session_for("alice")))
    Job.objects.filter(id=job.id).update(status=Job.RUNNING, worker_id="w")
    act(staff_client, "cancel_jobs", job.id)
    job.refresh_from_db()
    # The worker's next lease renewal sees the flag and stops the solve.
    assert (job.status, job.cancel_requested) == (Job.RUNNING, True)


def test_it_shows_the_queue_state_filters(staff_client: Client) -> None:
    page = staff_client.get("/admin/submissions/job/").content.decode()
    for choice in ("queued", "running", "failure"):
        assert f"?status__exact={choice}" in page


def test_it_shows_worker_heartbeats_read_only(staff_client: Client) -> None:
    now = timezone.now()
    for worker_id, seen in (("host:1:live", now), ("host:2:gone", now - timedelta(hours=1))):
        WorkerHeartbeat.objects.create(
            worker_id=worker_id, kind=WorkerHeartbeat.EMBEDDED, host="host", pid=1,
            started_at=seen, last_seen=seen,
        )  # fmt: skip
    page = staff_client.get("/admin/queue/workerheartbeat/").content.decode()
    assert "host:1:live" in page and "host:2:gone" in page
    assert page.count('alt="True"') == 1 and page.count('alt="False"') == 1
    assert "/admin/queue/workerheartbeat/add/" not in page
    assert staff_client.get("/admin/queue/workerheartbeat/add/").status_code == 403
    response = staff_client.post(
        "/admin/queue/workerheartbeat/",
        {"action": "delete_selected", "_selected_action": ["host:1:live"]},
    )
    assert WorkerHeartbeat.objects.count() == 2, response.status_code
