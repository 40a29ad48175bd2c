from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from skysolve.queue.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fastpath_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A present fast-path database (its two files), whatever this machine has."""
    db = tmp_path / "fp" / "default.t3db"
    db.parent.mkdir()
    db.write_bytes(b"db")
    db.with_name("default.t3db.stars.npz").write_bytes(b"stars")
    monkeypatch.setenv("SKYSOLVE_FASTPATH_DB", str(db))
    return db


def beat(worker_id: str, kind: str, seconds_ago: float = 0.0) -> None:
    when = timezone.now() - timedelta(seconds=seconds_ago)
    WorkerHeartbeat.objects.create(
        worker_id=worker_id, kind=kind, host="h", pid=1, started_at=when, last_seen=when
    )


def test_it_is_healthy_with_a_database(client: Client) -> None:
    beat("w1", WorkerHeartbeat.EMBEDDED)
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "workers": "ok",
        "fastpath": "ok",
    }


def test_it_stays_in_rotation_without_workers(client: Client) -> None:
    # The site still takes submissions and serves results: only a monitor should page.
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "workers": "degraded",
        "fastpath": "ok",
    }


def test_it_answers_503_without_a_database(client: Client) -> None:
    with mock.patch("django.db.backends.utils.CursorWrapper.execute") as execute:
        execute.side_effect = OperationalError("connection refused")
        response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


def test_it_only_answers_get(client: Client) -> None:
    assert client.post("/health").status_code == 405
    assert client.post("/health/workers").status_code == 405


def test_it_reports_workers_for_monitors(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_HEARTBEAT_SECONDS = 10
    beat("w1", WorkerHeartbeat.EMBEDDED, seconds_ago=5)
    beat("w2", WorkerHeartbeat.EMBEDDED, seconds_ago=31)  # three beats missed: gone
    response = client.get("/health/workers")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "alive": {"embedded": 1, "dispatcher": 0, "celery": 0},
        "missing": [],
    }


def test_it_answers_503_when_no_worker_is_alive(client: Client) -> None:
    beat("gone", WorkerHeartbeat.EMBEDDED, seconds_ago=3600)
    response = client.get("/health/workers/")
    assert response.status_code == 503
    assert response.json()["missing"] == ["embedded"]


def test_it_needs_a_dispatcher_and_a_celery_worker_in_celery_mode(
    client: Client, settings: Any
) -> None:
    settings.SKYSOLVE_QUEUE = "celery"
    beat("d", WorkerHeartbeat.DISPATCHER)
    beat("e", WorkerHeartbeat.EMBEDDED)  # not what celery mode uses
    response = client.get("/health/workers")
    assert response.status_code == 503
    assert response.json()["missing"] == ["celery"]
    beat("c", WorkerHeartbeat.CELERY)
    assert client.get("/health/workers").status_code == 200


def test_it_reports_and_logs_a_missing_fastpath_database(
    client: Client,
    fastpath_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    beat("w1", WorkerHeartbeat.EMBEDDED)
    missing = fastpath_db.with_name("other.t3db")
    monkeypatch.setenv("SKYSOLVE_FASTPATH_DB", str(missing))
    with caplog.at_level(logging.WARNING, logger="skysolve.ops.health"):
        first = client.get("/health")
        second = client.get("/health")
    # Slower, not broken: the web process stays in rotation.
    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["fastpath"] == "missing" and first.json()["workers"] == "ok"
    warnings = [r.getMessage() for r in caplog.records if "fast-path" in r.getMessage()]
    assert len(warnings) == 1 and str(missing) in warnings[0]


def test_it_reports_and_logs_a_database_whose_stars_an_older_skysolve_made(
    client: Client, fastpath_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import numpy as np

    stars = fastpath_db.with_name("default.t3db.stars.npz")
    with open(stars, "wb") as fh:  # unstamped, as before the stamp
        np.savez(fh, ra=np.zeros(1), dec=np.zeros(1), mag=np.zeros(1), catalogue=np.array("gaia"))
    with caplog.at_level(logging.WARNING, logger="skysolve.ops.health"):
        response = client.get("/health")
    assert response.status_code == 200 and response.json()["fastpath"] == "outdated"
    assert any("skysolve db build" in r.getMessage() for r in caplog.records)
    with open(stars, "wb") as fh:
        np.savez(fh, catalogue=np.array("gaia"), stars_version=np.array(2), epoch=np.array(2016.0))
    assert client.get("/health").json()["fastpath"] == "ok"


def test_it_sees_a_database_without_its_star_file_as_missing(
    client: Client, fastpath_db: Path
) -> None:
    fastpath_db.with_name("default.t3db.stars.npz").unlink()
    assert client.get("/health").json()["fastpath"] == "missing"
