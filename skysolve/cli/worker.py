"""``skysolve worker``: solve jobs on this machine.

Embedded mode: a worker polling the database (it needs DATABASE_URL and the
data directory, so it belongs on the web host or beside shared storage).
Celery mode: a Celery worker; it needs only SKYSOLVE_BROKER_URL (and the
result backend), the engine and its index files -- requests and results
travel through the broker, not through a shared filesystem.
``--dispatcher`` runs the web host's dispatcher instead (``skysolve serve``
starts one unless given ``--workers 0``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("worker", help="run solve workers on this machine")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="solve processes (celery mode; default SKYSOLVE_WORKERS)",
    )
    parser.add_argument(
        "--dispatcher",
        action="store_true",
        help="celery mode: run the dispatcher that sends jobs to the workers",
    )
    parser.add_argument("--loglevel", default=os.environ.get("LOG_LEVEL", "INFO"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from skysolve.cli.manage import setup_django

    setup_django()
    from django.conf import settings

    if settings.SKYSOLVE_QUEUE != "celery":
        if args.dispatcher:
            print("--dispatcher needs SKYSOLVE_QUEUE=celery")
            return 2
        from skysolve.queue.worker import Worker

        Worker().run_forever()
        return 0
    if args.dispatcher:
        from skysolve.queue.dispatch import Dispatcher

        Dispatcher().run_forever()
        return 0
    from skysolve.queue.celeryapp import app

    concurrency = args.concurrency or settings.SKYSOLVE_WORKERS or os.cpu_count() or 1
    app.worker_main(
        [
            "worker",
            f"--loglevel={args.loglevel}",
            f"--concurrency={concurrency}",
            f"--hostname=skysolve-{os.getpid()}@%h",
            f"--queues={settings.SKYSOLVE_CELERY_QUEUE}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0
