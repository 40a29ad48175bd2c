"""Whether the service is taking jobs: the worker processes alive, against what the mode needs."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from skysolve.queue.heartbeat import alive_by_kind
from skysolve.queue.models import WorkerHeartbeat


def needed_kinds() -> list[str]:
    """The kinds of worker process that must be alive for jobs to be solved."""
    if settings.SKYSOLVE_QUEUE == "celery":
        return [WorkerHeartbeat.DISPATCHER, WorkerHeartbeat.CELERY]
    return [WorkerHeartbeat.EMBEDDED]


def worker_report() -> dict[str, Any]:
    """``status`` "ok" or "degraded" (a needed kind has no live process), with the counts.

    Reads the database; its errors reach the caller.
    """
    by_kind = alive_by_kind()
    missing = [kind for kind in needed_kinds() if by_kind[kind][0] == 0]
    return {
        "status": "degraded" if missing else "ok",
        "alive": {kind: processes for kind, (processes, _) in by_kind.items()},
        "missing": missing,
    }
