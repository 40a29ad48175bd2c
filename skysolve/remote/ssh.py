"""Solve on another machine over ssh: a drop-in for :func:`skysolve.engine.pipeline.solve`.

Point the workers at it with ``SKYSOLVE_SOLVER=skysolve.remote.ssh.solve``.  Each
solve runs ``ssh`` (an argument list, never a shell) to a solve host whose
authorized key forces ``skysolve solve-server`` (see
:mod:`skysolve.cli.solve_server`), streams the input, reads progress and the
answer (:mod:`skysolve.remote.protocol`) and writes the result files into
``out_dir``.

Settings, read from the environment at each solve (by :mod:`skysolve.engine.config`):

``SKYSOLVE_SSH_DESTINATION``
    ``user@host`` of the solve host (required).
``SKYSOLVE_SSH_PORT``
    ssh port (default: ssh's own, 22).
``SKYSOLVE_SSH_IDENTITY``
    private key file (``IdentitiesOnly=yes`` is then set).
``SKYSOLVE_SSH_OPTIONS``
    extra ``-o`` options, space-separated ``Key=Value`` items, e.g.
    ``StrictHostKeyChecking=yes UserKnownHostsFile=/etc/skysolve/known_hosts``.
``SKYSOLVE_SSH_COMMAND``
    the remote command (default ``skysolve solve-server``); a forced command on
    the host replaces it.
``SKYSOLVE_SSH_CONNECT_TIMEOUT``
    seconds (default 15).

Failures map onto :mod:`skysolve.errors`: no connection or a stream that stops
early is a retryable :class:`~skysolve.errors.SolverFailedError`; the host's
own errors come back as their class (bad input, timeout...); ``cancel`` kills
ssh and raises :class:`~skysolve.errors.SolveCancelledError`.

:class:`LocalPipeTransport` (:mod:`skysolve.remote.transports`, like
:class:`SshTransport`) runs the same server as a local subprocess, the
fake the protocol's tests use.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from astropy.io import fits

from skysolve.engine import wire
from skysolve.engine.config import EngineConfig
from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveResult, SourceList
from skysolve.errors import (
    BadInputError,
    ConfigurationError,
    SolveCancelledError,
    SolveError,
    SolverFailedError,
    SolveTimeoutError,
    error_from_dict,
)
from skysolve.remote import protocol
from skysolve.remote.transports import LocalPipeTransport, SshTransport, Transport

log = logging.getLogger(__name__)

Progress = Callable[[str, str], None]

#: How long past the solve's own limit the client waits for the answer line.
ANSWER_GRACE_SECONDS = 120.0

#: How long a stopped transport may take to exit before it is killed, seconds.
KILL_GRACE_SECONDS = 5.0

#: Largest result file accepted from a host, bytes.
MAX_FILE_BYTES = 4 << 30

#: How much of the transport's stderr is kept for error messages, characters.
STDERR_TAIL = 4000


def solve(
    source: Path | SourceList,
    params: SolveParameters,
    out_dir: Path,
    *,
    config: EngineConfig | None = None,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    verified: Callable[[SolveResult], None] | None = None,
) -> SolveResult:
    """Solve on the solve host named by ``SKYSOLVE_SSH_DESTINATION``.

    Same contract as :func:`skysolve.engine.pipeline.solve`; only ``config``'s
    ssh settings are used (default: :meth:`EngineConfig.from_env`; the host
    solves with its own engine configuration), and ``verified`` is never
    called: the protocol answers once, with the pictures.
    """
    transport = SshTransport.from_settings((config or EngineConfig.from_env()).ssh)
    return solve_via(transport, source, params, out_dir, cancel=cancel, progress=progress)


def solve_via(
    transport: Transport,
    source: Path | SourceList,
    params: SolveParameters,
    out_dir: Path,
    *,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
) -> SolveResult:
    """Run one solve through ``transport``; see :func:`solve`."""
    header, body = _request(source, params)
    if cancel is not None and cancel.is_set():
        raise SolveCancelledError("the solve was cancelled")
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    deadline = started + params.timeout + ANSWER_GRACE_SECONDS
    call = _Call(transport, deadline=deadline, cancel=cancel)
    call.start(header, body)
    written: list[Path] = []
    try:
        answer = call.read_answer(progress)
        if answer.get("status") != "ok":
            call.finish()
            raise error_from_dict(answer.get("error"), sender=transport.name)
        doc = answer.get("result")
        files = answer.get("files")
        if not isinstance(doc, dict) or not isinstance(files, list):
            raise ConfigurationError(f"{transport.name} answered without a result")
        paths = call.read_files(files, out_dir, written)
        call.finish()
        result = _result(
            doc,
            paths,
            log_text=answer.get("log"),
            header_text=answer.get("wcs_header"),
            source=source,
        )
    except BaseException as exc:
        if not isinstance(exc, SolveError) or exc.code in ("cancelled", "timeout"):
            log.info("solve on %s stopped: %r", transport.name, exc)
        call.abort()
        for path in written:
            path.unlink(missing_ok=True)
        raise
    finally:
        call.close()
    result.timings["round_trip"] = time.monotonic() - started
    return result


# -- the request ------------------------------------------------------------------------


def _request(source: Path | SourceList, params: SolveParameters) -> tuple[bytes, Path | bytes]:
    if isinstance(source, SourceList):
        meta, body = wire.encode_sources(source)
        payload: Path | bytes = body
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise BadInputError(f"cannot read the input: {exc.strerror}") from None
        if not path.is_file():
            raise BadInputError("the input is not a regular file")
        meta, payload = {"kind": "file", "size": size}, path
    header = protocol.dump_line(
        {"protocol": protocol.PROTOCOL, "params": params.to_dict(), "input": meta}
    )
    return header, payload


# -- one call -------------------------------------------------------------------------------


class _Call:
    """The transport process of one solve and the threads that serve it."""

    def __init__(
        self, transport: Transport, *, deadline: float, cancel: threading.Event | None
    ) -> None:
        self.transport = transport
        self.cancel = cancel
        self.deadline = deadline
        self.process: subprocess.Popen[bytes] | None = None
        self.stderr_tail = ""
        self.cancelled = False
        self.timed_out = False
        self.send_error: str | None = None
        self.done = threading.Event()
        self.threads: list[threading.Thread] = []  # sender, stderr, watcher, timers

    # The process and its helpers --------------------------------------------------

    def start(self, header: bytes, body: Path | bytes) -> None:
        argv = self.transport.argv()
        log.info("solving on %s: %s", self.transport.name, shlex.join(argv))
        try:
            self.process = subprocess.Popen(  # noqa: S603 - an argument list, no shell
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.transport.env(),
                start_new_session=True,
            )
        except OSError as exc:
            raise ConfigurationError(f"cannot run {argv[0]}: {exc.strerror}") from None
        for target, args, name in (
            (self._send, (header, body), "remote-send"),
            (self._drain_stderr, (), "remote-stderr"),
            (self._watch, (), "remote-watch"),
        ):
            thread = threading.Thread(target=target, args=args, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _send(self, header: bytes, body: Path | bytes) -> None:
        assert self.process is not None and self.process.stdin is not None
        stdin = self.process.stdin
        try:
            stdin.write(header)
            if isinstance(body, bytes):
                stdin.write(body)
            else:
                with body.open("rb") as fh:
                    while chunk := fh.read(protocol.CHUNK):
                        stdin.write(chunk)
            stdin.flush()
            # stdin stays open: end-of-file would tell the host we hung up.
        except (OSError, ValueError) as exc:
            # The host may answer (an error) before reading everything.
            self.send_error = str(exc)

    def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            log.debug("%s: %s", self.transport.name, line)
            self.stderr_tail = (self.stderr_tail + line + "\n")[-STDERR_TAIL:]

    def _watch(self) -> None:
        while not self.done.wait(0.1):
            if self.cancel is not None and self.cancel.is_set():
                self.cancelled = True
            elif time.monotonic() > self.deadline:
                self.timed_out = True
            else:
                continue
            self.kill()
            return

    def kill(self) -> None:
        """Stop the transport: SIGTERM to its process group, SIGKILL if it lingers.

        Killing ssh ends the connection, and the host cancels the solve when
        its stdin closes; a local server gets the SIGTERM itself.
        """
        self.done.set()
        if not self._signal(signal.SIGTERM):
            return
        timer = threading.Timer(KILL_GRACE_SECONDS, self._signal, args=(signal.SIGKILL,))
        timer.daemon = True
        timer.start()
        self.threads.append(timer)

    def _signal(self, signum: int) -> bool:
        process = self.process
        # Until it is reaped, the process keeps its id (and its group's).
        if process is None or process.poll() is not None:
            return False
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:  # pragma: no cover - it exited meanwhile
            return False
        return True

    def finish(self) -> None:
        """Close our end and reap the process after a complete answer."""
        self.done.set()
        self._close_stdin()
        assert self.process is not None
        try:
            self.process.wait(timeout=KILL_GRACE_SECONDS * 6)
        except subprocess.TimeoutExpired:
            log.warning("%s did not exit after answering; stopped", self.transport.name)
            self.abort()

    def abort(self) -> None:
        """Stop the process (if still running) and reap it."""
        self.kill()
        self._close_stdin()
        if self.process is not None:
            self.process.wait()

    def close(self) -> None:
        for thread in self.threads:
            if isinstance(thread, threading.Timer):
                thread.cancel()
            thread.join(timeout=KILL_GRACE_SECONDS)
        if self.process is not None:
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()

    def _close_stdin(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except (OSError, ValueError):
                pass  # a broken pipe: the host has gone already

    # The answer -----------------------------------------------------------------------

    @property
    def stdout(self) -> IO[bytes]:
        assert self.process is not None and self.process.stdout is not None
        return self.process.stdout

    def read_answer(self, progress: Progress | None) -> dict[str, Any]:
        while True:
            try:
                doc = protocol.read_line(
                    self.stdout, limit=protocol.MAX_ANSWER_HEADER, what="answer"
                )
            except EOFError:
                doc = None
            except ValueError as exc:
                self._check_stopped()
                raise ConfigurationError(f"{self.transport.name} answered garbage: {exc}") from None
            if doc is None:
                raise self._dropped("before answering")
            if doc.get("type") == "progress":
                if progress is not None:
                    progress(str(doc.get("stage", "")), str(doc.get("message", "")))
                if self.cancel is not None and self.cancel.is_set():
                    self.cancelled = True
                    raise SolveCancelledError("the solve was cancelled")
                continue
            if doc.get("type") != "answer":
                raise ConfigurationError(
                    f"{self.transport.name} answered an unknown line type {doc.get('type')!r}"
                )
            if doc.get("protocol") != protocol.PROTOCOL:
                raise ConfigurationError(
                    f"{self.transport.name} speaks {doc.get('protocol')!r}, "
                    f"not {protocol.PROTOCOL!r}"
                )
            return doc

    def read_files(
        self, files: Sequence[Any], out_dir: Path, written: list[Path]
    ) -> dict[str, Path]:
        paths: dict[str, Path] = {}
        for entry in files:
            key = entry.get("key") if isinstance(entry, dict) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            size = entry.get("size") if isinstance(entry, dict) else None
            if not isinstance(key, str) or not protocol.is_safe_name(name):
                raise ConfigurationError(
                    f"{self.transport.name} sent a file with an unsafe name: {name!r}"
                )
            if not protocol.is_size(size) or size > MAX_FILE_BYTES:
                raise ConfigurationError(f"{self.transport.name} sent {name} with size {size!r}")
            path = out_dir / name
            if path in written:
                raise ConfigurationError(f"{self.transport.name} sent {name} twice")
            written.append(path)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
            path.unlink(missing_ok=True)  # never write through a planted link
            with os.fdopen(os.open(path, flags, 0o644), "wb") as fh:
                got = protocol.copy_exact(self.stdout, fh, size)
            if got != size:
                raise self._dropped(f"inside {name} ({got} of {size} bytes)")
            paths[key] = path
        return paths

    def _check_stopped(self) -> None:
        if self.cancelled:
            raise SolveCancelledError("the solve was cancelled")
        if self.timed_out:
            raise SolveTimeoutError(f"{self.transport.name} did not answer in time; ssh stopped")

    def _dropped(self, where: str) -> SolveError:
        self._check_stopped()
        assert self.process is not None
        try:
            status = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            status = None
        if status is not None:
            # The rest of stderr explains the failure.
            self.threads[1].join(timeout=KILL_GRACE_SECONDS)
        detail = self.stderr_tail.strip().splitlines()
        why = f": {detail[-1]}" if detail else ""
        if status is not None and status == self.transport.connect_failure_status:
            return SolverFailedError(f"cannot reach {self.transport.name}{why}")
        return SolverFailedError(
            f"the stream from {self.transport.name} ended {where} (exit status {status}){why}"
        )


# -- the result ------------------------------------------------------------------------------


def _result(
    doc: dict[str, Any],
    paths: dict[str, Path],
    *,
    log_text: Any,
    header_text: Any,
    source: Path | SourceList,
) -> SolveResult:
    try:
        header = fits.Header.fromstring(header_text) if isinstance(header_text, str) else None
    except ValueError as exc:
        raise ConfigurationError(f"the solve host's WCS header is malformed: {exc}") from None
    result = SolveResult.from_json(
        doc,
        files=paths,
        log=log_text if isinstance(log_text, str) else "",
        wcs_header=header,
        sender="the solve host",
    )
    result.command = _local_command(doc.get("command"), source)
    wcs_path = paths.get("wcs")
    if result.solved and result.wcs_header is None and wcs_path is not None:
        # A host that sent no header text: read it from the WCS file.
        try:
            result.wcs_header = fits.getheader(wcs_path)
        except (OSError, ValueError) as exc:
            raise SolverFailedError(f"the solve host's WCS file is unreadable: {exc}") from None
    return result


def _local_command(command: Any, source: Path | SourceList) -> list[str]:
    """The host's reproduce command with our input's name instead of its fixed one."""
    if not isinstance(command, list):
        return []
    cmd = [str(c) for c in command]
    if len(cmd) > 2 and not isinstance(source, SourceList):
        cmd[2] = Path(source).name
    return cmd


__all__ = ["LocalPipeTransport", "SshTransport", "Transport", "solve", "solve_via"]
