"""A worker says at start when it has no fast-path database (it still solves, slower),
or one whose stars an older skysolve made (make setup rebuilds it)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from skysolve.queue.worker import warm_up


def test_it_logs_a_missing_fastpath_database_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "nowhere" / "default.t3db"
    monkeypatch.setenv("SKYSOLVE_FASTPATH_DB", str(missing))
    with caplog.at_level(logging.WARNING, logger="skysolve.queue.worker"):
        warm_up()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no fast-path database" in w and str(missing) in w for w in warnings), warnings


def test_it_says_nothing_when_the_database_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from skysolve.engine.solving.fastpath import build_database

    db = build_database(tmp_path / "db.t3db", min_fov=50, max_fov=60, bands=()).path
    monkeypatch.setenv("SKYSOLVE_FASTPATH_DB", str(db))
    with caplog.at_level(logging.WARNING, logger="skysolve.queue.worker"):
        warm_up()
    assert not [r for r in caplog.records if "fast-path" in r.getMessage()]


def test_it_logs_a_database_whose_stars_an_older_skysolve_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import numpy as np

    from skysolve.engine.solving.fastpath import build_database, stars_path

    db = build_database(tmp_path / "db.t3db", min_fov=50, max_fov=60, bands=()).path
    with np.load(stars_path(db)) as npz:
        old = {name: npz[name] for name in ("ra", "dec", "mag", "catalogue")}
    np.savez(stars_path(db), **old)  # no stamp, as before December 2026
    monkeypatch.setenv("SKYSOLVE_FASTPATH_DB", str(db))
    with caplog.at_level(logging.WARNING, logger="skysolve.queue.worker"):
        warm_up()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("older skysolve" in w and "skysolve db build" in w for w in warnings), warnings
