"""``skysolve apikey create USERNAME``: print a new API key (creating the user if needed)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("apikey", help="manage API keys")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    create = actions.add_parser("create", help="create a key; prints only the key")
    create.add_argument("username")
    create.add_argument("--email", default="")
    create.add_argument("--label", default="")
    create.set_defaults(func=run_create)


def run_create(args: argparse.Namespace) -> int:
    from skysolve.cli.manage import setup_django

    setup_django()
    from django.core.management import call_command

    from skysolve.submissions.services import create_api_key

    call_command("migrate", verbosity=0, interactive=False)
    key = create_api_key(args.username, email=args.email, label=args.label)
    # Only the key on stdout, so scripts can do KEY=$(skysolve apikey create alice).
    print(key.key)
    return 0
