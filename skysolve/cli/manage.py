"""``skysolve manage ...``: Django's manage.py for this installation."""

from __future__ import annotations

import argparse
import os
from typing import Any


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skysolve.web.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("manage", help="run a Django management command", add_help=False)
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["skysolve manage", *args.arguments])
    return 0
