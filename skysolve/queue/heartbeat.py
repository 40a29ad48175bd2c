"""Which worker processes are alive, idle ones included.

A job's lease shows only the workers that are running a job; an idle worker
holds none.  So every worker process also reports that it is alive, every
SKYSOLVE_HEARTBEAT_SECONDS, from a thread started where the process starts:

* an embedded worker and the Celery dispatcher write their own
  :class:`~skysolve.queue.models.WorkerHeartbeat` row (:class:`Heartbeat`);
* a Celery worker has no database: it keeps a Redis key that expires after
  three intervals (:class:`CeleryBeacon`), and the dispatcher copies the keys
  into rows at each of its own beats (:func:`mirror_celery_workers`).

A process counts as alive while its row is younger than three intervals
(:func:`alive`); one stopped cleanly removes its row or key at once.  /metrics
and /health/workers read the rows, so every web process answers the same.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from skysolve.queue.models import WorkerHeartbeat

log = logging.getLogger(__name__)

#: A process silent for this many intervals counts as gone.
MISSED_BEATS = 3
#: Rows of processes gone this long are deleted (each restart makes a new id).
FORGET_AFTER = timedelta(days=1)


def interval() -> float:
    return float(settings.SKYSOLVE_HEARTBEAT_SECONDS)


def alive_cutoff(now: datetime | None = None) -> datetime:
    """A process last seen at or before this is gone."""
    return (now or timezone.now()) - timedelta(seconds=MISSED_BEATS * interval())


def alive(now: datetime | None = None) -> QuerySet[WorkerHeartbeat]:
    """The processes that gave a sign of life within the last three intervals."""
    return WorkerHeartbeat.objects.filter(last_seen__gt=alive_cutoff(now))


def alive_by_kind(now: datetime | None = None) -> dict[str, tuple[int, int]]:
    """(processes, their concurrency) alive per kind; every kind is present."""
    counts = {kind: (0, 0) for kind, _ in WorkerHeartbeat.KIND_CHOICES}
    rows = alive(now).values("kind").annotate(n=Count("worker_id"), jobs=Sum("concurrency"))
    for row in rows.order_by():
        counts[row["kind"]] = (int(row["n"]), int(row["jobs"] or 0))
    return counts


def host_and_pid() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


class _Ticker:
    """Calls ``step`` now and then every ``every`` seconds in a thread, until stopped."""

    def __init__(
        self, name: str, step: Callable[[], None], every: float, *, database: bool
    ) -> None:
        self.step = step
        self.every = every
        self.database = database
        self.stopped = threading.Event()
        self.failing = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            while True:
                self._once()
                if self.stopped.wait(self.every):
                    return
        finally:
            if self.database:
                connection.close()

    def _once(self) -> None:
        try:
            self.step()
        except Exception as exc:  # the database or Redis away: try again at the next beat
            if not self.failing:
                log.warning("%s failed (trying again every beat): %s", self.thread.name, exc)
            self.failing = True
            if self.database:
                connection.close()  # a fresh connection for the next beat
            return
        if self.failing:
            log.info("%s: working again", self.thread.name)
        self.failing = False

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()


class Heartbeat:
    """Keeps the ``WorkerHeartbeat`` row of this process fresh (embedded worker, dispatcher).

    ``also`` runs after each beat in the same thread: the dispatcher copies
    the Celery workers' beats there.  Use as a context manager around the
    worker's loop; leaving it removes the row.
    """

    def __init__(
        self,
        worker_id: str,
        kind: str,
        *,
        concurrency: int = 1,
        every: float | None = None,
        clock: Callable[[], datetime] = timezone.now,
        also: Callable[[], object] | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.kind = kind
        self.concurrency = concurrency
        self.clock = clock
        self.also = also
        self.host, self.pid = host_and_pid()
        self.started_at = clock()
        self.ticker = _Ticker(
            f"heartbeat {worker_id}", self._step, every or interval(), database=True
        )

    def beat(self) -> None:
        """One beat: mark this process alive now (making its row if it has none)."""
        now = self.clock()
        fresh = WorkerHeartbeat.objects.filter(worker_id=self.worker_id).update(last_seen=now)
        if not fresh:
            WorkerHeartbeat.objects.update_or_create(
                worker_id=self.worker_id,
                defaults={
                    "kind": self.kind,
                    "host": self.host[:255],
                    "pid": self.pid,
                    "concurrency": self.concurrency,
                    "started_at": self.started_at,
                    "last_seen": now,
                },
            )
        WorkerHeartbeat.objects.filter(last_seen__lt=now - FORGET_AFTER).delete()

    def remove(self) -> None:
        WorkerHeartbeat.objects.filter(worker_id=self.worker_id).delete()

    def _step(self) -> None:
        try:
            self.beat()
        finally:
            if self.also is not None:
                self.also()

    def __enter__(self) -> Heartbeat:
        self.ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ticker.stop()
        try:
            self.remove()
        except DatabaseError as error:  # it expires by itself
            log.warning("cannot remove the heartbeat of %s: %s", self.worker_id, error)
        finally:
            connection.close()


# -- Celery workers (no database) --------------------------------------------------


def celery_key_prefix() -> str:
    return f"skysolve:{settings.SKYSOLVE_CELERY_QUEUE}:worker:"


def _redis() -> redis.Redis:
    from skysolve.queue.notify import redis_client

    return redis_client(settings.SKYSOLVE_RESULT_BACKEND)


class CeleryBeacon:
    """A Celery worker's sign of life: a Redis key that expires after three intervals."""

    def __init__(self, worker_id: str, *, concurrency: int, every: float | None = None) -> None:
        host, pid = host_and_pid()
        self.key = celery_key_prefix() + worker_id
        self.every = every or interval()
        self.value = json.dumps(
            {
                "worker_id": worker_id,
                "host": host,
                "pid": pid,
                "concurrency": concurrency,
                "started_at": timezone.now().isoformat(),
            }
        )
        self.ticker = _Ticker(f"beacon {worker_id}", self.beat, self.every, database=False)

    def beat(self) -> None:
        _redis().set(self.key, self.value, px=int(MISSED_BEATS * self.every * 1000))

    def remove(self) -> None:
        _redis().delete(self.key)

    def start(self) -> None:
        self.ticker.start()

    def stop(self) -> None:
        self.ticker.stop()
        try:
            self.remove()
        except redis.RedisError as exc:  # it expires by itself
            log.warning("cannot remove the heartbeat key %s: %s", self.key, exc)


