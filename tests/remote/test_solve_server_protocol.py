"""The solve-server protocol: the server in memory with a fake solve, and the
client against ``skysolve solve-server`` as a local subprocess (no ssh)."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skysolve.engine import wire
from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveResult, SourceList
from skysolve.errors import (
    BadInputError,
    ConfigurationError,
    ImageTooLargeError,
    NoStarsError,
    SolveCancelledError,
    SolverFailedError,
    SolveTimeoutError,
)
from skysolve.remote import protocol, server
from skysolve.remote.ssh import LocalPipeTransport, SshTransport, solve_via
from tests.gates import needs_binary

needs_engine = needs_binary("astrometry-engine")

FAST_ENV = {"SKYSOLVE_PICTURES": "0"}


def request(params: dict[str, Any], payload: bytes, **input_meta: Any) -> bytes:
    meta = {"kind": "file", "size": len(payload), **input_meta}
    header = {"protocol": protocol.PROTOCOL, "params": params, "input": meta}
    return protocol.dump_line(header) + payload


def parse_answer(raw: bytes) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, bytes]]:
    """Progress lines, the answer line and the files of a server's output."""
    stream = io.BytesIO(raw)
    progress = []
    while True:
        doc = protocol.read_line(stream, limit=protocol.MAX_ANSWER_HEADER, what="answer")
        assert doc is not None, "no answer line"
        if doc["type"] == "answer":
            break
        progress.append(doc)
    files = {entry["name"]: stream.read(entry["size"]) for entry in doc["files"]}
    assert stream.read() == b"", "bytes after the last file"
    return progress, doc, files


class FakeSolve:
    """Records its call; writes a WCS-less unsolved result with one file."""

    def __init__(self, action: Callable[[threading.Event], None] | None = None) -> None:
        self.action = action
        self.source: Path | SourceList | None = None
        self.source_bytes = b""
        self.params: SolveParameters | None = None
        self.extra_files: dict[str, Path] = {}

    def __call__(
        self,
        source: Path | SourceList,
        params: SolveParameters,
        out_dir: Path,
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[str, str], None] | None = None,
        verified: Callable[[SolveResult], None] | None = None,
    ) -> SolveResult:
        self.source, self.params = source, params
        if isinstance(source, Path):
            self.source_bytes = source.read_bytes()
        assert progress is not None and cancel is not None
        progress("preparing", "fake")
        if self.action is not None:
            self.action(cancel)
        (out_dir / "solve.log").write_text("fake log\n")
        result = SolveResult(solved=False, image_width=10, image_height=20, log="fake log\n")
        result.failure = NoStarsError("only 0 sources found")
        result.files = {"log": out_dir / "solve.log", **self.extra_files}
        return result


def serve(raw: bytes, fake: FakeSolve, tmp_path: Path, **options: Any) -> bytes:
    out = io.BytesIO()
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    server.serve_one(io.BytesIO(raw), out, solve=fake, watch_hangup=False, work_dir=work, **options)
    return out.getvalue()


# -- the server, in memory ----------------------------------------------------------------


def test_it_solves_the_input_under_a_fixed_name_and_removes_it(tmp_path: Path) -> None:
    fake = FakeSolve()
    raw = serve(request({"timeout": 20}, b"image bytes"), fake, tmp_path)
    assert isinstance(fake.source, Path)
    assert fake.source.name == server.INPUT_NAME
    assert fake.source_bytes == b"image bytes"
    assert list((tmp_path / "work").iterdir()) == []
    progress, answer, files = parse_answer(raw)
    assert progress == [{"type": "progress", "stage": "preparing", "message": "fake"}]
    assert answer["status"] == "ok"
    assert answer["result"]["error"] == {
        "code": "no_stars",
        "message": "only 0 sources found",
        "retryable": False,
    }
    assert answer["result"]["files"] == {"log": "solve.log"}
    assert answer["log"] == "fake log\n"
    assert files == {"solve.log": b"fake log\n"}


