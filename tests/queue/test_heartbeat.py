"""Heartbeats of worker processes (rows and Redis keys) and the dispatcher's wake-up bell."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from skysolve.queue import heartbeat, notify
from skysolve.queue.heartbeat import CeleryBeacon, Heartbeat, alive, mirror_celery_workers
from skysolve.queue.models import WorkerHeartbeat
from skysolve.queue.notify import Doorbell, QueuedListener
from tests.queuefixtures import Clock
from tests.services import REDIS_URL, require_service

pytestmark = pytest.mark.django_db


def test_it_marks_an_idle_worker_alive_until_three_beats_are_missed(settings: Any) -> None:
    settings.SKYSOLVE_HEARTBEAT_SECONDS = 10
    clock = Clock()
    Heartbeat("host:1:abc", WorkerHeartbeat.EMBEDDED, clock=clock).beat()
    row = WorkerHeartbeat.objects.get()
    assert (row.worker_id, row.kind, row.concurrency) == ("host:1:abc", "embedded", 1)
    assert list(alive(clock.now + timedelta(seconds=29))) == [row]
    assert list(alive(clock.now + timedelta(seconds=30))) == []


def test_it_keeps_one_row_per_process_and_moves_its_last_seen(settings: Any) -> None:
    clock = Clock()
    beat = Heartbeat("d", WorkerHeartbeat.DISPATCHER, concurrency=4, clock=clock)
    beat.beat()
    started = clock.now
    clock.now += timedelta(seconds=10)
    beat.beat()
    row = WorkerHeartbeat.objects.get()
    assert (row.started_at, row.last_seen, row.concurrency) == (started, clock.now, 4)


def test_it_removes_the_row_of_a_stopped_worker() -> None:
    beat = Heartbeat("w", WorkerHeartbeat.EMBEDDED)
    beat.beat()
    beat.remove()
    assert not WorkerHeartbeat.objects.exists()


def test_it_forgets_workers_gone_for_a_day() -> None:
    clock = Clock()
    Heartbeat("old", WorkerHeartbeat.EMBEDDED, clock=clock).beat()
    Heartbeat("recent", WorkerHeartbeat.EMBEDDED, clock=clock).beat()
    clock.now += timedelta(hours=23)
    Heartbeat("recent", WorkerHeartbeat.EMBEDDED, clock=clock).beat()
    clock.now += timedelta(hours=2)
    Heartbeat("new", WorkerHeartbeat.EMBEDDED, clock=clock).beat()
    assert sorted(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == [
        "new",
        "recent",
    ]


def test_it_counts_processes_and_their_concurrency_by_kind() -> None:
    Heartbeat("e1", WorkerHeartbeat.EMBEDDED).beat()
    Heartbeat("e2", WorkerHeartbeat.EMBEDDED).beat()
    Heartbeat("d", WorkerHeartbeat.DISPATCHER, concurrency=3).beat()
    assert heartbeat.alive_by_kind() == {"embedded": (2, 2), "dispatcher": (1, 3), "celery": (0, 0)}


# -- Celery workers: Redis keys the dispatcher copies ---------------------------------


@pytest.fixture
def own_queue(settings: Any) -> Iterator[Any]:
    """Celery mode on the real Redis, with keys and channels of this test's own."""
    require_service("redis")
    settings.SKYSOLVE_QUEUE = "celery"
    settings.SKYSOLVE_RESULT_BACKEND = REDIS_URL
    settings.SKYSOLVE_CELERY_QUEUE = f"skysolve-test-{secrets.token_hex(4)}"
    yield settings
    client = notify.redis_client(REDIS_URL)
    for key in client.scan_iter(match=heartbeat.celery_key_prefix() + "*"):
        client.delete(key)


def test_it_copies_live_celery_workers_into_rows(own_queue: Any) -> None:
    beacons = [CeleryBeacon(f"skysolve-{i}@solve1", concurrency=4) for i in range(2)]
    for beacon in beacons:
        beacon.beat()
    assert mirror_celery_workers() == 2
    rows = WorkerHeartbeat.objects.filter(kind=WorkerHeartbeat.CELERY)
    assert sorted(rows.values_list("worker_id", "concurrency")) == [
        ("skysolve-0@solve1", 4),
        ("skysolve-1@solve1", 4),
    ]
    # A worker that stops removes its key; its row goes at the next copy.
    beacons[0].remove()
    assert mirror_celery_workers() == 1
    assert list(rows.values_list("worker_id", flat=True)) == ["skysolve-1@solve1"]


def test_it_lets_a_silent_celery_worker_expire(own_queue: Any) -> None:
    beacon = CeleryBeacon("skysolve-9@solve2", concurrency=1, every=10)
    beacon.beat()
    ttl = notify.redis_client(REDIS_URL).pttl(beacon.key)
    assert 29_000 < ttl <= 30_000  # three beats


def test_it_sees_only_its_own_installations_workers(own_queue: Any) -> None:
    mine = own_queue.SKYSOLVE_CELERY_QUEUE
    CeleryBeacon("mine@h", concurrency=1).beat()
    own_queue.SKYSOLVE_CELERY_QUEUE = f"other-{secrets.token_hex(4)}"
    try:
        assert mirror_celery_workers() == 0
    finally:
        own_queue.SKYSOLVE_CELERY_QUEUE = mine


# -- waking the dispatcher ---------------------------------------------------------------


def test_it_wakes_a_waiter_rung_after_it_looked() -> None:
    bell = Doorbell()
    seen = bell.rings
    bell.ring()  # while the waiter was looking for work
    assert bell.wait(seen, timeout=0)
    assert not bell.wait(bell.rings, timeout=0.01)


def test_it_rings_the_dispatcher_when_a_job_is_queued(own_queue: Any) -> None:
    bell = Doorbell()
    stop = threading.Event()
    listener = QueuedListener(bell, stop).start()
    try:
        # The listener subscribes in its own thread; a notification sent
        # before that is lost, which is why the dispatcher also polls.
        for _ in range(100):
            seen = bell.rings
            notify.job_queued(123)
            if bell.wait(seen, timeout=0.2):
                break
        else:
            raise AssertionError("the listener never heard a queued job")
    finally:
        stop.set()
        listener.join()


def test_it_does_not_fail_a_submission_when_redis_is_away(
    own_queue: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_queue.SKYSOLVE_RESULT_BACKEND = "redis://127.0.0.1:1/0"  # nothing listens there
    monkeypatch.setattr(notify, "_quiet_until", 0.0)
    notify.job_queued(5)
    notify.job_queued(6)  # quiet for a while: no second connection attempt
    warnings = [r.getMessage() for r in caplog.records if "cannot tell" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].startswith("cannot tell the dispatcher about job 5 (it will poll)")
