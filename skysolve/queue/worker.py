"""The embedded worker: claims queued jobs from the database and runs the solver.

A job's whole path is :meth:`Worker.run_job`: the input from
:func:`skysolve.submissions.preparation.prepare`, the solve function
(``SKYSOLVE_SOLVER``; a Celery task in the dispatcher's slots), the answer
recorded as soon as it is verified, then the files.  Every step is a method
tests call directly: :meth:`Worker.requeue_expired`,
:meth:`Worker.claim`, :meth:`Worker.heartbeat`, :meth:`Worker.run_job` and
:meth:`Worker.run_once`.  :meth:`Worker.run_forever` only loops over them and
stops between steps after SIGTERM/SIGINT.  Each change of a job's state is
one transition of :mod:`skysolve.submissions.transitions`; the worker decides
which, and when.

Kept whole: one class whose queue steps and job steps share the worker's id,
lease, clock and running job (the dispatcher runs several of them), and tests
drive each step directly; the state changes themselves live in transitions.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
)
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from skysolve.engine.results import SolveFunction, SolveResult
from skysolve.errors import (
    AbandonedError,
    SolveCancelledError,
    SolveError,
    SolveTimeoutError,
    StorageError,
    WorkerLostError,
)
from skysolve.queue import waiting, wakeup
from skysolve.queue.heartbeat import alive
from skysolve.queue.models import ServedOwner
from skysolve.submissions import transitions
from skysolve.submissions.jobfiles import attempt_dir
from skysolve.submissions.models import Job
from skysolve.submissions.preparation import Prepared, prepare
from skysolve.submissions.transitions import PREPARING

log = logging.getLogger(__name__)


def load_solver() -> SolveFunction:
    solver: SolveFunction = import_string(settings.SKYSOLVE_SOLVER)
    return solver


_T = TypeVar("_T")


@dataclass
class Running:
    """The job a worker is running and what its watchdog knows about it."""

    job_id: int
    deadline: datetime
    #: The job's time limit in seconds (``deadline`` is when it runs out).
    timeout: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False
    lost: bool = False
    #: Progress messages so far: the status page shows them as the log tail.
    lines: list[str] = field(default_factory=list)
    #: This attempt's directory became the job's files (see :func:`publish`).
    published: bool = False
    #: Cancelled because no client asked for it (SKYSOLVE_ABANDON_SECONDS).
    abandoned: bool = False
    #: This attempt's own directory (see :func:`attempt_dir`).
    out_dir: Path = field(default_factory=Path)
    #: The heartbeat thread renewing the lease, and what stops it.
    beater: threading.Thread | None = None
    stop_beating: threading.Event = field(default_factory=threading.Event)


class Worker:
    #: Seconds between two progress notes while an archive is read (one per
    #: member would be a database write per member).
    archive_progress_interval = 0.5

    def __init__(
        self,
        *,
        solver: SolveFunction | None = None,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = timezone.now,
        lease_seconds: float | None = None,
        job_timeout: float | None = None,
        max_attempts: int | None = None,
        heartbeat_thread: bool = True,
    ) -> None:
        self.solver = solver
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.clock = clock
        #: When this worker next marks every submitter with queued jobs (waiting.resync).
        self._resync_due = 0.0
        self.lease = timedelta(seconds=lease_seconds or settings.SKYSOLVE_LEASE_SECONDS)
        self.job_timeout = float(job_timeout or settings.SKYSOLVE_JOB_TIMEOUT)
        self.max_attempts = max_attempts or settings.SKYSOLVE_MAX_ATTEMPTS
        self.heartbeat_thread = heartbeat_thread
        self.current: Running | None = None
        self.stop_requested = threading.Event()

    # -- queue steps ----------------------------------------------------------

    def requeue_expired(self) -> int:
        """Queue again the jobs whose worker stopped renewing its lease.

        The job keeps its id; past ``max_attempts`` starts it fails instead.
        """
        now = self.clock()
        # A worker that died drawing the pictures of a success: they will not come.
        transitions.give_up_pictures(now)
        return self._requeue_jobs(
            Job.objects.filter(status=Job.RUNNING, lease_expires__lt=now).only(
                "id", "attempts", "worker_id"
            ),
            now,
        )

    def requeue_lost(self) -> int:
        """Queue again the running jobs whose worker is gone; leave live workers' jobs alone.

        For ``skysolve serve`` at start-up: separate ``skysolve worker``
        processes may be solving on the same database, so a job counts as lost
        only when its lease ran out, when its worker's heartbeat row is gone or
        stale (a worker stopped by SIGTERM removes its row), or when its worker
        ran on this host under a process id that no longer exists.  Waiting for
        the lease alone would also be right, but would hold a restarted
        installation's orphans for up to a lease.
        """
        now = self.clock()
        live = set(alive(now).values_list("worker_id", flat=True))
        lost = [
            job.id
            for job in Job.objects.filter(status=Job.RUNNING).only(
                "id", "worker_id", "lease_expires"
            )
            if job.lease_expires is None
            or job.lease_expires < now
            or _process_of(job.worker_id) not in live
            or not _may_be_running(job.worker_id)
        ]
        return self._requeue_jobs(
            Job.objects.filter(id__in=lost, status=Job.RUNNING).only("id", "attempts", "worker_id"),
            now,
        )

    def _requeue_jobs(self, running: QuerySet[Job], now: datetime) -> int:
        count = 0
        for job in running:
            if job.attempts >= self.max_attempts:
                changed = transitions.fail_worker_lost(
                    job.id, job.worker_id, attempts=job.attempts, now=now
                )
            else:
                changed = transitions.requeue(job.id, job.worker_id)
                if changed:
                    waiting.job_queued(Job, job.id)
            count += changed
        return count

    def claim(self) -> Job | None:
        """Take the next job, serving the submitter served longest ago first.

        The waiting submitters come in that order from one index (see
        :mod:`skysolve.queue.waiting`), so a claim reads a few rows however
        long the queue and however many submitters wait.
        """
        if time.monotonic() >= self._resync_due:
            self._resync_due = time.monotonic() + waiting.RESYNC_SECONDS
            waiting.resync()
        job = self._claim_waiting()
        if job is None and waiting.resync():
            job = self._claim_waiting()  # jobs queued without their owner marked
        return job

    def _claim_waiting(self) -> Job | None:
        for _round in range(5):
            owners = waiting.waiting_owners(20)
            if not owners:
                return None
            for key in owners:
                job = self._claim_of(key)
                if job is not None:
                    return job
                waiting.stop_waiting(key)
        return None

    def _claim_of(self, key: str) -> Job | None:
        """The oldest queued job of submitter ``key``, claimed; None when none is left."""
        candidates = Job.objects.filter(status=Job.QUEUED, owner_key=key).order_by(
            "queued_at", "id"
        )
        for job_id in candidates.values_list("id", flat=True)[:10]:
            if self._claim_row(job_id):
                ServedOwner.objects.filter(owner_key=key).update(last_served=self.clock())
                return Job.objects.select_related("user_image__submission").get(id=job_id)
        return None

    def _claim_row(self, job_id: int) -> bool:
        return transitions.claim(job_id, self.worker_id, now=self.clock(), lease=self.lease)

    def heartbeat(self, running: Running) -> None:
        """Renew the lease; stop the solve when cancelled, timed out or taken away."""
        now = self.clock()
        # After the answer is recorded the job is a success still drawing its pictures.
        if not transitions.renew(
            running.job_id, self.worker_id, now=now, lease=self.lease, answered=running.published
        ):
            running.lost = True
            running.cancel.set()
            return
        if not running.published:
            code = transitions.stop_requested(running.job_id, self.worker_id)
            if code is not None:
                running.abandoned = code == AbandonedError.code
                running.cancel.set()
        if now >= running.deadline:
            running.timed_out = True
            running.cancel.set()

    def cancel_abandoned(self) -> int:
        """Cancel queued and stop running jobs that no client asked about for a while.

        KStars never cancels: after its own timeout it uploads the next frame,
        so jobs nobody waits for would pile up in front of the live one.  A
        job counts as abandoned when neither it nor its submission was polled
        (or made) within ``SKYSOLVE_ABANDON_SECONDS``; 0 turns this off.
        """
        limit = settings.SKYSOLVE_ABANDON_SECONDS
        if not limit:
            return 0
        return transitions.cancel_abandoned(now=self.clock(), limit=limit)

    def run_once(self) -> bool:
        """One step: requeue lost jobs, claim one and run it.  True if a job ran."""
        self.requeue_expired()
        self.cancel_abandoned()
        job = self.claim()
        if job is None:
            return False
        self.run_job(job)
        return True

    def run_forever(self, *, poll_interval: float | None = None) -> None:
        self._install_signal_handlers()
        self.loop(poll_interval=poll_interval)

    def loop(self, *, poll_interval: float | None = None) -> None:
        """Run steps until ``stop_requested``; a failing step (database away) is retried."""
        log.info("worker %s started", self.worker_id)
        warm_up()
        # An idle worker looks for work this often: it bounds the wait of a
        # new job when the queue was empty (a claim query is cheap).
        if poll_interval is None:
            poll_interval = settings.SKYSOLVE_WORKER_POLL_SECONDS
        # A queued job wakes an idle worker at once; polling stays as the fallback.
        waker = wakeup.waker() if settings.SKYSOLVE_QUEUE == "embedded" else None
        announced = False
        try:
            while not self.stop_requested.is_set():
                close_old_connections()
                try:
                    ran = self.run_once()
                except (OperationalError, InterfaceError) as exc:
                    log.warning("worker %s: database unavailable, waiting: %s", self.worker_id, exc)
                    ran = False
                except Exception:
                    log.exception("worker step failed")
                    ran = False
                if ran:
                    continue
                if not announced:
                    announced = True
                    log.info(
                        "worker %s: waiting for jobs (%s, polling every %g s)",
                        self.worker_id, type(waker).__name__ if waker else "no wake-ups",
                        poll_interval,
                    )  # fmt: skip
                if waker is not None:
                    waker.wait(poll_interval, self.stop_requested)
                else:
                    self.stop_requested.wait(poll_interval)
        finally:
            if waker is not None:
                waker.close()
        log.info("worker %s stopped", self.worker_id)

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            # Finish the current job (its own timeout bounds the wait), then exit.
            self.stop_requested.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    # -- running one job --------------------------------------------------------

    def run_job(self, job: Job) -> None:
        """A claimed job's whole path: prepare its input, solve, record the answer, then the files.

        The solve runs under the heartbeat thread (:meth:`heartbeat` renews
        the lease and stops the solve when the job is cancelled, timed out or
        taken away).  A verified solution is recorded the moment the solver
        has it (:meth:`_record_answer`, called back from the solve); the
        pictures and other files follow (:meth:`_record_outcome`).  Whatever
        the input or the solve raises ends in :meth:`_failed`.
        """
        running = self._begin(job)
        if running is None:
            return
        try:
            try:
                prepared = self._prepare(job, running)  # 1. the input
                # 2. the solve; 3. its answer is recorded on the way, once verified
                result = self._solve(job, running, prepared)
            except Exception as exc:
                self._failed(job, running, exc)
                return
            self._record_outcome(job, running, result)  # 4. the files (or why none)
        finally:
            self._end(running)

    def _begin(self, job: Job) -> Running | None:
        """The job's attempt directory and its heartbeat; None when the directory cannot be made."""
        transitions.start_processing(job.submission.pk, now=self.clock())
        # Until the parameters are read, the queue's own limit bounds the preparation.
        running = Running(
            job.id,
            deadline=self.clock() + timedelta(seconds=self.job_timeout),
            timeout=self.job_timeout,
            out_dir=attempt_dir(job.id, job.attempts),
        )
        log.info(
            "job %s (submission %s): started by %s, attempt %d",
            job.id, job.submission.pk, self.worker_id, job.attempts,
        )  # fmt: skip
        try:
            # A fresh directory: a requeued job starts again from nothing, and
            # an earlier attempt still running somewhere keeps its own.
            running.out_dir.mkdir(parents=True)
        except OSError as exc:
            self._finish(job, Job.FAILURE, error=_storage_error(running.out_dir, exc))
            return None
        self.current = running
        if self.heartbeat_thread:
            running.beater = threading.Thread(
                target=self._beat, args=(running,), name="heartbeat", daemon=True
            )
            running.beater.start()
        return running

    def _end(self, running: Running) -> None:
        running.stop_beating.set()
        if running.beater is not None:
            running.beater.join()
        self.current = None
        if not running.published:  # lost, requeued or unrecorded: nobody reads it
            shutil.rmtree(running.out_dir, ignore_errors=True)

    def _prepare(self, job: Job, running: Running) -> Prepared:
        """Step 1, the input: fetched, expanded, star list, parameters and learned hints."""
        try:
            return prepare(
                job,
                worker_id=self.worker_id,
                cancel=running.cancel,
                progress=lambda message: self._progress(running, PREPARING, message),
                progress_interval=self.archive_progress_interval,
            )
        except WorkerLostError:
            running.lost = True
            raise

    def _solve(self, job: Job, running: Running, prepared: Prepared) -> SolveResult:
        """Step 2, the solve, which calls back step 3 (:meth:`_record_answer`) once verified."""
        # The solve gets its whole time, from now on (a URL or an archive
        # took what it took, under the queue's own limit).
        timeout = min(prepared.params.timeout, self.job_timeout)
        running.timeout = timeout
        running.deadline = self.clock() + timedelta(seconds=timeout)

        def answer(partial: SolveResult) -> None:
            if running.cancel.is_set():
                raise SolveCancelledError("the solve was cancelled")
            if not self._retrying(job, lambda: self._record_answer(job, partial, running.out_dir)):
                running.lost = True
                raise SolveCancelledError("the job was cancelled or taken away")

        solver = self.solver or load_solver()
        return solver(
            prepared.source,
            prepared.params.replace(timeout=timeout),
            running.out_dir,
            cancel=running.cancel,
            progress=lambda stage, message: self._progress(running, stage, message),
            verified=answer,
        )

    def _record_outcome(self, job: Job, running: Running, result: SolveResult) -> None:
        """Step 4: the files of a recorded answer, or the outcome of a solve that found none."""
        if running.lost:
            return
        out_dir = running.out_dir
        if running.published:
            self._retrying(job, lambda: self._record_files(job, result, out_dir, None))
        elif running.timed_out and not result.solved:
            error = _timeout(running.timeout)
            self._finish(job, Job.FAILURE, error=error, result=result, out_dir=out_dir)
        elif result.solved:
            self._finish(job, Job.SUCCESS, result=result, out_dir=out_dir)
        else:
            self._finish(job, Job.FAILURE, error=result.failure, result=result, out_dir=out_dir)

    def _failed(self, job: Job, running: Running, exc: Exception) -> None:
        """The one place where an input or a solve that raised ``exc`` ends (from its except)."""
        out_dir = running.out_dir
        if running.published:
            # The answer stands; only some pictures or files are missing.
            log.warning("job %s: after the answer: %s: %s", job.id, type(exc).__name__, exc)
            try:
                self._retrying(job, lambda: self._record_files(job, None, out_dir, exc))
            except (OperationalError, InterfaceError) as db_exc:
                log.warning("job %s: database unavailable during the solve: %s", job.id, db_exc)
            except Exception:
                log.exception("job %s (submission %s) crashed", job.id, job.submission.pk)
            return
        if isinstance(exc, OperationalError | InterfaceError):
            # Left running: when its lease runs out it is queued again, same id.
            log.warning("job %s: database unavailable during the solve: %s", job.id, exc)
            return
        if running.lost and isinstance(exc, SolveError | OSError):
            return  # the job is another worker's now
        if isinstance(exc, SolveCancelledError):
            if running.timed_out:
                self._finish(job, Job.FAILURE, error=_timeout(running.timeout), out_dir=out_dir)
            elif running.abandoned:
                abandoned = AbandonedError("nobody asked for this job any more: stopped")
                self._finish(job, Job.CANCELLED, error=abandoned, out_dir=out_dir)
            else:
                self._finish(job, Job.CANCELLED, error=exc, out_dir=out_dir)
        elif isinstance(exc, SolveError):
            if exc.retryable and job.attempts < self.max_attempts:
                self._requeue(job, exc)
            else:
                self._finish(job, Job.FAILURE, error=exc, out_dir=out_dir)
        elif isinstance(exc, OSError):
            # Disk full or unwritable data directory: fail clearly, keep serving.
            self._finish(job, Job.FAILURE, error=_storage_error(out_dir, exc))
        else:  # a bug in the engine must not kill the worker
            log.exception("job %s (submission %s) crashed", job.id, job.submission.pk)
            crash = SolveError(f"internal error: {type(exc).__name__}: {exc}")
            self._finish(
                job, Job.FAILURE, error=crash, log_text=traceback.format_exc(), out_dir=out_dir
            )

    def _beat(self, running: Running) -> None:
        interval = max(0.5, self.lease.total_seconds() / 3)
        try:
            while not running.stop_beating.wait(interval):
                try:
                    self.heartbeat(running)
                except Exception:
                    log.exception("heartbeat of job %s failed", running.job_id)
        finally:
            connection.close()

    def _progress(self, running: Running, stage: str, message: str = "") -> None:
        running.lines.append(f"{stage}: {message}" if message else stage)
        try:
            # The whole engine log replaces this when the job finishes.
            transitions.note_stage(running.job_id, self.worker_id, stage, running.lines)
        except (OperationalError, InterfaceError) as exc:
            # The stage is for display: a database away for a moment must not stop the solve.
            log.warning("job %s: cannot record the stage: %s", running.job_id, exc)
            connection.close()
        if running.cancel.is_set():
            raise SolveCancelledError("cancelled")

    def _requeue(self, job: Job, error: SolveError) -> None:
        log.info("job %s: queued again after %s: %s", job.id, error.code, error.message)
        transitions.requeue(job.id, self.worker_id, error=error)
        waiting.job_queued(Job, job.id)

    def _finish(self, job: Job, status: str, **kwargs: Any) -> None:
        """Record the outcome; while the database is away, wait for it (the result is in hand)."""
        try:
            self._retrying(job, lambda: self._finish_once(job, status, **kwargs))
        except OSError as exc:
            out_dir = kwargs.get("out_dir")
            if out_dir is None:
                raise
            # The files could not be published: record that, without them.
            error = _storage_error(out_dir, exc)
            self._retrying(job, lambda: self._finish_once(job, Job.FAILURE, error=error))

    def _retrying(self, job: Job, record: Callable[[], _T]) -> _T:
        """``record()``, waiting up to three leases for a database that is away."""
        give_up = time.monotonic() + 3 * self.lease.total_seconds()
        while True:
            try:
                return record()
            except (OperationalError, InterfaceError) as exc:
                if time.monotonic() > give_up:
                    raise
                log.warning("job %s: database unavailable, waiting to record it: %s", job.id, exc)
                connection.close()
                time.sleep(1.0)

    def _mark_published(self, job: Job) -> None:
        if self.current is not None and self.current.job_id == job.id:
            self.current.published = True

    def _record_answer(self, job: Job, partial: SolveResult, out_dir: Path) -> bool:
        """Step three: calibration, WCS and objects, visible at once (see ``transitions``).

        False when the job is no longer this worker's.
        """
        assert partial.calibration is not None
        mine = self.current is not None and self.current.job_id == job.id
        return transitions.record_answer(
            job,
            self.worker_id,
            now=self.clock(),
            lease=self.lease,
            result=partial.to_json(),
            calibration=partial.calibration.to_nova(),
            objects_in_field=partial.objects_in_field,
            out_dir=out_dir,
            log_lines=self.current.lines if mine and self.current is not None else None,
            on_published=lambda: self._mark_published(job),
        )

    def _record_files(
        self, job: Job, result: SolveResult | None, out_dir: Path, error: Exception | None
    ) -> None:
        """Step four of a success: the whole result with every file, or why some are missing."""
        transitions.record_files(
            job.id,
            self.worker_id,
            result=None if result is None else result.to_json(),
            log_text="" if result is None else (result.log or _read_log(result)),
            error=error,
        )

    def _finish_once(
        self,
        job: Job,
        status: str,
        *,
        error: SolveError | None = None,
        result: SolveResult | None = None,
        log_text: str = "",
        out_dir: Path | None = None,
    ) -> None:
        solved = result is not None and result.solved
        calibration = None
        if solved and result is not None and result.calibration is not None:
            calibration = result.calibration.to_nova()
        transitions.finish(
            job,
            self.worker_id,
            status,
            now=self.clock(),
            error=error,
            result=None if result is None else result.to_json(),
            calibration=calibration,
            objects_in_field=result.objects_in_field if solved and result is not None else (),
            log_text=(result.log or _read_log(result)) if result is not None else log_text or None,
            out_dir=out_dir,
            on_published=lambda: self._mark_published(job),
        )


