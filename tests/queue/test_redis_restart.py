"""Celery mode: Redis (broker and results) restarted while jobs are queued; all finish.

This restarts the real redis-server on 127.0.0.1:6379 with the command CI
uses, and always starts it again, also when the test fails.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.check_services import reachable
from tests.queue.cluster import Cluster, celery_env
from tests.services import require_service
from tests.waiting import poll

pytestmark = [pytest.mark.slow, pytest.mark.services]

REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


def wait_until(condition: bool) -> None:
    poll(
        lambda: reachable("127.0.0.1", 6379) is condition,
        what=f"redis to become {'reachable' if condition else 'unreachable'}",
        patience=30.0,
        interval=0.1,
    )


def restart_redis() -> None:
    try:
        subprocess.run(["redis-cli", "shutdown", "nosave"], check=False, capture_output=True)
        wait_until(False)
    finally:
        if not reachable("127.0.0.1", 6379):
            subprocess.run(REDIS_START, check=True)
        wait_until(True)


def test_it_finishes_every_job_across_a_redis_restart(tmp_path: Path) -> None:
    require_service("postgresql")
    require_service("redis")
    cluster = Cluster(
        tmp_path, **celery_env(), SKYSOLVE_FAKE_SLEEP="1", SKYSOLVE_DISPATCH_SLOTS="3"
    )
    try:
        cluster.start_web(workers=1)
        worker = cluster.start("worker", "worker", "--concurrency", "1")
        cluster.submit_xy(cluster.session(), 8)
        cluster.wait_for(lambda: "success" in cluster.statuses(), "the first job")
        # Three jobs in flight: one solving, two waiting in the broker.
        restart_redis()
        cluster.wait_finished(8)
        assert cluster.statuses() == ["success"] * 8
        assert worker.poll() is None
    finally:
        cluster.close()
        if not reachable("127.0.0.1", 6379):
            subprocess.run(REDIS_START, check=True)
