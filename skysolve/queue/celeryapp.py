"""The Celery application and its one task: solve a packed request, return a packed reply.

The task touches neither the database nor the data directory: a worker
machine needs the engine, its index files and the broker, nothing else (see
:mod:`skysolve.queue.transfer`).  The web host's dispatcher
(:mod:`skysolve.queue.dispatch`) claims jobs, sends tasks and records results,
so the ``Job`` row stays the one source of truth.

Delivery: ``acks_late`` with ``reject_on_worker_lost``, so a worker killed in
the middle of a solve leaves its message to be delivered again with the same
task id (same job).  While solving, a thread stores a ``PROGRESS`` state with
a counter that the dispatcher watches; when it stops moving the dispatcher
sends the request again under the same task id.  A delivery whose task id
already has a stored result does nothing.  The task stores its reply itself
(``ignore_result``, errors still stored) as soon as the solve is packed.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from django.conf import settings

from skysolve.engine.results import SolveResult
from skysolve.errors import SolveError, error_to_dict
from skysolve.queue.transfer import pack_result, unpack_request

log = logging.getLogger(__name__)

TASK_NAME = "skysolve.solve"
PROGRESS = "PROGRESS"


def make_app() -> Celery:
    app = Celery("skysolve")
    app.conf.update(
        broker_url=settings.SKYSOLVE_BROKER_URL,
        result_backend=settings.SKYSOLVE_RESULT_BACKEND,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # No STARTED state: the task's first PROGRESS (stored as it starts)
        # says the same, and each stored state is a round trip to Redis.
        task_track_started=False,
        # One message at a time per process: a busy worker must not hoard
        # jobs another worker could start now.
        worker_prefetch_multiplier=1,
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # Redis re-delivers an unacknowledged message after this long; it must
        # exceed the longest solve, or a running job would be delivered twice.
        broker_transport_options={"visibility_timeout": settings.SKYSOLVE_JOB_TIMEOUT + 300},
        result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
        # A result finished while Redis restarts is stored once it is back,
        # rather than lost (the dispatcher would otherwise solve it again).
        result_backend_always_retry=True,
        result_backend_max_retries=30,
        # On a broker hiccup a running solve carries on and reports its result;
        # cancelling it would only waste the work done (Celery 6 flips this).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        task_default_queue=settings.SKYSOLVE_CELERY_QUEUE,
    )
    return app


app = make_app()


@worker_process_init.connect
def _fresh_process(**kwargs: Any) -> None:
    # Prefork children must not share the parent's open connections.
    from django.db import connections

    connections.close_all()


class Beat:
    """Stores PROGRESS with a counter every ``interval`` seconds while a solve runs."""

    def __init__(self, task: Task, interval: float) -> None:
        self.task = task
        self.task_id = str(task.request.id)
        self.interval = interval
        self.stage = "preparing"
        self.counter = itertools.count(1)
        self.host = f"{socket.gethostname()}:{os.getpid()}"
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="beat", daemon=True)

    def __enter__(self) -> Beat:
        # The first PROGRESS is stored by the thread: the solve need not wait for it.
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def progress(self, stage: str, message: str) -> None:
        self.stage = stage

    def verified(self, partial: SolveResult) -> None:
        """Store the answer at once (one PROGRESS state), before the pictures are drawn."""
        self.store(verified=pack_result(partial))

    def store(self, **extra: Any) -> None:
        meta = {"beat": next(self.counter), "stage": self.stage, "worker": self.host, **extra}
        try:
            self.task.backend.store_result(self.task_id, meta, PROGRESS)
        except Exception as exc:  # the backend restarting must not stop the solve
            log.warning("task %s: cannot store progress: %s", self.task_id, exc)

    def _run(self) -> None:
        self.store()
        while not self.stopped.wait(self.interval):
            self.store()


@app.task(
    name=TASK_NAME,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    store_errors_even_if_ignored=True,
)
def solve_task(self: Task, request: dict[str, Any]) -> None:
    """Solve one packed request; store the packed reply (or the error) as the task's result.

    The task stores its result itself rather than returning it, so that the
    dispatcher has it before the temporary files are removed.
    """
    job_id = request.get("job_id")
    if self.AsyncResult(self.request.id).state == "SUCCESS":
        # A second delivery of a finished solve (redelivery or a re-send).
        log.info("job %s: task %s already has a result, skipping", job_id, self.request.id)
        return
    log.info("job %s: solving (task %s)", job_id, self.request.id)
    interval = max(0.5, settings.SKYSOLVE_CELERY_RESEND_SECONDS / 4)
    work = Path(tempfile.mkdtemp(prefix=f"skysolve-job{job_id}-"))
    try:
        with Beat(self, interval) as beat:
            reply = _solve(request, work, beat, job_id)
        # After the beats stopped (a late PROGRESS must not overwrite it),
        # before the clean-up (the dispatcher need not wait for that).
        self.backend.store_result(self.request.id, reply, "SUCCESS")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _solve(request: dict[str, Any], work: Path, beat: Beat, job_id: Any) -> dict[str, Any]:
    """The packed reply of one solve in ``work``, or the error it ended with."""
    from skysolve.queue.worker import load_solver

    try:
        source, params = unpack_request(request, work)
        out_dir = work / "out"
        out_dir.mkdir()
        result = load_solver()(
            source, params, out_dir, progress=beat.progress, verified=beat.verified
        )
        reply = pack_result(result)
    except SolveError as exc:
        log.info("job %s: %s: %s", job_id, exc.code, exc.message)
        return {"format": request.get("format"), "error": error_to_dict(exc)}
    except Exception as exc:  # an engine bug: report it, keep the worker
        log.exception("job %s crashed", job_id)
        message = f"internal error: {type(exc).__name__}: {exc}"
        return {"format": request.get("format"), "error": {"code": "internal", "message": message}}
    log.info("job %s: %s", job_id, "solved" if result.solved else "not solved")
    return reply