def mirror_celery_workers(*, clock: Callable[[], datetime] = timezone.now) -> int:
    """Copy the Celery workers' Redis beats into rows (the dispatcher runs it each beat).

    A worker whose key is gone (stopped, or silent for three intervals) loses
    its row.  Returns the number of Celery workers alive.
    """
    client = _redis()
    prefix = celery_key_prefix()
    keys = sorted(client.scan_iter(match=f"{prefix}*", count=200))
    beats: dict[str, dict[str, Any]] = {}
    for raw in client.mget(keys) if keys else []:
        if raw is None:
            continue  # expired between the scan and the read
        try:
            data = json.loads(raw)
            beats[str(data["worker_id"])[:200]] = data
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed worker heartbeat: %r", raw[:200])
    now = clock()
    for worker_id, data in beats.items():
        try:
            started = datetime.fromisoformat(str(data.get("started_at")))
        except ValueError:
            started = now
        WorkerHeartbeat.objects.update_or_create(
            worker_id=worker_id,
            defaults={
                "kind": WorkerHeartbeat.CELERY,
                "host": str(data.get("host", ""))[:255],
                "pid": int(data.get("pid") or 0),
                "concurrency": int(data.get("concurrency") or 1),
                "started_at": started,
                "last_seen": now,
            },
        )
    WorkerHeartbeat.objects.filter(kind=WorkerHeartbeat.CELERY).exclude(
        worker_id__in=list(beats)
    ).delete()
    return len(beats)
