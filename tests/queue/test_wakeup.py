"""Idle embedded workers wake when a job is queued, and still poll when nobody rings."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from skysolve.queue.wakeup import FifoWaker, _ring_fifo
from tests.queue.cluster import Cluster
from tests.services import require_service


def test_it_wakes_a_fifo_waiter_that_a_separate_process_rings(tmp_path: Path) -> None:
    fifo = tmp_path / "wake" / "queued.fifo"
    waker = FifoWaker(fifo)
    stop = threading.Event()
    try:
        assert not waker.wait(0.05, stop)  # nobody rang: the poll interval passes
        ring = "from pathlib import Path; from skysolve.queue.wakeup import _ring_fifo;"
        subprocess.run(
            [sys.executable, "-c", f"{ring} _ring_fifo(Path({str(fifo)!r}))"], check=True
        )
        assert waker.wait(30, stop)
        assert not waker.wait(0.05, stop)  # the ring was read: no busy loop after it
        for _ in range(3):  # several rings while busy wake it once, then it waits again
            _ring_fifo(fifo)
        assert waker.wait(30, stop)
        assert not waker.wait(0.05, stop)
    finally:
        waker.close()
    # With no worker holding the pipe, ringing neither blocks nor fails.
    _ring_fifo(fifo)
    _ring_fifo(tmp_path / "missing.fifo")


def test_it_stops_waiting_when_asked(tmp_path: Path) -> None:
    waker = FifoWaker(tmp_path / "queued.fifo")
    stop = threading.Event()
    stop.set()
    try:
        assert not waker.wait(600, stop)
    finally:
        waker.close()


def test_it_refuses_a_file_where_the_pipe_belongs(tmp_path: Path) -> None:
    (tmp_path / "queued.fifo").write_text("not a pipe")
    with pytest.raises(FileExistsError):
        FifoWaker(tmp_path / "queued.fifo")


@pytest.mark.slow
@pytest.mark.services
def test_it_wakes_an_idle_worker_through_postgresql_notify(tmp_path: Path) -> None:
    """The worker polls every ten minutes: only the NOTIFY can start the job in time."""
    require_service("postgresql")
    cluster = Cluster(tmp_path, SKYSOLVE_WORKER_POLL_SECONDS="600")
    try:
        cluster.start_web()
        cluster.start("worker", "worker")
        # It has looked at the (empty) queue once and now waits.
        cluster.wait_for(
            lambda: "waiting for jobs (PostgresWaker" in cluster.log("worker"), "an idle worker"
        )
        cluster.submit_xy(cluster.session(), 1)
        cluster.wait_finished(1)
        assert cluster.statuses() == ["success"]
    finally:
        cluster.close()
