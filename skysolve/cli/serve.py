"""``skysolve serve``: the web server (gunicorn) and embedded workers of one installation."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the web service and its solve workers")
    parser.add_argument("--host", default=os.environ.get("SKYSOLVE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SKYSOLVE_PORT", "8000")))
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="solve workers (default SKYSOLVE_WORKERS); celery mode: 0 = no dispatcher",
    )
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=8)
    parser.set_defaults(func=run)


def ensure_secret_key(data_dir: Path) -> None:
    """Give the installation a persistent SECRET_KEY unless one is configured."""
    if os.environ.get("SECRET_KEY") or os.environ.get("SECRET_KEY_FILE"):
        return
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))


def run(args: argparse.Namespace) -> int:
    data_dir = Path(os.environ.get("SKYSOLVE_DATA_DIR", "var")).resolve()
    ensure_secret_key(data_dir)
    from skysolve.cli.manage import setup_django

    setup_django()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from skysolve.queue.worker import Worker

    call_command("check")
    call_command("migrate", interactive=False, verbosity=1)
    call_command("collectstatic", interactive=False, verbosity=0)
    # Jobs of the previous `serve`'s workers are queued again at once; jobs that
    # separate `skysolve worker` processes are solving stay theirs.
    Worker().requeue_lost()
    connections.close_all()  # gunicorn forks; children must not share a connection

    n_workers = settings.SKYSOLVE_WORKERS if args.workers is None else args.workers
    if settings.SKYSOLVE_QUEUE == "celery" and n_workers:
        n_workers = 1  # the dispatcher; solves run in `skysolve worker` processes
    # Embedded workers solve at a lower priority; the dispatcher only waits.
    nice = settings.SKYSOLVE_WORKER_NICE if settings.SKYSOLVE_QUEUE != "celery" else 0
    workers = [
        subprocess.Popen([sys.executable, "-m", "skysolve.queue"], preexec_fn=_niced(nice))
        for _ in range(n_workers)
    ]
    url = f"http://{args.host}:{args.port}/"
    print(f"skysolve is serving {url} (data in {settings.DATA_DIR}, {n_workers} solve workers)")
    print("Get an API key with:  skysolve apikey create USERNAME")
    try:
        _run_gunicorn(args)
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            try:
                process.wait(timeout=settings.SKYSOLVE_JOB_TIMEOUT + 10)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


def _niced(increment: int) -> Callable[[], None] | None:
    """What a child runs before exec to lower its priority by ``increment``."""
    if increment <= 0:
        return None

    def lower() -> None:
        os.nice(increment)

    return lower


def _run_gunicorn(args: argparse.Namespace) -> None:
    from gunicorn.app.base import BaseApplication

    from skysolve.web.wsgi import application

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.web_processes)
            self.cfg.set("threads", args.web_threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 300)  # large uploads on slow links
            self.cfg.set("accesslog", "-")

        def load(self) -> Any:
            return application

    Server().run()
