"""skysolve.remote.ssh.solve through a real sshd whose key forces ``skysolve solve-server``.

Each sshd is our own: a free port on 127.0.0.1, a host key, a config, an
authorized_keys file and a pid file in a temporary directory.  Needs Debian's
openssh-server (/usr/sbin/sshd); without it the tests skip, or fail under
``SKYSOLVE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import getpass
import math
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from skysolve.engine.params import SolveParameters
from skysolve.errors import BadInputError, SolveCancelledError, SolverFailedError
from skysolve.remote.ssh import solve
from tests.conftest import REPO_ROOT
from tests.waiting import poll

pytestmark = pytest.mark.slow

SSHD = Path("/usr/sbin/sshd")
SKYSOLVE = REPO_ROOT / ".venv" / "bin" / "skysolve"


def require_openssh() -> None:
    missing = [p for p in (str(SSHD), "ssh", "ssh-keygen") if shutil.which(p) is None] + (
        [] if SKYSOLVE.exists() else [str(SKYSOLVE)]
    )
    if not missing:
        return
    reason = (
        f"MISSING {', '.join(missing)}: the ssh solve-server tests need Debian's "
        "openssh-server and openssh-client (apt-get install -y openssh-server)"
    )
    if os.environ.get("SKYSOLVE_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + "; SKYSOLVE_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        timeout=60,
    )
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class Sshd:
    process: subprocess.Popen[bytes]
    port: int
    client_key: Path
    known_hosts: Path
    host_work: Path
    log: Path

    def client_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SKYSOLVE_SSH_DESTINATION", f"{getpass.getuser()}@127.0.0.1")
        monkeypatch.setenv("SKYSOLVE_SSH_PORT", str(self.port))
        monkeypatch.setenv("SKYSOLVE_SSH_IDENTITY", str(self.client_key))
        monkeypatch.setenv(
            "SKYSOLVE_SSH_OPTIONS",
            f"StrictHostKeyChecking=yes UserKnownHostsFile={self.known_hosts}",
        )
        # The key's forced command wins over whatever the client asks to run.
        monkeypatch.setenv("SKYSOLVE_SSH_COMMAND", "/bin/false")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=60)


def start_sshd(root: Path) -> Sshd:
    require_openssh()
    root.mkdir(parents=True, exist_ok=True)
    host_pub = keygen(root / "host_key")
    client_pub = keygen(root / "client_key")
    host_work = root / "host-work"
    host_work.mkdir()
    forced = f"{SKYSOLVE} solve-server --work-dir {host_work}"
    (root / "authorized_keys").write_text(f'command="{forced}",restrict {client_pub}\n')
    port = free_port()
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'host_key'}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                "StrictModes no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        # sshd refuses to start without its privilege separation directory,
        # which the Debian package only creates when its service starts.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = root / "sshd.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config), "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
        )
    sshd = Sshd(process, port, root / "client_key", known_hosts, host_work, log)

    def listening() -> bool:
        if process.poll() is not None:
            pytest.fail(f"sshd exited with {process.returncode}:\n{log.read_text()}")
        return "Server listening" in log.read_text()

    try:
        poll(listening, what="sshd to listen", patience=60.0, interval=0.1, details=log.read_text)
    except AssertionError:
        sshd.stop()
        raise
    return sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    a1, d1, a2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(a1 - a2)
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def test_it_solves_a_star_list_over_ssh(
    sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testfields.synthetic import FieldSpec, make_field

    sshd.client_env(monkeypatch)
    spec = FieldSpec(ra=200.0, dec=-30.0, pixscale=30.0, width=800, height=600, seed=2)
    sources = make_field(spec, render=False).sources
    stages: list[str] = []
    out = tmp_path / "out"
    result = solve(
        sources,
        SolveParameters(timeout=300),
        out,
        progress=lambda stage, message: stages.append(stage),
    )
    assert result.solved, f"{result.failure}\n{sshd.log.read_text()}"
    assert result.calibration is not None
    assert separation_deg(result.calibration.ra, result.calibration.dec, 200.0, -30.0) < 0.01
    assert result.calibration.pixscale == pytest.approx(30.0, rel=0.01)
    assert result.wcs_header is not None
    for key in ("wcs", "axy", "log", "kml"):
        assert result.files[key].parent == out and result.files[key].is_file(), key
    assert stages[0] == "preparing" and stages[-1] == "finished"
    assert list(sshd.host_work.iterdir()) == []  # the host cleaned up


def test_it_solves_a_real_image_over_ssh(
    sshd: Sshd, shared_images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sshd.client_env(monkeypatch)
    out = tmp_path / "out"
    result = solve(shared_images / "apod4.jpg", SolveParameters(timeout=300), out)
    assert result.solved, f"{result.failure}\n{sshd.log.read_text()}"
    assert result.calibration is not None
    assert separation_deg(result.calibration.ra, result.calibration.dec, 187.185, 56.713) < 0.1
    assert result.objects_in_field
    assert result.command[:3] == ["skysolve", "solve", "apod4.jpg"]
    for key in ("wcs", "new_fits", "axy", "log", "kml"):
        assert result.files[key].parent == out and result.files[key].is_file(), key
    assert {p.name for p in out.iterdir()} == {p.name for p in result.files.values()}
    assert list(sshd.host_work.iterdir()) == []


def test_it_reports_a_corrupt_image_with_the_servers_message(
    sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skysolve.engine.pipeline import solve as local_solve

    sshd.client_env(monkeypatch)
    image = tmp_path / "broken.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x13" * 300)
    with pytest.raises(BadInputError) as local:
        local_solve(image, SolveParameters(), tmp_path / "local")
    with pytest.raises(BadInputError) as remote:
        solve(image, SolveParameters(), tmp_path / "remote")
    assert type(remote.value) is type(local.value)
    assert remote.value.message == local.value.message
    assert not remote.value.retryable


def test_it_hangs_up_on_cancel_and_the_host_cleans_up(
    sshd: Sshd, shared_images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sshd.client_env(monkeypatch)
    cancel = threading.Event()
    with pytest.raises(SolveCancelledError):
        solve(
            shared_images / "apod4.jpg",
            SolveParameters(timeout=300),
            tmp_path / "out",
            cancel=cancel,
            progress=lambda stage, message: cancel.set(),
        )
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    # The host sees its stdin close, cancels the solve and removes the job's
    # directory; wait for that (bounded), the order of events is what matters.
    poll(
        lambda: list(sshd.host_work.iterdir()) == [],
        what="the host to remove the cancelled job's directory",
        patience=60.0,
        interval=0.1,
    )


def test_it_reports_a_stopped_sshd_as_retryable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_sshd(tmp_path / "sshd")
    server.client_env(monkeypatch)
    server.stop()
    star_list = tmp_path / "stars.txt"
    star_list.write_text("".join(f"{10 * i} {7 * i} {100 - i}\n" for i in range(1, 20)))
    with pytest.raises(SolverFailedError, match="cannot reach solve host") as caught:
        solve(star_list, SolveParameters(image_width=300, image_height=200), tmp_path / "out")
    assert caught.value.retryable
    assert "refused" in caught.value.message
