"""Each attempt of a job works in its own directory and publishes it when it records its result."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from skysolve.submissions.jobfiles import ATTEMPTS, attempt_dir, job_dir, job_id_of, publish
from skysolve.submissions.models import Job
from tests.api.helpers import session_for, submit_xy
from tests.jobs import job_of
from tests.queuefixtures import Clock, worker
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def test_it_keeps_a_stale_attempt_out_of_the_live_attempts_files(client: Client) -> None:
    """A worker that lost its lease but still runs neither writes nor deletes the new files."""
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    clock = Clock()
    stale_solver, live_solver = FakeSolver(), FakeSolver()
    stale, live = worker(stale_solver, clock), worker(live_solver, clock)
    seen: dict[str, Path] = {}

    def lose_the_lease_mid_solve(cancel: threading.Event | None) -> None:
        # The stale worker stalls past its lease; another worker takes the job
        # and finishes it while the stale one is still inside its solve.
        stale_solver.hook = None
        clock.advance(61)
        assert live.run_once()
        seen["live"] = job_dir(job_id).resolve()

    stale_solver.hook = lose_the_lease_mid_solve
    job = stale.claim()
    assert job is not None
    stale.run_job(job)  # carries on writing its files after losing the job

    job = Job.objects.get(id=job_id)
    assert (job.status, job.attempts, job.worker_id) == (Job.SUCCESS, 2, live.worker_id)
    published = job_dir(job_id)
    assert published.is_symlink() and published.resolve() == seen["live"]
    assert published.resolve().name.startswith(f"{job_id}.2.")
    # The stale attempt wrote only into its own directory, then removed it.
    assert [p.name for p in published.resolve().parent.iterdir()] == [seen["live"].name]
    assert (published / "solve.log").read_text() == "fake solver log\n"
    assert {Path(str(p)).name for p in job.result["files"].values()} <= {
        p.name for p in published.iterdir()
    }


def test_it_publishes_the_recorded_attempt_and_sweeps_the_others(
    client: Client, settings: object
) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    killed = attempt_dir(job_id, 1)  # a worker killed -9 left this behind
    killed.mkdir(parents=True)
    (killed / "half.fits").write_bytes(b"x")
    legacy = job_dir(job_id)  # files of an installation from before attempt directories
    legacy.mkdir()
    (legacy / "wcs.fits").write_bytes(b"old")
    other_job = attempt_dir(job_id + 1, 1)
    other_job.mkdir()
    assert worker(FakeSolver()).run_once()
    target = legacy.resolve()
    assert legacy.is_symlink() and target.parent.name == ATTEMPTS
    assert not killed.exists() and other_job.is_dir()
    assert (legacy / "wcs.fits").read_bytes() != b"old"
    assert os.readlink(legacy) == os.path.join(ATTEMPTS, target.name)  # relative


def test_it_removes_the_directory_of_an_attempt_that_recorded_nothing(
    client: Client,
) -> None:
    job_id = job_of(submit_xy(client, session_for("alice"))).id
    solver = FakeSolver()
    w = worker(solver)

    def cancelled_elsewhere(cancel: threading.Event | None) -> None:
        Job.objects.filter(id=job_id).update(status=Job.CANCELLED)

    solver.hook = cancelled_elsewhere
    assert w.run_once()
    assert not job_dir(job_id).exists()
    attempts = job_dir(job_id).parent / ATTEMPTS
    assert not any(attempts.iterdir())


def test_it_reads_the_job_of_a_directory(tmp_path: Path) -> None:
    assert job_id_of(tmp_path / "7") == 7
    assert job_id_of(tmp_path / ATTEMPTS / "7.2.ab12cd34") == 7
    assert job_id_of(tmp_path / "work") == 0


def test_it_publishes_in_one_rename(tmp_path: Path, settings: Any) -> None:
    settings.SKYSOLVE_JOB_DIR = tmp_path / "jobs"
    first, second = attempt_dir(5, 1), attempt_dir(5, 2)
    first.mkdir(parents=True)
    (first / "wcs.fits").write_text("one")
    publish(5, first)
    assert (job_dir(5) / "wcs.fits").read_text() == "one"
    second.mkdir()
    (second / "wcs.fits").write_text("two")
    with (job_dir(5) / "wcs.fits").open() as reader:  # a download in progress
        publish(5, second)
        assert reader.read() == "one"
    assert (job_dir(5) / "wcs.fits").read_text() == "two"
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == [ATTEMPTS, "5"]
