"""The web host's side of the Celery mode: claim jobs fairly, send them, record results.

A :class:`Dispatcher` runs one embedded :class:`~skysolve.queue.worker.Worker`
per *slot* in threads, each with a :class:`CelerySolver` as its solve
function.  So claiming (fair round-robin by submitter), leases, heartbeats,
cancel, wall-clock limit, retry of retryable errors and recording the result
are the embedded worker's code, unchanged; only the solve itself runs on a
Celery worker.  Because a job is sent only when a slot is free, the broker
never holds a backlog: the fair order is decided from the database at the
moment a worker can start, not when the submission arrived.  Give it as many
slots as the Celery workers have processes in total (SKYSOLVE_DISPATCH_SLOTS).

Latency: nothing on the way polls on a timer when there is news.  A queued job
rings the idle slots through Redis (:mod:`skysolve.queue.notify`), the task
goes to a worker that is already waiting on the broker, and the reply is
picked up from the result backend's publish of the task's state the moment
the worker stores it.  Timers remain only as the fallback for a lost
notification.

Faults: a message lost by the broker (a Redis restart without persistence) or
a worker killed in the middle of a solve shows up as a task whose state stops
changing; after SKYSOLVE_CELERY_RESEND_SECONDS the request is sent again
under the same task id.  Should the dispatcher itself die, the job's lease
runs out and the job is queued again under its id, as with embedded workers.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from celery import Celery
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveFunction, SolveResult, SourceList
from skysolve.errors import SolveCancelledError, SolverFailedError, error_from_dict
from skysolve.queue.heartbeat import Heartbeat, mirror_celery_workers
from skysolve.queue.models import WorkerHeartbeat
from skysolve.queue.notify import Doorbell, QueuedListener
from skysolve.queue.transfer import outgoing, pack_request, unpack_result
from skysolve.queue.worker import Worker
from skysolve.submissions.jobfiles import job_id_of

log = logging.getLogger(__name__)


class CelerySolver:
    """A solve function that runs the solve on a Celery worker and waits for it.

    It learns the task's states from the Redis result backend's own
    notifications (Celery publishes every state it stores on a channel named
    after the task's key), so a finished solve is picked up at once; every
    ``poll_interval`` without news it reads the stored state instead, which
    also covers a notification lost while Redis restarted.
    """

    def __init__(
        self,
        app: Celery | None = None,
        *,
        max_file_bytes: int | None = None,
        resend_after: float | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        if app is None:
            from skysolve.queue.celeryapp import app as default_app

            app = default_app
        self.app = app
        self.max_file_bytes = (
            settings.SKYSOLVE_TASK_MAX_FILE_BYTES if max_file_bytes is None else max_file_bytes
        )
        self.resend_after = (
            settings.SKYSOLVE_CELERY_RESEND_SECONDS if resend_after is None else resend_after
        )
        self.poll_interval = poll_interval
        # One subscription connection per dispatcher slot (thread), kept across jobs.
        self._local = threading.local()

    def __call__(
        self,
        source: Path | SourceList,
        params: SolveParameters,
        out_dir: Path,
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[str, str], None] | None = None,
        verified: Callable[[SolveResult], None] | None = None,
    ) -> SolveResult:
        from skysolve.queue.celeryapp import TASK_NAME

        job_id = job_id_of(out_dir)
        sent = outgoing(source, params, max_file_bytes=self.max_file_bytes)
        request = pack_request(job_id, sent.source, sent.params, max_file_bytes=self.max_file_bytes)
        task_id = f"job-{job_id}-{uuid.uuid4().hex[:12]}"
        stop = cancel or threading.Event()
        expires = params.timeout + 2 * self.resend_after + 60

        def send() -> None:
            self.app.send_task(
                TASK_NAME,
                args=[request],
                task_id=task_id,
                expires=expires,
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.5, "interval_step": 1.0},
            )

        def answer(packed: dict[str, Any]) -> None:
            # The worker's answer before its pictures: recorded while they are drawn.
            if verified is not None:
                verified(unpack_result(packed, out_dir))

        # Subscribed before sending, so no state published by the worker is missed.
        watch = _TaskWatch(self.app.backend, task_id, self._local, job_id)
        try:
            reply = self._wait(watch, send, stop, job_id, progress, answer)
        finally:
            watch.close()
        self._retire(task_id)
        if "error" in reply:
            raise error_from_dict(reply["error"], sender="the worker")
        result = unpack_result(reply, out_dir)
        if sent.image_kept is not None and isinstance(sent.source, SourceList):
            self._draw_pictures(result, sent.image_kept, sent.source, out_dir, job_id)
        return result

    def _draw_pictures(
        self, result: SolveResult, image: Path, sources: SourceList, out_dir: Path, job_id: int
    ) -> None:
        """The pictures of an image that stayed here (above the size cap), drawn here."""
        from skysolve.engine.offload import draw_pictures
        from skysolve.engine.pipeline import EngineConfig

        try:
            if EngineConfig.from_env().make_pictures:
                draw_pictures(result, image, sources, out_dir)
        except Exception as exc:  # the answer stands without its pictures
            log.warning("job %s: cannot draw the pictures: %s: %s", job_id, type(exc).__name__, exc)

    def _wait(
        self,
        watch: _TaskWatch,
        send: Callable[[], None],
        stop: threading.Event,
        job_id: int,
        progress: Callable[[str, str], None] | None,
        answer: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        """Send the task and wait for its reply, sending it again while it is stuck.

        A ``PROGRESS`` state carrying ``verified`` (the packed result before the
        pictures) goes to ``answer`` once.
        """
        answered = False
        self._until_sent(send, stop, job_id)
        log.info("job %s: sent as task %s", job_id, watch.task_id)
        last_change = time.monotonic()
        last_seen: Any = None
        stage = ""
        while True:
            if stop.is_set():
                self._revoke(watch.task_id)
                raise SolveCancelledError("cancelled")
            try:
                meta = watch.next_state(self.poll_interval)
                state, info = str(meta.get("status")), meta.get("result")
            except Exception as exc:  # the backend restarting: keep waiting
                log.warning("job %s: cannot read task %s: %s", job_id, watch.task_id, exc)
                state, info = "UNKNOWN", None
                stop.wait(self.poll_interval)
            if state == "SUCCESS":
                if not isinstance(info, dict):
                    raise SolverFailedError(f"the Celery task answered {info!r:.200}")
                return info
            if state == "FAILURE":
                self._retire(watch.task_id)
                raise SolverFailedError(f"the Celery task failed: {info}")
            if isinstance(info, dict) and "verified" in info and not answered:
                answered = True
                answer(info["verified"])
            seen = (state, info.get("beat")) if isinstance(info, dict) else (state, None)
            now = time.monotonic()
            if seen != last_seen and state != "UNKNOWN":
                last_seen, last_change = seen, now
            if isinstance(info, dict) and progress is not None and info.get("stage") != stage:
                stage = str(info.get("stage") or "")
                progress(stage, f"on {info.get('worker', 'a worker')}")
            if now - last_change > self.resend_after:
                # Lost by the broker or by a killed worker: deliver it again.
                log.warning(
                    "job %s: task %s is stuck in %s, sending it again",
                    job_id, watch.task_id, state,
                )  # fmt: skip
                self._until_sent(send, stop, job_id)
                last_change = time.monotonic()

    def _until_sent(self, send: Callable[[], None], stop: threading.Event, job_id: int) -> None:
        while True:
            try:
                send()
                return
            except Exception as exc:  # the broker is away: wait for it (the job lease runs on)
                log.warning("job %s: cannot reach the broker: %s", job_id, exc)
                if stop.wait(1.0):
                    raise SolveCancelledError("cancelled") from None

    def _revoke(self, task_id: str) -> None:
        try:
            self.app.control.revoke(task_id)
        except Exception as exc:
            log.warning("cannot revoke task %s: %s", task_id, exc)

    def _retire(self, task_id: str) -> None:
        """Replace the (possibly large) reply by a marker a second delivery will find."""
        try:
            self.app.backend.store_result(task_id, {"retired": True}, "SUCCESS")
        except Exception as exc:
            log.warning("cannot retire task %s: %s", task_id, exc)


class _TaskWatch:
    """The states of one task as the Redis result backend publishes them.

    The subscription uses the calling thread's pub/sub connection (kept in
    ``local`` across jobs); when it breaks, the state is read instead and the
    next call subscribes again.
    """

    def __init__(self, backend: Any, task_id: str, local: threading.local, job_id: int) -> None:
        self.backend = backend
        self.task_id = task_id
        self.job_id = job_id
        self.local = local
        self.channel: bytes = backend.get_key_for_task(task_id)
        self.subscribed = False
        self._subscribe()

    def _subscribe(self) -> None:
        try:
            pubsub = getattr(self.local, "pubsub", None)
            if pubsub is None:
                pubsub = self.backend.client.pubsub(ignore_subscribe_messages=True)
                self.local.pubsub = pubsub
            pubsub.subscribe(self.channel)
            self.subscribed = True
        except Exception as exc:  # Redis away: read the state every poll meanwhile
            log.warning("job %s: cannot subscribe to its result: %s", self.job_id, exc)
            self._drop()

    def next_state(self, timeout: float) -> dict[str, Any]:
        """The next state published within ``timeout`` seconds, else the stored one."""
        if not self.subscribed:
            self._subscribe()
        pubsub = getattr(self.local, "pubsub", None)
        if self.subscribed and pubsub is not None:
            deadline = time.monotonic() + timeout
            try:
                while (left := deadline - time.monotonic()) > 0:
                    message = pubsub.get_message(timeout=left)
                    # Other channels: what was left of an earlier job's subscription.
                    if message and message["channel"] == self.channel:
                        meta: dict[str, Any] = self.backend.decode_result(message["data"])
                        return meta
            except Exception as exc:
                log.warning("job %s: lost the subscription to its result: %s", self.job_id, exc)
                self._drop()
        stored: dict[str, Any] = self.backend.get_task_meta(self.task_id, cache=False)
        return stored

    def close(self) -> None:
        pubsub = getattr(self.local, "pubsub", None)
        if self.subscribed and pubsub is not None:
            try:
                pubsub.unsubscribe(self.channel)
            except Exception:
                self._drop()
        self.subscribed = False

    def _drop(self) -> None:
        pubsub = getattr(self.local, "pubsub", None)
        self.local.pubsub = None
        self.subscribed = False
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception as exc:
                log.debug("closing a broken subscription: %s", exc)


class Dispatcher:
    """``slots`` embedded workers in threads, each solving through Celery.

    An idle slot waits on a :class:`~skysolve.queue.notify.Doorbell` that a
    queued job rings (through Redis), and looks at the table every
    ``poll_interval`` anyway.  Each slot keeps its database connection
    between jobs (it is closed and opened again only after an error).
    """

    def __init__(
        self,
        *,
        slots: int | None = None,
        solver: SolveFunction | None = None,
        listen: bool = True,
    ) -> None:
        count = settings.SKYSOLVE_DISPATCH_SLOTS if slots is None else slots
        shared = solver or CelerySolver()
        self.base_id = f"{socket.gethostname()}:{os.getpid()}:dispatch"
        self.workers = [
            Worker(solver=shared, worker_id=f"{self.base_id}/{i}") for i in range(count)
        ]
        self.stop_requested = threading.Event()
        self.doorbell = Doorbell()
        self.listen = listen

    def run_forever(self, *, poll_interval: float | None = None) -> None:
        if poll_interval is None:
            poll_interval = float(settings.SKYSOLVE_DISPATCH_POLL_SECONDS)

        def stop(signum: int, frame: FrameType | None) -> None:
            self.stop_requested.set()
            self.doorbell.ring()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("dispatcher started with %d slots", len(self.workers))
        listener = QueuedListener(self.doorbell, self.stop_requested) if self.listen else None
        if listener is not None:
            listener.start()
        threads = [
            threading.Thread(target=self._slot, args=(w, poll_interval), name=w.worker_id)
            for w in self.workers
        ]
        heartbeat = Heartbeat(
            self.base_id,
            WorkerHeartbeat.DISPATCHER,
            concurrency=len(self.workers),
            also=mirror_celery_workers,
        )
        with heartbeat:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if listener is not None:
            listener.join()
        log.info("dispatcher stopped")

    def step(self, worker: Worker) -> bool:
        """One step of a slot: claim a job and run it.  False if there was none."""
        try:
            return worker.run_once()
        except (OperationalError, InterfaceError) as exc:
            log.warning("%s: database unavailable, waiting: %s", worker.worker_id, exc)
        except Exception:
            log.exception("%s: dispatch step failed", worker.worker_id)
        connection.close()  # the next step starts from a fresh connection
        return False

    def _slot(self, worker: Worker, poll_interval: float) -> None:
        worker.stop_requested = self.stop_requested
        try:
            while not self.stop_requested.is_set():
                rung = self.doorbell.rings
                if not self.step(worker):
                    self.doorbell.wait(rung, poll_interval)
        finally:
            connection.close()
