"""How a solve reaches the solve server: over ssh, or to a local subprocess (the tests' fake).

A :class:`Transport` names the command whose stdin and stdout carry the
protocol (:mod:`skysolve.remote.protocol`); :class:`SshTransport` reads its
settings from the ``SKYSOLVE_SSH_*`` variables, read by
:mod:`skysolve.engine.config` (see :mod:`skysolve.remote.ssh`).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from skysolve.engine.config import (
    EngineConfig,
    SshSettings,
    check_ssh_destination,
    check_ssh_option,
)
from skysolve.errors import ConfigurationError


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
        check_ssh_destination(self.destination)
        for option in self.options:
            check_ssh_option(option)

    @property
    def name(self) -> str:
        return f"solve host {self.destination}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SshTransport:
        """The transport of the engine configuration's ``SKYSOLVE_SSH_*`` settings."""
        return cls.from_settings(EngineConfig.from_env(environ).ssh)

    @classmethod
    def from_settings(cls, settings: SshSettings | None) -> SshTransport:
        """The transport of ``SKYSOLVE_SSH_*`` settings read by :mod:`skysolve.engine.config`."""
        if settings is None:
            raise ConfigurationError("SKYSOLVE_SSH_DESTINATION (user@host) is not set")
        return cls(
            destination=settings.destination,
            port=settings.port,
            identity=settings.identity,
            options=settings.options,
            command=settings.command,
            connect_timeout=settings.connect_timeout,
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