def test_it_sends_only_regular_files_inside_the_output_directory(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    fake = FakeSolve()

    def plant(cancel: threading.Event) -> None:
        assert isinstance(fake.source, Path)
        out = fake.source.parent / "out"
        (out / "link.txt").symlink_to(outside)
        fake.extra_files = {"secret": outside, "link": out / "link.txt", "gone": out / "no.fits"}

    fake.action = plant
    _, answer, files = parse_answer(serve(request({}, b"x"), fake, tmp_path))
    assert [entry["name"] for entry in answer["files"]] == ["solve.log"]
    assert b"secret" not in b"".join(files.values())


def test_it_refuses_input_over_the_cap_before_reading_it(tmp_path: Path) -> None:
    fake = FakeSolve()
    raw = serve(request({}, b"0123456789"), fake, tmp_path, max_input_bytes=9)
    _, answer, files = parse_answer(raw)
    assert answer["status"] == "error"
    assert answer["error"]["code"] == "too_large"
    assert answer["error"]["retryable"] is False
    assert fake.source is None and files == {}


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        (b"", "bad_input", "the stream was empty"),
        (b"not json\n", "bad_input", "not JSON"),
        (b'{"protocol": "skysolve-remote/1"', "bad_input", "ended inside"),
        (b'{"protocol": "skysolve-remote/0"}\n', "configuration", "speaks"),
        (request({"parity": 7}, b"x"), "invalid_parameter", "parity"),
        (request({}, b"x", kind="tarball"), "bad_input", "kind"),
        (request({}, b"x", size=-1), "bad_input", "whole number"),
        (request({}, b"abc", size=10), "bad_input", "ended after 3 of 10 bytes"),
        (
            request(
                {},
                b"\x00" * 8,
                kind="sources",
                count=1,
                width=9,
                height=9,
                columns=["x", "y", "flux"],
            ),
            "bad_input",
            "do not hold",
        ),  # fmt: skip
    ],
)
def test_it_answers_a_bad_request_with_a_structured_error(
    tmp_path: Path, raw: bytes, code: str, message: str
) -> None:
    fake = FakeSolve()
    _, answer, _ = parse_answer(serve(raw, fake, tmp_path))
    assert answer["status"] == "error"
    assert answer["error"]["code"] == code
    assert message in answer["error"]["message"]
    assert fake.source is None


def test_it_answers_an_internal_error_without_a_traceback(tmp_path: Path) -> None:
    def crash(cancel: threading.Event) -> None:
        raise RuntimeError("boom")

    raw = serve(request({}, b"x"), FakeSolve(crash), tmp_path)
    _, answer, _ = parse_answer(raw)
    assert answer["error"] == {
        "code": "internal",
        "message": "internal error on the solve host: RuntimeError: boom",
        "retryable": False,
    }
    assert b"Traceback" not in raw


def test_it_caps_the_timeout_the_client_asks_for(tmp_path: Path) -> None:
    fake = FakeSolve()
    serve(request({"timeout": 300}, b"x"), fake, tmp_path, max_timeout=10.0)
    assert fake.params is not None and fake.params.timeout == 10.0


def test_it_reports_a_watchdog_stop_as_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "WATCHDOG_GRACE", 0.0)

    def hang(cancel: threading.Event) -> None:
        cancel.wait()
        raise SolveCancelledError("the solve was cancelled")

    _, answer, _ = parse_answer(serve(request({"timeout": 0.01}, b"x"), FakeSolve(hang), tmp_path))
    assert answer["error"]["code"] == "timeout"


def test_it_reports_a_shutdown_as_retryable(tmp_path: Path) -> None:
    job = server.Job(shutting_down=True)
    job.stop.set()

    def stopped(cancel: threading.Event) -> None:
        assert cancel.is_set()
        raise SolveCancelledError("the solve was cancelled")

    raw = serve(request({}, b"x"), FakeSolve(stopped), tmp_path, job=job)
    _, answer, _ = parse_answer(raw)
    assert answer["error"]["code"] == "solver_failed"
    assert answer["error"]["retryable"] is True


