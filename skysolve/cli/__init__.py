"""The ``skysolve`` command: one sub-command per module in this package.

Each sub-command module exposes ``register(subparsers)``, which adds its parser
and sets ``func`` to a callable taking the parsed namespace and returning the
exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

#: Sub-command modules, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "solve",
    "serve",
    "worker",
    "apikey",
    "manage",
    "solve_server",
    "db",
    "index",
    "tls_cert",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``skysolve`` parser with every sub-command, or with ``command``'s alone.

    Importing a sub-command's module imports what it needs (sockets, secrets,
    TLS, Django settings...): a ``skysolve solve`` that is a one-second process
    should not pay for the other eight.  ``command`` is a sub-command's name
    as typed (``solve-server``); when no module of that name exists, or the
    module registers a different name, every sub-command is registered, so
    usage errors and ``--help`` list them all.
    """
    parser = argparse.ArgumentParser(
        prog="skysolve", description="Plate solving: find where on the sky an image points."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    name = None if command is None else command.replace("-", "_")
    if name in COMMAND_MODULES:
        importlib.import_module(f"skysolve.cli.{name}").register(subparsers)
        if command in subparsers.choices:
            return parser
        return build_parser()
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"skysolve.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(args_list[0] if args_list else None)
    args = parser.parse_args(args_list)
    status: int = args.func(args)
    return status


#: Sub-commands that are one short process each: they end without tearing the
#: interpreter down (see :func:`console`).
SHORT_LIVED = frozenset({"solve"})


def console(argv: Sequence[str] | None = None) -> None:
    """The ``skysolve`` script: :func:`main`, then exit with its status.

    A ``skysolve solve`` has written and closed everything by the time
    :func:`main` returns; an orderly interpreter shutdown would then spend
    about 0.1 s dismantling numpy's and astropy's module state, a third of a
    hinted solve.  Such commands flush the output streams and logging and
    leave at once.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    status = main(args)
    if args and args[0] in SHORT_LIVED:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass  # the reader went away; the exit status still tells
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    console()
