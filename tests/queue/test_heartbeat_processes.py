"""Idle workers are seen alive by /metrics and /health/workers, and gone when they stop.

Real ``skysolve serve`` / ``skysolve worker`` processes on PostgreSQL (and
Redis for the Celery mode), with a heartbeat every half second.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests

from tests.queue.cluster import Cluster, celery_env
from tests.services import require_service

pytestmark = [pytest.mark.slow, pytest.mark.services]

BEAT = {"SKYSOLVE_HEARTBEAT_SECONDS": "0.5"}


def alive(cluster: Cluster) -> dict[str, int]:
    """skysolve_workers_alive by kind, as /metrics says."""
    text = requests.get(cluster.url + "/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        if line.startswith("skysolve_workers_alive{"):
            kind = line.split('"')[1]
            found[kind] = int(float(line.split()[-1]))
    return found


def workers_health(cluster: Cluster) -> tuple[int, list[str]]:
    response = requests.get(cluster.url + "/health/workers", timeout=10)
    return response.status_code, response.json()["missing"]


def test_it_sees_idle_embedded_workers_come_and_go(tmp_path: Path) -> None:
    require_service("postgresql")
    cluster = Cluster(tmp_path, **BEAT)
    try:
        cluster.start_web(workers=1)  # one embedded worker started by serve
        extra = cluster.start("extra", "worker")
        cluster.wait_for(lambda: alive(cluster)["embedded"] == 2, "two idle workers alive")
        assert workers_health(cluster) == (200, [])
        assert cluster.statuses() == []  # no job ran: both were seen idle
        # Killed: its row stays until three beats are missed.
        cluster.stop(extra, signal.SIGKILL)
        cluster.wait_for(lambda: alive(cluster)["embedded"] == 1, "the killed worker to expire")
        # Stopped cleanly: its row is gone before the process exits.
        polite = cluster.start("polite", "worker")
        cluster.wait_for(lambda: alive(cluster)["embedded"] == 2, "the new worker")
        cluster.stop(polite, signal.SIGTERM)
        rows = cluster.query(
            "SELECT count(*) FROM queue_workerheartbeat WHERE pid = %s", polite.pid
        )
        assert rows == [(0,)]
    finally:
        cluster.close()


def test_it_sees_the_dispatcher_and_idle_celery_workers(tmp_path: Path) -> None:
    require_service("postgresql")
    require_service("redis")
    cluster = Cluster(tmp_path, **celery_env(), **BEAT)
    try:
        cluster.start_web(workers=1)  # the dispatcher
        cluster.wait_for(lambda: alive(cluster)["dispatcher"] == 1, "the dispatcher")
        assert workers_health(cluster) == (503, ["celery"])
        worker = cluster.start("worker", "worker", "--concurrency", "2")
        cluster.wait_for(lambda: alive(cluster)["celery"] == 1, "the celery worker")
        assert workers_health(cluster) == (200, [])
        text = requests.get(cluster.url + "/metrics", timeout=10).text
        assert 'skysolve_worker_concurrency{kind="celery"} 2' in text
        # The worker has no database: the dispatcher copied its Redis beat.
        [(worker_id,)] = cluster.query(
            "SELECT worker_id FROM queue_workerheartbeat WHERE kind = 'celery'"
        )
        assert worker_id.startswith(f"skysolve-{worker.pid}@")
        cluster.stop(worker, signal.SIGTERM)
        cluster.wait_for(lambda: alive(cluster)["celery"] == 0, "the stopped worker to go")
        assert workers_health(cluster) == (503, ["celery"])
    finally:
        cluster.close()