def test_it_cancels_the_solve_when_the_client_hangs_up(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as client:
        client.write(request({}, b"x"))
    job = server.Job()

    def wait_for_hangup(cancel: threading.Event) -> None:
        cancel.wait()
        raise SolveCancelledError("the solve was cancelled")

    out = io.BytesIO()
    with os.fdopen(read_fd, "rb") as stdin:
        status = server.serve_one(
            stdin, out, solve=FakeSolve(wait_for_hangup), work_dir=tmp_path, job=job
        )
    assert job.hung_up
    assert status == 1
    assert parse_answer(out.getvalue())[1]["error"]["code"] == "cancelled"


def test_it_round_trips_a_source_list_with_background() -> None:
    sources = SourceList(
        x=np.array([1.5, 2.0]),
        y=np.array([3.0, 4.25]),
        flux=np.array([9.0, 8.0]),
        width=640,
        height=480,
        background=np.array([0.5, 0.25]),
    )
    meta, body = wire.encode_sources(sources)
    back = wire.decode_sources(json.loads(json.dumps(meta)), body)
    assert (back.width, back.height) == (640, 480)
    for name in ("x", "y", "flux", "background"):
        assert np.array_equal(getattr(back, name), getattr(sources, name))


def test_it_refuses_a_source_list_with_nan() -> None:
    meta, body = wire.encode_sources(
        SourceList(x=np.array([np.nan]), y=np.array([1.0]), flux=np.array([1.0]), width=9, height=9)
    )
    with pytest.raises(BadInputError, match="NaN"):
        wire.decode_sources(meta, body)


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "..", ".", "", ".hidden", "x\x00"])
def test_it_calls_names_with_separators_or_dots_unsafe(name: str) -> None:
    assert not protocol.is_safe_name(name)


# -- ssh settings -----------------------------------------------------------------------------


def test_it_builds_the_ssh_command_from_the_settings() -> None:
    transport = SshTransport.from_env(
        {
            "SKYSOLVE_SSH_DESTINATION": "solve@solvehost",
            "SKYSOLVE_SSH_PORT": "2222",
            "SKYSOLVE_SSH_IDENTITY": "/etc/skysolve/id_ed25519",
            "SKYSOLVE_SSH_OPTIONS": "StrictHostKeyChecking=yes UserKnownHostsFile=/etc/kh",
            "SKYSOLVE_SSH_COMMAND": "/srv/skysolve/.venv/bin/skysolve solve-server",
        }
    )
    argv = transport.argv()
    assert argv[0] == "ssh"
    assert argv[-4:] == [
        "--",
        "solve@solvehost",
        "/srv/skysolve/.venv/bin/skysolve",
        "solve-server",
    ]
    for pair in (
        ["-o", "BatchMode=yes"],
        ["-p", "2222"],
        ["-i", "/etc/skysolve/id_ed25519"],
        ["-o", "StrictHostKeyChecking=yes"],
        ["-o", "UserKnownHostsFile=/etc/kh"],
    ):
        assert any(argv[i : i + 2] == pair for i in range(len(argv))), pair
    assert any(a.startswith("ConnectTimeout=") for a in argv)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SKYSOLVE_SSH_DESTINATION"),
        ({"SKYSOLVE_SSH_DESTINATION": "-oProxyCommand=x"}, "user@host"),
        ({"SKYSOLVE_SSH_DESTINATION": "a@b", "SKYSOLVE_SSH_PORT": "ssh"}, "SKYSOLVE_SSH_PORT"),
        ({"SKYSOLVE_SSH_DESTINATION": "a@b", "SKYSOLVE_SSH_PORT": "70000"}, "port number"),
        ({"SKYSOLVE_SSH_DESTINATION": "a@b", "SKYSOLVE_SSH_OPTIONS": "-v"}, "Key=Value"),
        ({"SKYSOLVE_SSH_DESTINATION": "a@b", "SKYSOLVE_SSH_OPTIONS": "'x"}, "quotation"),
    ],
)
def test_it_refuses_bad_ssh_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SshTransport.from_env(env)


# -- the client against canned answers ----------------------------------------------------


