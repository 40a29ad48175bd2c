from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from skysolve.queue.models import WorkerHeartbeat
from skysolve.submissions.models import Job
from tests.api.helpers import session_for, solve_all, submit_xy
from tests.jobs import job_of
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics:\n{text}")


def test_it_counts_jobs_by_state_and_failures_by_code(client: Client) -> None:
    alice = session_for("alice")
    for _ in range(2):
        submit_xy(client, alice)
    solve_all(FakeSolver())
    failed = job_of(submit_xy(client, alice))
    Job.objects.filter(id=failed.id).update(
        status=Job.FAILURE, error_code="no_match", finished_at=timezone.now()
    )
    submit_xy(client, alice)  # still queued
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert sample(text, 'skysolve_jobs{status="success"}') == 2
    assert sample(text, 'skysolve_jobs{status="queued"}') == 1
    assert sample(text, 'skysolve_jobs{status="running"}') == 0
    assert sample(text, 'skysolve_job_failures_total{error_code="no_match"}') == 1
    assert "# TYPE skysolve_job_duration_seconds histogram" in text


def test_it_puts_durations_in_buckets(client: Client) -> None:
    start = timezone.now()
    for seconds in (0.5, 3.0, 45.0):
        job = job_of(submit_xy(client, session_for("bob")))
        Job.objects.filter(id=job.id).update(
            status=Job.SUCCESS, started_at=start, finished_at=start + timedelta(seconds=seconds)
        )
    text = client.get("/metrics").content.decode()
    assert sample(text, 'skysolve_job_duration_seconds_bucket{le="1"}') == 1
    assert sample(text, 'skysolve_job_duration_seconds_bucket{le="5"}') == 2
    assert sample(text, 'skysolve_job_duration_seconds_bucket{le="+Inf"}') == 3
    assert sample(text, "skysolve_job_duration_seconds_count") == 3
    assert sample(text, "skysolve_job_duration_seconds_sum") == pytest.approx(48.5)


def test_it_counts_workers_with_a_live_lease(client: Client) -> None:
    now = timezone.now()
    for i, expires in enumerate((now + timedelta(seconds=30), now - timedelta(seconds=1))):
        job = job_of(submit_xy(client, session_for(f"user{i}")))
        Job.objects.filter(id=job.id).update(
            status=Job.RUNNING, worker_id=f"w{i}", started_at=now, lease_expires=expires
        )
    text = client.get("/metrics").content.decode()
    assert sample(text, "skysolve_workers_busy") == 1
    assert sample(text, "skysolve_jobs_lease_expired") == 1


def test_it_counts_idle_workers_by_kind(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_HEARTBEAT_SECONDS = 10
    now = timezone.now()
    for worker_id, kind, concurrency, seconds_ago in [
        ("idle-embedded", WorkerHeartbeat.EMBEDDED, 1, 2),
        ("dispatcher", WorkerHeartbeat.DISPATCHER, 4, 9),
        ("celery-a", WorkerHeartbeat.CELERY, 4, 1),
        ("celery-b", WorkerHeartbeat.CELERY, 2, 29),
        ("celery-gone", WorkerHeartbeat.CELERY, 8, 31),
    ]:
        seen = now - timedelta(seconds=seconds_ago)
        WorkerHeartbeat.objects.create(
            worker_id=worker_id, kind=kind, host="h", pid=1, concurrency=concurrency,
            started_at=seen, last_seen=seen,
        )  # fmt: skip
    text = client.get("/metrics").content.decode()
    assert sample(text, 'skysolve_workers_alive{kind="embedded"}') == 1
    assert sample(text, 'skysolve_workers_alive{kind="dispatcher"}') == 1
    assert sample(text, 'skysolve_workers_alive{kind="celery"}') == 2
    assert sample(text, 'skysolve_worker_concurrency{kind="celery"}') == 6
    assert sample(text, 'skysolve_worker_concurrency{kind="dispatcher"}') == 4
    assert sample(text, "skysolve_workers_busy") == 0  # idle ones hold no lease


def test_it_reports_zero_workers_of_every_kind(client: Client) -> None:
    text = client.get("/metrics").content.decode()
    for kind in ("embedded", "dispatcher", "celery"):
        assert sample(text, f'skysolve_workers_alive{{kind="{kind}"}}') == 0


def test_it_wants_the_token_when_one_is_set(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
