from __future__ import annotations

import pytest

from skysolve.cli import build_parser, main


def test_it_is_a_sub_command() -> None:
    args = build_parser().parse_args(["worker", "--concurrency", "3"])
    assert (args.concurrency, args.dispatcher) == (3, False)


def test_it_refuses_a_dispatcher_in_embedded_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SKYSOLVE_QUEUE", "embedded")
    monkeypatch.setenv("SKYSOLVE_DATA_DIR", str(tmp_path))
    assert main(["worker", "--dispatcher"]) == 2
    assert "SKYSOLVE_QUEUE=celery" in capsys.readouterr().out
