"""The system checks of the engine's and the ssh solver's settings."""

from __future__ import annotations

from typing import Any

import pytest

from skysolve.web.checks import check_engine_settings

ENGINE_VARIABLES = (
    "SKYSOLVE_SOLVER_PROCESSES",
    "SKYSOLVE_ALLSKY",
    "SKYSOLVE_SSH_PORT",
    "SKYSOLVE_SSH_CONNECT_TIMEOUT",
    "SKYSOLVE_SSH_OPTIONS",
    "SKYSOLVE_SSH_DESTINATION",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENGINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def ids() -> set[str | None]:
    return {m.id for m in check_engine_settings()}


def test_it_accepts_the_defaults() -> None:
    assert ids() == set()


def test_it_accepts_good_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYSOLVE_SOLVER_PROCESSES", "4")
    monkeypatch.setenv("SKYSOLVE_ALLSKY", "first")
    monkeypatch.setenv("SKYSOLVE_SSH_DESTINATION", "solver@sky.example")
    monkeypatch.setenv("SKYSOLVE_SSH_PORT", "2222")
    monkeypatch.setenv("SKYSOLVE_SSH_CONNECT_TIMEOUT", "5")
    monkeypatch.setenv("SKYSOLVE_SSH_OPTIONS", "StrictHostKeyChecking=yes")
    assert ids() == set()


@pytest.mark.parametrize(
    ("variable", "value", "check_id"),
    [
        ("SKYSOLVE_SOLVER_PROCESSES", "two", "skysolve.E041"),
        ("SKYSOLVE_ALLSKY", "sometimes", "skysolve.E042"),
        ("SKYSOLVE_SSH_PORT", "70000", "skysolve.E043"),
        ("SKYSOLVE_SSH_PORT", "ssh", "skysolve.E043"),
        ("SKYSOLVE_SSH_CONNECT_TIMEOUT", "soon", "skysolve.E044"),
        ("SKYSOLVE_SSH_OPTIONS", "BatchMode yes", "skysolve.E045"),
        ("SKYSOLVE_SSH_OPTIONS", "'unclosed", "skysolve.E045"),
        ("SKYSOLVE_SSH_DESTINATION", "-oProxyCommand=x", "skysolve.E046"),
    ],
)
def test_it_rejects_a_bad_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, check_id: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert ids() == {check_id}


def test_it_wants_a_destination_for_the_ssh_solver(settings: Any) -> None:
    settings.SKYSOLVE_SOLVER = "skysolve.remote.ssh.solve"
    assert ids() == {"skysolve.E046"}
