"""SKYSOLVE_ABANDON_SECONDS: jobs nobody asks about any more are cancelled."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from skysolve.submissions.models import Job, Submission
from tests.api.helpers import call, session_for, submit_xy
from tests.jobs import job_of
from tests.queuefixtures import Clock, worker
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def test_it_cancels_queued_jobs_nobody_polls(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_ABANDON_SECONDS = 120
    alice = session_for("alice")
    forgotten, watched, via_submission = (submit_xy(client, alice) for _ in range(3))
    clock = Clock()
    clock.advance(100)
    with _at(clock):
        call(client, f"/api/jobs/{job_of(watched).id}")
        call(client, f"/api/submissions/{via_submission}")
    clock.advance(30)  # 130 s after submission, 30 s after the last polls
    w = worker(FakeSolver(), clock)
    assert w.cancel_abandoned() == 1
    job = job_of(forgotten)
    assert (job.status, job.error_code) == (Job.CANCELLED, "abandoned")
    assert "SKYSOLVE_ABANDON_SECONDS" in job.error_message
    assert Submission.objects.get(pk=forgotten).processing_finished is not None
    assert job_of(watched).status == job_of(via_submission).status == Job.QUEUED
    assert call(client, f"/api/jobs/{job.id}") == {"status": "failure"}


def test_it_stops_a_running_job_nobody_polls(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_ABANDON_SECONDS = 60
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    clock = Clock()
    solver = FakeSolver()
    w = worker(solver, clock)

    def forgotten_mid_solve(cancel: threading.Event | None) -> None:
        clock.advance(61)
        assert worker(None, clock).cancel_abandoned() == 1
        assert w.current is not None
        w.heartbeat(w.current)  # the running worker's next beat sees the request

    solver.hook = forgotten_mid_solve
    assert w.run_once()
    job = Job.objects.get(id=job_id)
    assert (job.status, job.error_code) == (Job.CANCELLED, "abandoned")


def test_it_cancels_nothing_when_off(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_ABANDON_SECONDS = 0
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    clock = Clock()
    clock.advance(10**6)
    assert worker(FakeSolver(), clock).cancel_abandoned() == 0
    assert Job.objects.get(id=job_id).status == Job.QUEUED


class _at:
    """Make the web side's clock read ``clock`` (polls are noted with timezone.now)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __enter__(self) -> None:
        self.patch = pytest.MonkeyPatch()
        self.patch.setattr(timezone, "now", lambda: self.clock.now)

    def __exit__(self, *exc: object) -> None:
        self.patch.undo()
