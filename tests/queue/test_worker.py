from __future__ import annotations

import socket
import subprocess
import threading
from datetime import timedelta

import pytest
from django.test import Client

from skysolve.engine.results import SourceList
from skysolve.errors import SolverFailedError
from skysolve.queue.heartbeat import Heartbeat
from skysolve.queue.models import WorkerHeartbeat
from skysolve.submissions.models import Job
from skysolve.submissions.services import request_cancel
from tests.api.helpers import session_for, submit_xy
from tests.jobs import job_of
from tests.queuefixtures import Clock, worker
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def test_it_claims_a_job_exactly_once(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    first, second = worker(FakeSolver()), worker(FakeSolver())
    claimed = first.claim()
    assert claimed is not None and claimed.id == job_id
    assert claimed.status == Job.RUNNING and claimed.attempts == 1
    assert claimed.worker_id == first.worker_id
    assert second.claim() is None


def test_it_solves_and_records_the_calibration(client: Client) -> None:
    subid = submit_xy(client, session_for("alice"))
    solver = FakeSolver()
    assert worker(solver).run_once()
    job = job_of(subid)
    assert job.status == Job.SUCCESS
    assert job.ra == pytest.approx(169.966) and job.pixscale == pytest.approx(1.0907)
    assert job.result is not None and job.result["solved"] is True
    assert job.submission.processing_finished is not None
    source, params = solver.calls[0]
    # The worker hands the solver the submitted star list itself, in FITS pixels.
    assert isinstance(source, SourceList)
    assert list(source.x) == [10.0, 20.5, 30.0] and list(source.y) == [5.0, 15.0, 25.0]
    assert params.image_width == 100


def test_it_serves_users_round_robin(client: Client) -> None:
    alice, bob = session_for("alice"), session_for("bob")
    alice_jobs = [job_of(submit_xy(client, alice)).id for _ in range(3)]
    bob_job = job_of(submit_xy(client, bob)).id
    w = worker(FakeSolver())
    order = []
    while (job := w.claim()) is not None:
        order.append(job.id)
        w.clock.advance(1)  # type: ignore[attr-defined]
    assert order[:2] == [alice_jobs[0], bob_job]
    assert order[2:] == alice_jobs[1:]


def test_it_requeues_a_job_whose_worker_died(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    clock = Clock()
    dead = worker(FakeSolver(), clock)
    assert dead.claim() is not None
    survivor = worker(FakeSolver(), clock)
    assert survivor.requeue_expired() == 0  # lease still valid
    clock.advance(61)
    assert survivor.requeue_expired() == 1
    job = Job.objects.get(id=job_id)
    assert (job.status, job.id, job.attempts, job.worker_id) == (Job.QUEUED, job_id, 1, "")
    assert survivor.run_once()
    assert Job.objects.get(id=job_id).status == Job.SUCCESS


def test_it_gives_up_after_max_attempts(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    clock = Clock()
    for _ in range(2):
        assert worker(FakeSolver(), clock, max_attempts=2).claim() is not None
        clock.advance(61)
        worker(FakeSolver(), clock, max_attempts=2).requeue_expired()
    job = Job.objects.get(id=job_id)
    assert (job.status, job.error_code) == (Job.FAILURE, "worker_lost")
    assert job.submission.processing_finished is not None


def test_it_requeues_at_start_up_only_the_jobs_whose_worker_is_gone(client: Client) -> None:
    alice = session_for("alice")
    held, silent, dead = (job_of(submit_xy(client, alice)).id for _ in range(3))
    clock = Clock()
    live = worker(FakeSolver(), clock)  # a separate `skysolve worker`, beating
    Heartbeat(live.worker_id, WorkerHeartbeat.EMBEDDED, clock=clock).beat()
    assert live._claim_row(held)
    # Stopped by SIGTERM: its heartbeat row is gone, its lease still runs.
    assert worker(FakeSolver(), clock, worker_id="elsewhere:123:abc")._claim_row(silent)
    # Still beating (its row is fresh) but its process on this host is gone.
    gone_id = f"{socket.gethostname()}:{dead_pid()}:abc"
    Heartbeat(gone_id, WorkerHeartbeat.EMBEDDED, clock=clock).beat()
    assert worker(FakeSolver(), clock, worker_id=gone_id)._claim_row(dead)
    assert worker(None, clock).requeue_lost() == 2
    status = dict(Job.objects.values_list("id", "status"))
    assert status == {held: Job.RUNNING, silent: Job.QUEUED, dead: Job.QUEUED}
    assert Job.objects.get(id=held).worker_id == live.worker_id
    # A live worker whose lease ran out (stuck) loses its job as before.
    clock.advance(61)
    Heartbeat(live.worker_id, WorkerHeartbeat.EMBEDDED, clock=clock).beat()
    assert worker(None, clock).requeue_lost() == 1
    assert Job.objects.get(id=held).status == Job.QUEUED


def test_it_matches_a_dispatcher_slot_to_its_process_heartbeat(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    clock = Clock()
    Heartbeat("far:7:dispatch", WorkerHeartbeat.DISPATCHER, clock=clock).beat()
    assert worker(FakeSolver(), clock, worker_id="far:7:dispatch/1")._claim_row(job_id)
    assert worker(None, clock).requeue_lost() == 0


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_it_renews_the_lease(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    clock = Clock()
    w = worker(FakeSolver(), clock)
    job = w.claim()
    assert job is not None
    clock.advance(50)
    from skysolve.queue.worker import Running

    running = Running(job_id, deadline=clock.now + timedelta(hours=1))
    w.heartbeat(running)
    clock.advance(50)
    assert w.requeue_expired() == 0
    assert not running.cancel.is_set()


def test_it_stops_a_job_past_its_wall_clock_limit(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    clock = Clock()
    solver = FakeSolver()
    w = worker(solver, clock, job_timeout=30)

    def hang(cancel: threading.Event | None) -> None:
        clock.advance(31)
        assert w.current is not None
        w.heartbeat(w.current)  # what the heartbeat thread does meanwhile

    solver.hook = hang
    assert w.run_once()
    job = Job.objects.get(id=job_id)
    assert (job.status, job.error_code) == (Job.FAILURE, "timeout")
    assert solver.calls[0][1].timeout == 30


def test_it_cancels_a_queued_job_at_once(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    request_cancel(job_id)
    job = Job.objects.get(id=job_id)
    assert job.status == Job.CANCELLED and job.nova_status() == "failure"
    assert not worker(FakeSolver()).run_once()


def test_it_cancels_a_running_job(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    solver = FakeSolver()
    w = worker(solver)

    def cancel_meanwhile(cancel: threading.Event | None) -> None:
        request_cancel(job_id)
        assert w.current is not None
        w.heartbeat(w.current)

    solver.hook = cancel_meanwhile
    assert w.run_once()
    assert Job.objects.get(id=job_id).status == Job.CANCELLED


def test_it_retries_a_crashed_solver(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    solver = FakeSolver()
    solver.error = SolverFailedError("segfault")
    w = worker(solver, max_attempts=2)
    assert w.run_once()
    assert Job.objects.get(id=job_id).status == Job.QUEUED
    assert w.run_once()
    job = Job.objects.get(id=job_id)
    assert (job.status, job.error_code, job.attempts) == (Job.FAILURE, "solver_failed", 2)


def test_it_survives_an_engine_bug(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    solver = FakeSolver()
    solver.error = ZeroDivisionError("oops")
    assert worker(solver).run_once()
    job = Job.objects.get(id=job_id)
    assert job.status == Job.FAILURE and "ZeroDivisionError" in job.error_message


def test_it_drops_the_result_of_a_job_taken_away(client: Client) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    clock = Clock()
    solver = FakeSolver()
    w = worker(solver, clock)

    def lose_lease(cancel: threading.Event | None) -> None:
        clock.advance(61)
        worker(FakeSolver(), clock).requeue_expired()

    solver.hook = lose_lease
    assert w.run_once()
    assert Job.objects.get(id=job_id).status == Job.QUEUED


def test_it_cancels_through_the_api(client: Client) -> None:
    import json

    alice, bob = session_for("alice"), session_for("bob")
    job_id = job_of(submit_xy(client, alice)).id
    body = {"request-json": json.dumps({"session": bob})}
    denied = json.loads(client.post(f"/api/jobs/{job_id}/cancel", body).content)
    assert denied["status"] == "error"
    body = {"request-json": json.dumps({"session": alice})}
    ok = json.loads(client.post(f"/api/jobs/{job_id}/cancel/", body).content)
    assert ok == {"status": "success"}
    assert Job.objects.get(id=job_id).status == Job.CANCELLED


def test_it_shows_progress_in_the_log_while_solving(client: Client) -> None:
    subid = submit_xy(client, session_for("alice"))
    solver = FakeSolver()
    seen: list[str] = []
    solver.hook = lambda cancel: seen.append(Job.objects.get(id=job_of(subid).id).log)
    assert worker(solver).run_once()
    assert seen == ["preparing: reading"]
