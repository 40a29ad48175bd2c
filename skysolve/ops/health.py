"""Whether the service is taking jobs: the worker processes alive, against what the mode needs."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from skysolve.queue.heartbeat import alive_by_kind
from skysolve.queue.models import WorkerHeartbeat

log = logging.getLogger(__name__)
_warned: set[str] = set()


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


def fastpath_status() -> str:
    """ "ok" when this process finds the fast-path database, "outdated" when an older
    skysolve made its stars, else "missing" (each logged once).

    A stat of two files and a read of the star file's stamp (under a
    millisecond): cheap enough for every /health request, and a database
    removed, never built or rebuilt shows up without a restart.
    """
    from skysolve.engine.solving.fastpath import OUTDATED_WARNING, status

    report = status()
    if report["fastpath"] != "ok" and report["path"] not in _warned:
        # Once per process and path: load balancers poll /health every few seconds.
        _warned.add(report["path"])
        if report["fastpath"] == "outdated":
            log.warning(OUTDATED_WARNING, report["path"])
        else:
            log.warning(
                "no fast-path database at %s: every image goes to astrometry.net; "
                "build it with `skysolve db build`",
                report["path"],
            )
    return report["fastpath"]
