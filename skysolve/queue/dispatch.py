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
from django.db import connection

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveResult, SourceList
from skysolve.errors import SolveCancelledError, SolverFailedError
from skysolve.queue.transfer import error_from_json, pack_request, unpack_result
from skysolve.queue.worker import SolveFunction, Worker

log = logging.getLogger(__name__)


class CelerySolver:
    """A solve function that runs the solve on a Celery worker and waits for it."""

    def __init__(
        self,
        app: Celery | None = None,
        *,
        max_file_bytes: int | None = None,
        resend_after: float | None = None,
        poll_interval: float = 0.05,
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

    def __call__(
        self,
        source: Path | SourceList,
        params: SolveParameters,
        out_dir: Path,
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[str, str], None] | None = None,
    ) -> SolveResult:
        from skysolve.queue.celeryapp import TASK_NAME

        # The worker names the output directory after the job (see worker.job_dir).
        job_id = int(out_dir.name) if out_dir.name.isdigit() else 0
        request = pack_request(job_id, source, params, max_file_bytes=self.max_file_bytes)
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

        self._until_sent(send, stop, job_id)
        log.info("job %s: sent as task %s", job_id, task_id)
        last_change = time.monotonic()
        last_seen: Any = None
        stage = ""
        while True:
            if stop.is_set():
                self._revoke(task_id)
                raise SolveCancelledError("cancelled")
            try:
                result = self.app.AsyncResult(task_id)
                state = result.state
                info = result.info
            except Exception as exc:  # the backend restarting: keep waiting
                log.warning("job %s: cannot read task %s: %s", job_id, task_id, exc)
                state, info = "UNKNOWN", None
            if state == "SUCCESS":
                reply: dict[str, Any] = info
                self._retire(task_id)
                break
            if state == "FAILURE":
                self._retire(task_id)
                raise SolverFailedError(f"the Celery task failed: {info}")
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
                    "job %s: task %s is stuck in %s, sending it again", job_id, task_id, state
                )
                self._until_sent(send, stop, job_id)
                last_change = time.monotonic()
            stop.wait(self.poll_interval)
        if "error" in reply:
            raise error_from_json(reply["error"])
        return unpack_result(reply, out_dir)

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


class Dispatcher:
    """``slots`` embedded workers in threads, each solving through Celery."""

    def __init__(self, *, slots: int | None = None, solver: SolveFunction | None = None) -> None:
        count = settings.SKYSOLVE_DISPATCH_SLOTS if slots is None else slots
        shared = solver or CelerySolver()
        base = f"{socket.gethostname()}:{os.getpid()}:dispatch"
        self.workers = [Worker(solver=shared, worker_id=f"{base}/{i}") for i in range(count)]
        self.stop_requested = threading.Event()

    def run_forever(self, *, poll_interval: float = 0.5) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.stop_requested.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("dispatcher started with %d slots", len(self.workers))
        threads = [
            threading.Thread(target=self._slot, args=(w, poll_interval), name=w.worker_id)
            for w in self.workers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        log.info("dispatcher stopped")

    def _slot(self, worker: Worker, poll_interval: float) -> None:
        worker.stop_requested = self.stop_requested
        try:
            worker.loop(poll_interval=poll_interval)
        finally:
            connection.close()
