"""Answer one solve job on a stream pair (see :mod:`skysolve.remote.protocol`).

:func:`serve_one` trusts nothing the client sends but the parameters, and
validates those: the input is written under a fresh temporary directory with a
fixed name, its size is capped before a byte is read, the real pipeline runs
under a watchdog, only files the pipeline produced inside its output directory
go back, and the directory is removed afterwards.  Every failure becomes an
error answer; tracebacks go to the log (stderr), never onto the stream.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from skysolve.engine import wire
from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveFunction, SolveResult, SourceList
from skysolve.errors import (
    INTERNAL,
    BadInputError,
    ConfigurationError,
    ImageTooLargeError,
    SolveCancelledError,
    SolveError,
    SolverFailedError,
    SolveTimeoutError,
    error_to_dict,
)
from skysolve.remote import protocol

if TYPE_CHECKING:
    from skysolve.engine.pipeline import EngineConfig

log = logging.getLogger(__name__)

#: Default cap of one job's input, bytes.
DEFAULT_MAX_INPUT_BYTES = 200 * 1024 * 1024

#: Default cap of one job's wall-clock limit, seconds (a client may ask for less).
DEFAULT_MAX_TIMEOUT = 600.0

#: How long past its own limit a solve may run before the watchdog stops it.
WATCHDOG_GRACE = 30.0

#: Name of the input file inside the job's temporary directory.
INPUT_NAME = "input"


@dataclass
class Job:
    """What :func:`serve_one` knows about the job it runs; the CLI's signal
    handlers set ``stop`` (with ``shutting_down``)."""

    stop: threading.Event = field(default_factory=threading.Event)
    hung_up: bool = False
    timed_out: bool = False
    shutting_down: bool = False


def serve_one(
    stdin: IO[bytes],
    stdout: IO[bytes],
    *,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    max_timeout: float = DEFAULT_MAX_TIMEOUT,
    work_dir: Path | None = None,
    config: EngineConfig | Callable[[], EngineConfig] | None = None,
    solve: SolveFunction | None = None,
    watch_hangup: bool = True,
    job: Job | None = None,
) -> int:
    """Read one job from ``stdin``, solve it, write the answer to ``stdout``.

    Returns the exit status: 0 when the solve ran (solved or not), 1 when an
    error answer was sent, 2 when no answer could be delivered.
    ``watch_hangup`` makes end-of-file on ``stdin`` after the request cancel the
    solve (off for in-memory streams, which end at once).  ``config`` may be a
    callable, so that a configuration error becomes an error answer too.
    """
    engine_config: EngineConfig | None = None
    if solve is None:
        from skysolve.engine.pipeline import solve as pipeline_solve

        def solve(
            source: Path | SourceList,
            params: SolveParameters,
            out_dir: Path,
            *,
            cancel: threading.Event | None = None,
            progress: Callable[[str, str], None] | None = None,
            verified: Callable[[SolveResult], None] | None = None,
        ) -> SolveResult:
            # The engine with this host's own configuration; the answer goes back
            # once, with the files.
            return pipeline_solve(
                source, params, out_dir, config=engine_config, cancel=cancel, progress=progress
            )

    job = job or Job()
    tmp = Path(tempfile.mkdtemp(prefix="skysolve-remote-", dir=work_dir))
    writer = _Writer(stdout, job)
    try:
        try:
            engine_config = config() if callable(config) else config
            source, params = _read_request(stdin, tmp, max_input_bytes=max_input_bytes)
            if params.timeout > max_timeout:
                log.info("timeout %g s capped at %g s", params.timeout, max_timeout)
                params = params.replace(timeout=max_timeout)
            if watch_hangup:
                _watch_hangup(stdin, job)
            out = tmp / "out"
            out.mkdir()
            result = _run(solve, source, params, out, job=job, writer=writer)
        except SolveError as exc:
            log.info("job failed: %s: %s", exc.code, exc.message)
            writer.send_error(error_to_dict(exc))
            return 1 if writer.ok else 2
        except Exception as exc:
            log.exception("internal error")
            writer.send_error(
                {
                    "code": INTERNAL,
                    "message": f"internal error on the solve host: {type(exc).__name__}: {exc}",
                    "retryable": False,
                }
            )
            return 1 if writer.ok else 2
        log.info("solved" if result.solved else f"not solved: {result.failure}")
        writer.send_result(result, out)
        return 0 if writer.ok else 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def send_error(stdout: IO[bytes], exc: SolveError) -> bool:
    """Answer with ``exc`` before reading the request (bad settings); True if sent."""
    writer = _Writer(stdout, Job())
    writer.send_error(error_to_dict(exc))
    return writer.ok


def _read_request(
    stdin: IO[bytes], tmp: Path, *, max_input_bytes: int
) -> tuple[Path | SourceList, SolveParameters]:
    try:
        header = protocol.read_line(stdin, limit=protocol.MAX_REQUEST_HEADER, what="request header")
    except (ValueError, EOFError) as exc:
        raise BadInputError(str(exc)) from None
    if header is None:
        raise BadInputError("no request: the stream was empty")
    if header.get("protocol") != protocol.PROTOCOL:
        raise ConfigurationError(
            f"the client speaks {header.get('protocol')!r}; this solve host speaks "
            f"{protocol.PROTOCOL!r}"
        )
    raw_params = header.get("params")
    if not isinstance(raw_params, dict):
        raise BadInputError("the request has no parameters object")
    params = SolveParameters.from_mapping(raw_params)
    meta = header.get("input")
    if not isinstance(meta, dict) or meta.get("kind") not in ("file", "sources"):
        raise BadInputError("the request's input must be of kind 'file' or 'sources'")
    size = meta.get("size")
    if not protocol.is_size(size):
        raise BadInputError(f"the input size must be a whole number of bytes, not {size!r}")
    assert isinstance(size, int)
    if size == 0:
        raise BadInputError("the input is empty")
    if size > max_input_bytes:
        raise ImageTooLargeError(
            f"the input is {size} bytes; this solve host accepts at most {max_input_bytes} bytes"
        )
    if meta["kind"] == "sources":
        body = stdin.read(size)
        if len(body) != size:
            raise BadInputError(f"the input ended after {len(body)} of {size} bytes")
        return wire.decode_sources(meta, body), params
    path = tmp / INPUT_NAME
    with path.open("xb") as fh:
        got = protocol.copy_exact(stdin, fh, size)
    if got != size:
        raise BadInputError(f"the input ended after {got} of {size} bytes")
    return path, params


def _watch_hangup(stdin: IO[bytes], job: Job) -> None:
    def watch() -> None:
        try:
            while stdin.read(protocol.CHUNK):
                pass  # the protocol has the client send nothing more
        except (OSError, ValueError):
            pass
        if not job.stop.is_set():
            log.info("the client hung up; cancelling the solve")
            job.hung_up = True
            job.stop.set()

    threading.Thread(target=watch, name="hangup-watch", daemon=True).start()


def _run(
    solve: SolveFunction,
    source: Path | SourceList,
    params: SolveParameters,
    out: Path,
    *,
    job: Job,
    writer: _Writer,
) -> SolveResult:
    def expire() -> None:
        job.timed_out = True
        job.stop.set()

    # The pipeline keeps its own clock; this is the backstop for a stage that
    # does not look at it.
    watchdog = threading.Timer(params.timeout + WATCHDOG_GRACE, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        return solve(source, params, out, cancel=job.stop, progress=writer.send_progress)
    except SolveCancelledError:
        if job.timed_out:
            raise SolveTimeoutError(
                f"the solve ran past its time limit of {params.timeout:g} s and was stopped"
            ) from None
        if job.shutting_down:
            raise SolverFailedError("the solve host is shutting down") from None
        raise
    finally:
        watchdog.cancel()


class _Writer:
    """Writes protocol lines; a client that went away stops the solve."""

    def __init__(self, stdout: IO[bytes], job: Job) -> None:
        self.stdout = stdout
        self.job = job
        self.ok = True

    def _write(self, data: bytes) -> None:
        if not self.ok:
            return
        try:
            self.stdout.write(data)
            self.stdout.flush()
        except (OSError, ValueError) as exc:
            log.info("the client went away: %s", exc)
            self.ok = False
            self.job.hung_up = True
            self.job.stop.set()

    def send_progress(self, stage: str, message: str) -> None:
        log.info("%s: %s", stage, message)
        self._write(protocol.dump_line({"type": "progress", "stage": stage, "message": message}))

    def send_error(self, error: dict[str, Any]) -> None:
        self._write(protocol.dump_line(_answer("error", error=error)))

    def send_result(self, result: SolveResult, out: Path) -> None:
        manifest = _manifest(result, out)
        doc = result.to_json()
        doc["files"] = {key: path.name for key, path in manifest}
        sizes = [path.stat().st_size for _, path in manifest]
        files = [
            {"key": key, "name": path.name, "size": size}
            for (key, path), size in zip(manifest, sizes, strict=True)
        ]
        header = None if result.wcs_header is None else result.wcs_header.tostring()
        answer = _answer("ok", result=doc, log=result.log, files=files, wcs_header=header)
        self._write(protocol.dump_line(answer))
        for (_, path), size in zip(manifest, sizes, strict=True):
            with path.open("rb") as fh:
                sent = protocol.copy_exact(fh, _Sink(self), size)
            if sent != size:  # pragma: no cover - the pipeline's files do not shrink
                log.error("%s shrank while being sent", path.name)
                self.ok = False
            if not self.ok:
                return


class _Sink:
    def __init__(self, writer: _Writer) -> None:
        self.writer = writer

    def write(self, data: bytes) -> int:
        self.writer._write(data)
        return len(data)


def _answer(status: str, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "answer",
        "protocol": protocol.PROTOCOL,
        "status": status,
        "error": None,
        "result": None,
        "log": "",
        "files": [],
    }
    doc.update(fields)
    return doc


def _manifest(result: SolveResult, out: Path) -> list[tuple[str, Path]]:
    """The result's files that are regular files directly inside ``out``."""
    root = out.resolve()
    chosen: list[tuple[str, Path]] = []
    names: set[str] = set()
    for key, path in sorted(result.files.items()):
        p = Path(path)
        if p.is_symlink() or not p.is_file() or p.resolve().parent != root:
            log.warning("not sending %s (%s): not a file the pipeline wrote", key, p)
            continue
        if not protocol.is_safe_name(p.name) or p.name in names:
            log.warning("not sending %s (%s): unsafe or repeated name", key, p.name)
            continue
        names.add(p.name)
        chosen.append((key, p))
    return chosen
