"""``skysolve worker``: solve jobs on this machine.

Embedded mode: a worker polling the database (it needs DATABASE_URL and the
data directory, so it belongs on the web host or beside shared storage).
Celery mode: a Celery worker; it needs only SKYSOLVE_BROKER_URL (and the
result backend), the engine and its index files -- requests and results
travel through the broker, not through a shared filesystem.
``--dispatcher`` runs the web host's dispatcher instead (``skysolve serve``
starts one unless given ``--workers 0``).

Every kind reports that it is alive, idle or busy, from a thread started
here (see :mod:`skysolve.queue.heartbeat`).
"""

from __future__ import annotations

import argparse
import os
import socket
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
        from skysolve.queue.worker import run_embedded_worker

        run_embedded_worker()
        return 0
    if args.dispatcher:
        run_dispatcher()
        return 0
    concurrency = args.concurrency or settings.SKYSOLVE_WORKERS or os.cpu_count() or 1
    run_celery_worker(concurrency, args.loglevel)
    return 0


def run_dispatcher() -> None:
    """The Celery dispatcher until SIGTERM; it beats for itself and the Celery workers."""
    from skysolve.queue.dispatch import Dispatcher

    Dispatcher().run_forever()


def run_celery_worker(concurrency: int, loglevel: str) -> None:
    from celery.signals import worker_ready, worker_shutdown
    from django.conf import settings

    from skysolve.queue.celeryapp import app
    from skysolve.queue.heartbeat import CeleryBeacon
    from skysolve.queue.worker import warm_up

    hostname = f"skysolve-{os.getpid()}@{socket.gethostname()}"
    # Loaded before the pool forks: every solve process has the catalogues
    # from its first job on, and shares their pages with the others.
    warm_up()
    beacon = CeleryBeacon(hostname, concurrency=concurrency)

    # Alive only once connected to the broker and taking tasks.
    def ready(**kwargs: Any) -> None:
        beacon.start()

    def shutdown(**kwargs: Any) -> None:
        beacon.stop()

    worker_ready.connect(ready, weak=False)
    worker_shutdown.connect(shutdown, weak=False)
    app.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            f"--hostname={hostname}",
            f"--queues={settings.SKYSOLVE_CELERY_QUEUE}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