@dataclass(frozen=True)
class CannedTransport:
    """A "server" that reads the request line and replies with fixed bytes."""

    answer: Path
    status: int = 0
    name: str = "canned host"
    connect_failure_status: int | None = None

    def argv(self) -> list[str]:
        code = (
            "import sys, shutil\n"
            "sys.stdin.buffer.readline()\n"
            "shutil.copyfileobj(open(sys.argv[1], 'rb'), sys.stdout.buffer)\n"
            "sys.stdout.flush()\n"
            "print('canned host says bye', file=sys.stderr)\n"
            "sys.exit(int(sys.argv[2]))\n"
        )
        return [sys.executable, "-c", code, str(self.answer), str(self.status)]

    def env(self) -> Mapping[str, str] | None:
        return None


def canned(tmp_path: Path, files: list[dict[str, Any]], payload: bytes, **answer: Any) -> Path:
    result = SolveResult(solved=False, image_width=10, image_height=10).to_json()
    doc = server._answer("ok", result=result, files=files)
    doc.update(answer)
    path = tmp_path / "answer.bin"
    path.write_bytes(protocol.dump_line(doc) + payload)
    return path


def star_list(n: int) -> SourceList:
    rng = np.random.default_rng(1)
    return SourceList(
        x=rng.uniform(1, 100, n), y=rng.uniform(1, 100, n), flux=rng.uniform(1, 9, n), width=100,
        height=100,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["../evil.fits", "sub/evil.fits", ".."])
def test_it_refuses_result_files_with_unsafe_names(tmp_path: Path, name: str) -> None:
    answer = canned(tmp_path, [{"key": "wcs", "name": name, "size": 4}], b"evil")
    out = tmp_path / "a" / "out"
    with pytest.raises(ConfigurationError, match="unsafe name"):
        solve_via(CannedTransport(answer), star_list(3), SolveParameters(), out)
    assert list((tmp_path / "a").rglob("*")) == [out]


def test_it_reports_a_stream_cut_inside_a_file_as_retryable(tmp_path: Path) -> None:
    answer = canned(
        tmp_path,
        [{"key": "log", "name": "solve.log", "size": 3}, {"key": "axy", "name": "axy.fits",
                                                            "size": 100}],
        b"log" + b"x" * 10,
    )  # fmt: skip
    out = tmp_path / "out"
    with pytest.raises(SolverFailedError, match="ended inside axy.fits") as caught:
        solve_via(CannedTransport(answer, status=3), star_list(3), SolveParameters(), out)
    assert caught.value.retryable
    assert "exit status 3" in caught.value.message
    assert list(out.iterdir()) == []


