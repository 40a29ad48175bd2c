"""``skysolve solve-server``: answer one solve job on stdin/stdout, then exit.

This is what an ssh forced command runs on a solve host; a line of the solve
user's ``~/.ssh/authorized_keys`` there reads ::

    command="/srv/skysolve/.venv/bin/skysolve solve-server",restrict ssh-ed25519 AAAA... web

so the key can do nothing else, whatever command the client asks for
(``SSH_ORIGINAL_COMMAND`` is logged, never run).  The web host's workers reach it
through :func:`skysolve.remote.ssh.solve`.  The stream format, a JSON header
line and the input bytes in, progress lines, a JSON answer line and the result
files out, is documented in :mod:`skysolve.remote.protocol`.  stdout carries
only the protocol (anything else the process prints is sent to stderr), stderr
only the log.

Settings (flag, else environment variable, else default): ``--max-input-mb``
(``SKYSOLVE_SOLVE_SERVER_MAX_INPUT_MB``, 200), ``--max-timeout`` in seconds
(``SKYSOLVE_SOLVE_SERVER_MAX_TIMEOUT``, 600; a client may ask for less) and
``--work-dir`` for the per-job temporary directories
(``SKYSOLVE_SOLVE_SERVER_WORK_DIR``, the system's temporary directory).  The
engine reads the same variables as ``skysolve solve`` (``SKYSOLVE_INDEX_DIRS``...).

Exit status: 0 the solve ran (solved or not), 1 an error was answered, 2 no
answer could be delivered.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from skysolve.errors import ConfigurationError

log = logging.getLogger("skysolve.solve_server")


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "solve-server",
        help="answer one solve job on stdin/stdout (an ssh forced command)",
        description="Read one framed solve job from stdin and write the results to stdout.",
    )
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-input-mb", type=float, help="largest accepted input, MiB (default 200)")
    p.add_argument("--max-timeout", type=float, help="longest solve, seconds (default 600)")
    p.add_argument("--work-dir", type=Path, help="parent of the per-job temporary directories")


def run(args: argparse.Namespace) -> int:
    from skysolve.engine.pipeline import EngineConfig
    from skysolve.remote import server

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s solve-server[%(process)d] %(levelname)s %(message)s",
    )
    stdin, stdout = _protocol_streams()
    original = os.environ.get("SSH_ORIGINAL_COMMAND")
    if original is not None:
        log.info("client asked for %r; running the solve server instead", original[:200])
    if os.environ.get("SSH_CLIENT"):
        log.info("connection from %s", os.environ["SSH_CLIENT"].split(" ")[0])
    try:
        max_mb = _setting(args.max_input_mb, "SKYSOLVE_SOLVE_SERVER_MAX_INPUT_MB", 200.0)
        max_timeout = _setting(args.max_timeout, "SKYSOLVE_SOLVE_SERVER_MAX_TIMEOUT", 600.0)
    except ConfigurationError as exc:
        log.error("%s", exc)
        return 1 if server.send_error(stdout, exc) else 2
    work_dir = args.work_dir or os.environ.get("SKYSOLVE_SOLVE_SERVER_WORK_DIR") or None
    job = server.Job()

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping the solve", signum)
        if signum == signal.SIGHUP:
            job.hung_up = True
        else:
            job.shutting_down = True
        job.stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    return server.serve_one(
        stdin,
        stdout,
        max_input_bytes=int(max_mb * 1024 * 1024),
        max_timeout=max_timeout,
        work_dir=Path(work_dir) if work_dir else None,
        config=EngineConfig.from_env,
        job=job,
    )


def _protocol_streams() -> tuple[Any, Any]:
    """Private copies of stdin/stdout for the protocol.

    File descriptors 0 and 1 then point at /dev/null and stderr, so that a
    stray print or a child process cannot corrupt the stream.
    """
    stdin = os.fdopen(os.dup(0), "rb")
    stdout = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stdin, stdout


def _setting(flag: float | None, variable: str, default: float) -> float:
    if flag is not None:
        value = flag
    else:
        raw = os.environ.get(variable, "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise ConfigurationError(f"{variable} must be a number, not {raw!r}") from None
    if not value > 0:
        raise ConfigurationError(f"{variable} (or its flag) must be positive, not {value:g}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the server without the ``skysolve`` front end (``python -m``)."""
    parser = argparse.ArgumentParser(prog="skysolve solve-server")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
