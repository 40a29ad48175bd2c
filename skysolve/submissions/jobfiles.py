"""Where a job's files live: one directory per attempt, ``jobs/<id>`` a link to the recorded one.

The layout belongs to the data model, not to whoever writes the files: the
worker writes an attempt's files and publishes them (:func:`publish`), the
result-file URLs and the status pages read them (:func:`job_dir`).
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from django.conf import settings

#: Under the jobs directory: one directory per attempt, ``<job>.<attempt>.<random>``.
ATTEMPTS = ".attempts"


def job_dir(job_id: int) -> Path:
    """Where a job's published files are: a link to the attempt that recorded its result."""
    return Path(settings.SKYSOLVE_JOB_DIR) / str(int(job_id))


def attempt_dir(job_id: int, attempt: int) -> Path:
    """A directory of this attempt's own, which no other attempt writes into or removes."""
    name = f"{int(job_id)}.{int(attempt)}.{secrets.token_hex(4)}"
    return Path(settings.SKYSOLVE_JOB_DIR) / ATTEMPTS / name


def job_id_of(out_dir: Path) -> int:
    """The job an output directory belongs to (``7`` and ``.attempts/7.2.ab12cd34``)."""
    head = out_dir.name.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def publish(job_id: int, attempt: Path) -> None:
    """Make ``attempt`` the job's files in one rename; remove the job's other attempts.

    Called only by the attempt whose result was just recorded (inside that
    conditional update's transaction), so every other attempt of the job is
    stale: a worker that lost its lease never publishes, and the directories
    it writes into are its own.  A reader sees the old files or the new ones,
    never a mixture; one streaming an old file keeps its open file.
    """
    link = job_dir(job_id)
    fresh = link.with_name(f".{link.name}.{secrets.token_hex(4)}.link")
    # Relative, so the data directory can move.
    os.symlink(os.path.relpath(attempt, link.parent), fresh)
    try:
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)  # a job's files from before attempts had directories
        os.replace(fresh, link)
    except OSError:
        fresh.unlink(missing_ok=True)
        raise
    for other in attempt.parent.glob(f"{int(job_id)}.*"):
        if other.name != attempt.name:
            shutil.rmtree(other, ignore_errors=True)