def test_it_reports_a_host_that_exits_without_answering_as_retryable(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(SolverFailedError, match="before answering.*canned host says bye"):
        solve_via(CannedTransport(empty, status=1), star_list(3), SolveParameters(), tmp_path)


def test_it_refuses_an_answer_that_is_not_the_protocol(tmp_path: Path) -> None:
    motd = tmp_path / "motd.bin"
    motd.write_bytes(b"Welcome to solvehost!\n")
    with pytest.raises(ConfigurationError, match="garbage"):
        solve_via(CannedTransport(motd), star_list(3), SolveParameters(), tmp_path)


def test_it_rebuilds_the_result_and_writes_the_files(tmp_path: Path) -> None:
    answer = canned(
        tmp_path, [{"key": "log", "name": "solve.log", "size": 5}], b"hello", log="the log"
    )
    out = tmp_path / "out"
    result = solve_via(CannedTransport(answer), star_list(3), SolveParameters(), out)
    assert result.files == {"log": out / "solve.log"}
    assert (out / "solve.log").read_bytes() == b"hello"
    assert result.log == "the log"
    assert "round_trip" in result.timings


# -- the client against the real server, as a local subprocess ---------------------------


def test_it_reports_bad_server_settings_as_an_error_answer(tmp_path: Path) -> None:
    transport = LocalPipeTransport(environ={"SKYSOLVE_SOLVE_SERVER_MAX_TIMEOUT": "soon"})
    with pytest.raises(ConfigurationError, match="SKYSOLVE_SOLVE_SERVER_MAX_TIMEOUT"):
        solve_via(transport, star_list(3), SolveParameters(), tmp_path)


def test_it_refuses_input_over_the_flags_cap(tmp_path: Path) -> None:
    image = tmp_path / "big.fits"
    image.write_bytes(b"\x00" * 4096)
    transport = LocalPipeTransport(args=("--max-input-mb", "0.001"))
    with pytest.raises(ImageTooLargeError, match="at most 1048 bytes"):
        solve_via(transport, image, SolveParameters(), tmp_path / "out")


def test_it_reports_a_corrupt_image_with_the_pipelines_message(tmp_path: Path) -> None:
    from skysolve.engine.pipeline import solve as local_solve

    image = tmp_path / "broken.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    with pytest.raises(BadInputError) as local:
        local_solve(image, SolveParameters(), tmp_path / "local")
    with pytest.raises(type(local.value)) as remote:
        solve_via(LocalPipeTransport(), image, SolveParameters(), tmp_path / "remote")
    assert remote.value.message == local.value.message


def test_it_returns_an_unsolved_result_with_its_reason(tmp_path: Path) -> None:
    stages: list[str] = []
    out = tmp_path / "out"
    result = solve_via(
        LocalPipeTransport(environ=FAST_ENV),
        star_list(3),
        SolveParameters(),
        out,
        progress=lambda stage, message: stages.append(stage),
    )
    assert not result.solved
    assert isinstance(result.failure, NoStarsError)
    assert result.n_sources == 3
    assert stages[0] == "preparing" and stages[-1] == "finished"
    assert set(result.files) == {"axy", "log"}
    assert sorted(p.name for p in out.iterdir()) == ["axy.fits", "solve.log"]
    assert "not solved" in result.log


@needs_engine
def test_it_solves_a_star_list_through_the_local_pipe(tmp_path: Path) -> None:
    from testfields.synthetic import FieldSpec, make_field

    spec = FieldSpec(ra=200.0, dec=-30.0, pixscale=30.0, width=800, height=600, seed=2)
    sources = make_field(spec, render=False).sources
    out = tmp_path / "out"
    result = solve_via(
        LocalPipeTransport(environ=FAST_ENV), sources, SolveParameters(timeout=120), out
    )
    assert result.solved, result.failure
    assert result.calibration is not None
    assert result.calibration.ra == pytest.approx(200.0, abs=0.01)
    assert result.calibration.dec == pytest.approx(-30.0, abs=0.01)
    assert result.wcs_header is not None and result.wcs is not None
    assert result.files["wcs"] == out / "wcs.fits" and result.files["wcs"].is_file()
    assert result.command[:3] == ["skysolve", "solve", "STARLIST.xyls"]


def test_it_stops_the_server_when_cancelled(tmp_path: Path) -> None:
    cancel = threading.Event()
    with pytest.raises(SolveCancelledError):
        solve_via(
            LocalPipeTransport(environ=FAST_ENV),
            star_list(3),
            SolveParameters(),
            tmp_path / "out",
            cancel=cancel,
            progress=lambda stage, message: cancel.set(),
        )


def test_it_lets_the_progress_callback_stop_the_solve(tmp_path: Path) -> None:
    def worker_progress(stage: str, message: str) -> None:
        raise SolveCancelledError("cancelled")  # what the worker does when cancelled

    with pytest.raises(SolveCancelledError):
        solve_via(
            LocalPipeTransport(environ=FAST_ENV),
            star_list(3),
            SolveParameters(),
            tmp_path / "out",
            progress=worker_progress,
        )


def test_it_raises_cancelled_without_starting_when_already_cancelled(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    transport = CannedTransport(tmp_path / "never-read")
    with pytest.raises(SolveCancelledError):
        solve_via(transport, star_list(3), SolveParameters(), tmp_path, cancel=cancel)


def test_it_times_out_a_host_that_never_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skysolve.remote.ssh as ssh

    monkeypatch.setattr(ssh, "ANSWER_GRACE_SECONDS", 0.0)

    @dataclass(frozen=True)
    class Silent:
        name: str = "silent host"
        connect_failure_status: int | None = None

        def argv(self) -> list[str]:
            return [sys.executable, "-c", "import sys; sys.stdin.buffer.read()"]

        def env(self) -> Mapping[str, str] | None:
            return None

    with pytest.raises(SolveTimeoutError, match="did not answer in time"):
        solve_via(Silent(), star_list(3), SolveParameters(timeout=0.01), tmp_path)
