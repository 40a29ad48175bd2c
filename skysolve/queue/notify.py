"""Wake-ups through Redis in the Celery mode: a queued job rings the dispatcher.

The dispatcher's idle slots used to find a new job by polling the ``Job``
table, so a job submitted to an idle installation waited half a poll
interval on average before it was sent.  Now :func:`job_queued` (called by
the web process once the job is committed) publishes on a Redis channel of
the installation's queue, and the dispatcher's :class:`QueuedListener` rings
a :class:`Doorbell` its idle slots wait on.  The Redis is the result
backend's, which the Celery mode always has.

A notification is only a hint: a lost one (Redis restarting) costs at most
one poll interval, since the slots still poll as before.
"""

from __future__ import annotations

import functools
import logging
import threading
import time

import redis
from django.conf import settings

log = logging.getLogger(__name__)

#: After a failed publish, submissions do not try again for this long (a
#: Redis outage must not slow every submission by a connect timeout).
QUIET_AFTER_FAILURE = 5.0

_quiet_until = 0.0


@functools.cache
def redis_client(url: str) -> redis.Redis:
    """One client (a connection pool, thread-safe) per URL and process; short timeouts."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=1.0, socket_timeout=5.0, health_check_interval=30
    )


def queued_channel() -> str:
    return f"skysolve:{settings.SKYSOLVE_CELERY_QUEUE}:queued"


def job_queued(job_id: int) -> None:
    """Tell the dispatcher a job is waiting; never fails the caller."""
    global _quiet_until
    if time.monotonic() < _quiet_until:
        return
    try:
        redis_client(settings.SKYSOLVE_RESULT_BACKEND).publish(queued_channel(), str(job_id))
    except redis.RedisError as exc:
        _quiet_until = time.monotonic() + QUIET_AFTER_FAILURE
        log.warning("cannot tell the dispatcher about job %s (it will poll): %s", job_id, exc)


class Doorbell:
    """Idle threads wait on it; :meth:`ring` wakes them all.

    A waiter passes the :attr:`rings` count it saw before looking for work,
    so a ring that came while it was looking is not missed.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.rings = 0

    def ring(self) -> None:
        with self._condition:
            self.rings += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Wait until rung after ``seen`` or ``timeout`` seconds; True if rung."""
        with self._condition:
            return self._condition.wait_for(lambda: self.rings != seen, timeout)


class QueuedListener:
    """A thread ringing ``doorbell`` on every queued-job notification, until ``stop`` is set."""

    def __init__(self, doorbell: Doorbell, stop: threading.Event) -> None:
        self.doorbell = doorbell
        self.stop = stop
        self.url = settings.SKYSOLVE_RESULT_BACKEND
        self.channel = queued_channel()
        self.thread = threading.Thread(target=self._run, name="queued-listener", daemon=True)

    def start(self) -> QueuedListener:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join()

    def _run(self) -> None:
        broken = False
        while not self.stop.is_set():
            pubsub = redis_client(self.url).pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                if broken:
                    broken = False
                    self.doorbell.ring()  # jobs queued meanwhile
                log.info("listening for queued jobs on %s", self.channel)
                while not self.stop.is_set():
                    if pubsub.get_message(timeout=1.0) is not None:
                        self.doorbell.ring()
            except redis.RedisError as exc:
                if not broken:
                    log.warning("cannot listen for queued jobs (polling meanwhile): %s", exc)
                broken = True
                self.stop.wait(1.0)
            finally:
                pubsub.close()
