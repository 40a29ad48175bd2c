"""How a solve reaches the solve server: over ssh, or to a local subprocess (the tests' fake).

A :class:`Transport` names the command whose stdin and stdout carry the
protocol (:mod:`skysolve.remote.protocol`); :class:`SshTransport` reads its
settings from the ``SKYSOLVE_SSH_*`` variables (see :mod:`skysolve.remote.ssh`).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from skysolve.errors import (
    ConfigurationError,
)

_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9]*=\S.*$")


class Transport(Protocol):
    """How to start a process that speaks the solve-server protocol on its stdio."""

    @property
    def name(self) -> str:
        """Names the solve host in messages."""

    @property
    def connect_failure_status(self) -> int | None:
        """The exit status meaning "could not connect" (ssh's 255), or None."""

    def argv(self) -> list[str]: ...

    def env(self) -> Mapping[str, str] | None: ...


@dataclass(frozen=True)
class SshTransport:
    """``ssh`` to a solve host, configured by the ``SKYSOLVE_SSH_*`` settings."""

    destination: str
    port: int | None = None
    identity: Path | None = None
    options: tuple[str, ...] = ()
    command: str = "skysolve solve-server"
    connect_timeout: float = 15.0
    ssh_binary: str = "ssh"
    connect_failure_status: int | None = 255

    def __post_init__(self) -> None:
        if not self.destination or self.destination.startswith("-") or " " in self.destination:
            raise ConfigurationError(
                f"SKYSOLVE_SSH_DESTINATION must be user@host, not {self.destination!r}"
            )
        for option in self.options:
            if not _OPTION.match(option):
                raise ConfigurationError(
                    f"SKYSOLVE_SSH_OPTIONS items must be Key=Value, not {option!r}"
                )

    @property
    def name(self) -> str:
        return f"solve host {self.destination}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SshTransport:
        env = os.environ if environ is None else environ
        destination = env.get("SKYSOLVE_SSH_DESTINATION", "").strip()
        if not destination:
            raise ConfigurationError("SKYSOLVE_SSH_DESTINATION (user@host) is not set")
        port = _number(env, "SKYSOLVE_SSH_PORT", int)
        if port is not None and not 0 < port < 65536:
            raise ConfigurationError(f"SKYSOLVE_SSH_PORT must be a port number, not {port}")
        timeout = _number(env, "SKYSOLVE_SSH_CONNECT_TIMEOUT", float)
        identity = env.get("SKYSOLVE_SSH_IDENTITY", "").strip()
        try:
            options = tuple(shlex.split(env.get("SKYSOLVE_SSH_OPTIONS", "")))
        except ValueError as exc:
            raise ConfigurationError(f"SKYSOLVE_SSH_OPTIONS: {exc}") from None
        return cls(
            destination=destination,
            port=port,
            identity=Path(identity) if identity else None,
            options=options,
            command=env.get("SKYSOLVE_SSH_COMMAND", "").strip() or cls.command,
            connect_timeout=timeout if timeout and timeout > 0 else cls.connect_timeout,
        )

    def argv(self) -> list[str]:
        args = [
            self.ssh_binary,
            "-T",  # no terminal: the stream is binary
            "-x",
            "-a",
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={max(1, round(self.connect_timeout))}",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=4",
            "-o",
            "LogLevel=ERROR",
        ]
        if self.port is not None:
            args += ["-p", str(self.port)]
        if self.identity is not None:
            args += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        for option in self.options:
            args += ["-o", option]
        return [*args, "--", self.destination, *shlex.split(self.command)]

    def env(self) -> Mapping[str, str] | None:
        return None


@dataclass(frozen=True)
class LocalPipeTransport:
    """``skysolve solve-server`` as a local subprocess: the protocol without ssh."""

    args: tuple[str, ...] = ()
    environ: Mapping[str, str] | None = None
    name: str = "local solve server"
    connect_failure_status: int | None = None
    python: str = field(default_factory=lambda: sys.executable)

    def argv(self) -> list[str]:
        return [self.python, "-m", "skysolve.cli.solve_server", *self.args]

    def env(self) -> Mapping[str, str] | None:
        if self.environ is None:
            return None
        return {**os.environ, **self.environ}


def _number(env: Mapping[str, str], name: str, kind: type[Any]) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
