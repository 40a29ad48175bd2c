"""The fast-path database's tetra3rs file, read before the engine is imported.

A blind ``skysolve solve --no-hints`` knows from its arguments alone that its
first search loads the whole fast-path database, and that read (0.2 s for the
default 187 MB, in tetra3rs, which lets other threads run) is what a new
process's fast-path answer waits for.  Started here, in a thread, before numpy,
sep and the engine's modules are imported (this module imports none of them),
it overlaps those imports instead of following them;
:func:`~skysolve.engine.solving.fastpath.database.load_database` then
:func:`take`\\ s the object read rather than reading the file again.  A read
that failed leaves nothing to take: the load reads the file itself and reports
what is wrong as it always does.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any


class _Read:
    """One file's read in its thread: the version it was started on, and the object."""

    def __init__(self, path: Path, version: tuple[int, int]) -> None:
        self.version = version
        self.database: Any = None
        self.thread = threading.Thread(
            target=self._run, args=(path,), name="fastpath-preload", daemon=True
        )

    def _run(self, path: Path) -> None:
        try:
            import tetra3rs

            self.database = tetra3rs.SolverDatabase.load_from_file(str(path))
        except Exception:
            self.database = None


_reads: dict[str, _Read] = {}
_lock = threading.Lock()


def file_version(path: Path) -> tuple[int, int]:
    """What tells one version of a file from another: its mtime and size."""
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


def start(path: Path) -> bool:
    """Start reading the tetra3rs database ``path`` in a thread; whether one was started
    (not when the file is missing or a read of it was started already)."""
    try:
        key, version = str(Path(path).resolve()), file_version(path)
    except OSError:
        return False
    with _lock:
        if key in _reads:
            return False
        read = _reads[key] = _Read(Path(path), version)
    read.thread.start()
    return True


def take(path: Path, version: tuple[int, int]) -> Any:
    """The tetra3rs database read from ``path`` by :func:`start`, waiting for the
    read to end; None when none was started, it failed, or the file has changed
    since (``version``, from :func:`file_version`).  Taken once: the caller keeps it.
    """
    with _lock:
        read = _reads.pop(str(Path(path).resolve()), None)
    if read is None:
        return None
    read.thread.join()
    return read.database if read.version == version else None