def _process_of(worker_id: str) -> str:
    """The heartbeat id of the process holding a job (a dispatcher slot is ``<id>/<n>``)."""
    return worker_id.split("/", 1)[0]


def _may_be_running(worker_id: str) -> bool:
    """False only when the worker ran on this host and its process id is gone."""
    host, _, rest = worker_id.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _storage_error(out_dir: Path, exc: OSError) -> StorageError:
    log.error("cannot write the results under %s: %s", out_dir, exc)
    return StorageError(f"the results cannot be stored on the server: {exc.strerror or exc}")


def _timeout(seconds: float) -> SolveTimeoutError:
    return SolveTimeoutError(f"the solve took longer than {seconds:g} seconds and was stopped")


def _read_log(result: SolveResult) -> str:
    path = result.files.get("log")
    if path is None:
        return ""
    try:
        return Path(path).read_text(errors="replace")[-1_000_000:]
    except OSError:
        return ""


def run_embedded_worker() -> None:
    """One embedded worker until SIGTERM, with its heartbeat (Django is set up)."""
    from skysolve.queue.heartbeat import Heartbeat
    from skysolve.queue.models import WorkerHeartbeat

    worker = Worker()
    with Heartbeat(worker.worker_id, WorkerHeartbeat.EMBEDDED):
        worker.run_forever()


def warm_up() -> None:
    """Load the engine's catalogues before the first job, not during it.

    The OpenNGC table and the fast-path database take up to a second to load
    in a new process; a job should not wait for that.  Failures are left for
    the job to report.
    """
    try:
        from skysolve.engine.pipeline import EngineConfig
        from skysolve.engine.products.named_objects import load_catalogues
        from skysolve.engine.solving.fastpath import (
            OUTDATED_WARNING,
            load_database,
            outdated_stars,
        )

        load_catalogues()
        config = EngineConfig.from_env()
        if config.fastpath_db is not None:
            load_database(config.fastpath_db)
            if outdated_stars(config.fastpath_db):
                log.warning(OUTDATED_WARNING, config.fastpath_db)
        else:
            from skysolve.engine.solving.fastpath import default_db_path

            # Not an error (astrometry.net solves everything), but every job is
            # slower: say so where an operator looks.
            log.warning(
                "no fast-path database at %s: every image goes to astrometry.net; "
                "build it with `skysolve db build` (make setup)",
                default_db_path(),
            )
    except Exception:  # a broken catalogue shows up in the first job's error
        log.warning("warming up the engine failed", exc_info=True)
