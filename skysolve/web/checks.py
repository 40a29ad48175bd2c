"""System checks for configuration, run at start-up (stable ids skysolve.E0xx / W0xx)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from skysolve.errors import SolveError


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from skysolve.submissions.fetch import parse_networks
    from skysolve.web.settings import INSECURE_SECRET_KEY

    messages: list[CheckMessage] = []
    if settings.SKYSOLVE_PRIVATE_RESULTS not in ("open", "strict"):
        messages.append(
            Error(
                f"SKYSOLVE_PRIVATE_RESULTS is {settings.SKYSOLVE_PRIVATE_RESULTS!r}",
                hint='Use "open" (nova: anyone with the id reads results) or "strict".',
                id="skysolve.E001",
            )
        )
    data_dir = Path(settings.DATA_DIR)
    parent = data_dir if data_dir.exists() else data_dir.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        messages.append(
            Error(
                f"the data directory {data_dir} cannot be written",
                hint="Set SKYSOLVE_DATA_DIR to a writable directory.",
                id="skysolve.E002",
            )
        )
    if settings.SKYSOLVE_JOB_TIMEOUT <= 0:
        messages.append(Error("SKYSOLVE_JOB_TIMEOUT must be positive", id="skysolve.E003"))
    if settings.SKYSOLVE_ABANDON_SECONDS < 0:
        messages.append(
            Error("SKYSOLVE_ABANDON_SECONDS must be 0 (off) or positive", id="skysolve.E031")
        )
    try:
        parse_networks(settings.SKYSOLVE_URL_FETCH_ALLOW)
    except ValueError as exc:
        messages.append(
            Error(
                f"SKYSOLVE_URL_FETCH_ALLOW is not a list of networks: {exc}",
                hint="Use comma-separated CIDR networks, e.g. 192.168.1.0/24,10.0.0.5",
                id="skysolve.E004",
            )
        )
    if settings.SKYSOLVE_QUEUE not in ("embedded", "celery"):
        messages.append(
            Error(
                f"SKYSOLVE_QUEUE {settings.SKYSOLVE_QUEUE!r} is not supported",
                hint='Use "embedded" or "celery".',
                id="skysolve.E005",
            )
        )
    if settings.SKYSOLVE_QUEUE == "celery":
        messages.extend(_celery_messages())
    if settings.SKYSOLVE_LEASE_SECONDS < 5 or settings.SKYSOLVE_MAX_ATTEMPTS < 1:
        messages.append(
            Error(
                "SKYSOLVE_LEASE_SECONDS must be at least 5 and SKYSOLVE_MAX_ATTEMPTS at least 1",
                id="skysolve.E006",
            )
        )
    if settings.SKYSOLVE_HEARTBEAT_SECONDS <= 0 or settings.SKYSOLVE_DISPATCH_POLL_SECONDS <= 0:
        messages.append(
            Error(
                "SKYSOLVE_HEARTBEAT_SECONDS and SKYSOLVE_DISPATCH_POLL_SECONDS must be positive",
                id="skysolve.E011",
            )
        )
    if settings.SKYSOLVE_WORKERS < 0:
        messages.append(Error("SKYSOLVE_WORKERS must not be negative", id="skysolve.E007"))
    if settings.SKYSOLVE_ARCHIVE_MAX_MEMBERS < 1 or settings.SKYSOLVE_ARCHIVE_MAX_BYTES < 1:
        messages.append(
            Error(
                "SKYSOLVE_ARCHIVE_MAX_MEMBERS and SKYSOLVE_ARCHIVE_MAX_MB must be at least 1",
                id="skysolve.E030",
            )
        )
    if (
        settings.SKYSOLVE_RATE_LIMIT_USER_PER_HOUR < 0
        or settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR < 0
        or settings.SKYSOLVE_ID_MISSES_PER_HOUR < 0
        or settings.SKYSOLVE_RATE_LIMIT_ANONYMOUS_PER_HOUR < 0
        or settings.SKYSOLVE_MAX_UPLOAD_BYTES <= 0
    ):
        messages.append(
            Error(
                "SKYSOLVE_RATE_LIMIT_USER_PER_HOUR, SKYSOLVE_RATE_LIMIT_IP_PER_HOUR, "
                "SKYSOLVE_RATE_LIMIT_ANONYMOUS_PER_HOUR and SKYSOLVE_ID_MISSES_PER_HOUR must "
                "not be negative (0 is no limit) and SKYSOLVE_MAX_UPLOAD_MB must be positive",
                id="skysolve.E020",
            )
        )
    if settings.SECRET_KEY == INSECURE_SECRET_KEY and not settings.DEBUG:
        messages.append(
            Warning(
                "SECRET_KEY is not set",
                hint="Set SECRET_KEY or SECRET_KEY_FILE (or run skysolve serve once).",
                id="skysolve.W001",
            )
        )
    try:
        from skysolve.engine.indexes.fetch import parse_mirrors

        parse_mirrors(settings.SKYSOLVE_INDEX_MIRRORS)
    except SolveError as exc:
        messages.append(
            Error(
                exc.message,
                hint="e.g. SKYSOLVE_INDEX_MIRRORS=5200=http://10.0.0.1/5200/,4100=http://10.0.0.1/4100/",
                id="skysolve.E040",
            )
        )
    if settings.SKYSOLVE_SESSION_DAYS < 14:
        messages.append(
            Warning(
                "SKYSOLVE_SESSION_DAYS is below 14; sessions last 14 days anyway",
                id="skysolve.W002",
            )
        )
    return messages


#: The engine and ssh settings' check ids (SKYSOLVE_INDEX_MIRRORS is E040 above).
ENGINE_CHECK_IDS = {
    "SKYSOLVE_SOLVER_PROCESSES": "skysolve.E041",
    "SKYSOLVE_ALLSKY": "skysolve.E042",
    "SKYSOLVE_SSH_PORT": "skysolve.E043",
    "SKYSOLVE_SSH_CONNECT_TIMEOUT": "skysolve.E044",
    "SKYSOLVE_SSH_OPTIONS": "skysolve.E045",
    "SKYSOLVE_SSH_DESTINATION": "skysolve.E046",
}
SSH_SOLVER = "skysolve.remote.ssh.solve"


@register()
def check_engine_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The engine's own settings, read from the environment as the engine reads
    them (:mod:`skysolve.engine.config`): a bad value shows at start-up, not at
    the first solve."""
    from skysolve.engine.config import problems

    found = problems(os.environ)
    messages: list[CheckMessage] = [
        Error(message, id=ENGINE_CHECK_IDS[name])
        for name, message in found.items()
        if name in ENGINE_CHECK_IDS
    ]
    if (
        settings.SKYSOLVE_SOLVER == SSH_SOLVER
        and not os.environ.get("SKYSOLVE_SSH_DESTINATION", "").strip()
    ):
        messages.append(
            Error(
                "SKYSOLVE_SSH_DESTINATION (user@host) is not set",
                hint=f"SKYSOLVE_SOLVER={SSH_SOLVER} solves on the host it names.",
                id="skysolve.E046",
            )
        )
    return messages


def _celery_messages() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    broker = settings.SKYSOLVE_BROKER_URL
    if not broker.startswith(("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")):
        messages.append(
            Error(
                f"SKYSOLVE_BROKER_URL {broker!r} is not a Redis or RabbitMQ URL",
                hint="e.g. redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//",
                id="skysolve.E008",
            )
        )
    if not settings.SKYSOLVE_RESULT_BACKEND.startswith(("redis://", "rediss://")):
        messages.append(
            Error(
                "SKYSOLVE_RESULT_BACKEND must be a redis:// URL",
                hint="Results come back through Redis; it is the broker's URL by default "
                "when the broker is Redis.",
                id="skysolve.E009",
            )
        )
    if settings.SKYSOLVE_DISPATCH_SLOTS < 1 or settings.SKYSOLVE_CELERY_RESEND_SECONDS < 1:
        messages.append(
            Error(
                "SKYSOLVE_DISPATCH_SLOTS and SKYSOLVE_CELERY_RESEND_SECONDS must be at least 1",
                id="skysolve.E010",
            )
        )
    return messages
