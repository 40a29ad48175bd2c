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

    #: Where and how to connect, as :mod:`skysolve.engine.config` read them.
    settings: SshSettings
    ssh_binary: str = "ssh"
    connect_failure_status: int | None = 255

    def __post_init__(self) -> None:
        check_ssh_destination(self.settings.destination)
        for option in self.settings.options:
            check_ssh_option(option)

    @property
    def name(self) -> str:
        return f"solve host {self.settings.destination}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SshTransport:
        """The transport of the engine configuration's ``SKYSOLVE_SSH_*`` settings."""
        return cls.from_settings(EngineConfig.from_env(environ).ssh)

    @classmethod
    def from_settings(cls, settings: SshSettings | None) -> SshTransport:
        """The transport of ``SKYSOLVE_SSH_*`` settings read by :mod:`skysolve.engine.config`."""
        if settings is None:
            raise ConfigurationError("SKYSOLVE_SSH_DESTINATION (user@host) is not set")
        return cls(settings)

    def argv(self) -> list[str]:
        ssh = self.settings
        args = [
            self.ssh_binary,
            "-T",  # no terminal: the stream is binary
            "-x",
            "-a",
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={max(1, round(ssh.connect_timeout))}",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=4",
            "-o",
            "LogLevel=ERROR",
        ]
        if ssh.port is not None:
            args += ["-p", str(ssh.port)]
        if ssh.identity is not None:
            args += ["-i", str(ssh.identity), "-o", "IdentitiesOnly=yes"]
        for option in ssh.options:
            args += ["-o", option]
        return [*args, "--", ssh.destination, *shlex.split(ssh.command)]

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
