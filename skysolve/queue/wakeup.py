"""Wake-ups in the embedded mode: a queued job wakes an idle worker at once.

An idle embedded worker used to find a new job only at its next poll
(``SKYSOLVE_WORKER_POLL_SECONDS``), so a job submitted to an idle
installation waited half an interval on average.  Now the web process, once
the job is committed, rings (:func:`job_queued`) and idle workers wait on a
:class:`Waker` that returns as soon as it rings:

* on PostgreSQL through ``NOTIFY skysolve_queued`` / ``LISTEN`` on a
  connection of the worker's own (works across machines too);
* on SQLite, whose users share one machine and data directory, through a
  named pipe ``<data dir>/wake/queued.fifo``: the web process writes a byte
  without blocking, every idle worker's ``select`` sees it.

A ring is only a hint: a lost one (no worker listening, a full pipe, the
database reconnecting) costs at most one poll interval, since workers still
poll as before, and a woken worker that finds nothing waits again.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

#: The PostgreSQL notification channel (channels are per database).
CHANNEL = "skysolve_queued"
#: Longest single wait, so a stop request is seen this soon even without a ring.
STOP_CHECK_SECONDS = 0.5


def fifo_path() -> Path:
    return Path(settings.DATA_DIR) / "wake" / "queued.fifo"


def job_queued(job_id: int) -> None:
    """Wake the idle embedded workers; never fails the caller (they poll anyway)."""
    try:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(job_id)])
        else:
            _ring_fifo(fifo_path())
    except Exception as exc:  # a hint only: the workers' polling covers for it
        log.warning("cannot wake the workers for job %s (they will poll): %s", job_id, exc)


def _ring_fifo(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return  # no worker has started on this data directory yet
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no worker holds it open
            return
        raise
    try:
        os.write(fd, b"!")
    except BlockingIOError:
        pass  # a full pipe: plenty of rings are waiting to be read already
    finally:
        os.close(fd)


class Waker(Protocol):
    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """Wait up to ``timeout`` s for a ring (or ``stop``); True if rung."""

    def close(self) -> None: ...


class FifoWaker:
    """Waits on the data directory's named pipe (SQLite installations)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or fifo_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkfifo(self.path, 0o600)
        except FileExistsError:
            if not stat.S_ISFIFO(self.path.stat().st_mode):
                raise
        # Read and write: with a writer of our own the pipe never reads as
        # closed (which would make select return at once, for ever).
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        give_up = time.monotonic() + timeout
        while not stop.is_set():
            left = give_up - time.monotonic()
            if left <= 0:
                return False
            readable, _, _ = select.select([self.fd], [], [], min(left, STOP_CHECK_SECONDS))
            if readable:
                try:
                    os.read(self.fd, 4096)  # every ring so far
                except BlockingIOError:
                    pass  # another worker read it first; it woke us all the same
                return True
        return False

    def close(self) -> None:
        os.close(self.fd)


class PostgresWaker:
    """LISTENs on a connection of its own (Django's may be closed between steps)."""

    def __init__(self) -> None:
        self.conn: Any = None

    def _connect(self) -> Any:
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        conn = psycopg.connect(**params, autocommit=True)
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        give_up = time.monotonic() + timeout
        while not stop.is_set():
            left = give_up - time.monotonic()
            if left <= 0:
                return False
            try:
                if self.conn is None:
                    self.conn = self._connect()
                for _ in self.conn.notifies(timeout=min(left, STOP_CHECK_SECONDS), stop_after=1):
                    return True
            except Exception as exc:  # the database away: poll meanwhile
                log.warning("cannot listen for queued jobs (polling meanwhile): %s", exc)
                self.close()
                stop.wait(left)
                return False
        return False

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception as exc:
                log.debug("closing the LISTEN connection: %s", exc)
            self.conn = None


def waker() -> Waker | None:
    """The waker for this installation's database, or None (then only polling)."""
    try:
        if connection.vendor == "postgresql":
            return PostgresWaker()
        return FifoWaker()
    except OSError as exc:
        log.warning("no wake-ups for queued jobs (polling instead): %s", exc)
        return None
