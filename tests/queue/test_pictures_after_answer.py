"""A client that fetches the picture right after `success` (as NINA once did) gets it.

Real processes: the answer is recorded before the pictures are drawn, and the
picture URL waits for them instead of answering 404.  The fake solver holds
the pictures on a gate file (SKYSOLVE_FAKE_PICTURE_GATE) until the test has
seen the job at `success` in stage `pictures` and has sent its request for the
picture; only then are they drawn.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.queue.cluster import Cluster, celery_env
from tests.services import require_service
from tests.waiting import finished_job

pytestmark = [pytest.mark.slow, pytest.mark.services]


def fetch(url: str, sent: threading.Event) -> tuple[int, bytes]:
    """GET ``url``; ``sent`` is set once the whole request has gone out."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        connection.request("GET", parts.path)
        sent.set()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def fetch_right_after_success(cluster: Cluster, gate: Path) -> None:
    [subid] = cluster.submit_xy(cluster.session(), 1)
    job_id, _ = finished_job(
        lambda path: requests.get(cluster.url + path, timeout=10).json(),
        subid,
        statuses=("success",),
        patience=60.0,
        interval=0.01,
    )
    # The answer came before the pictures: they wait on the gate now.
    [(stage,)] = cluster.query("SELECT stage FROM submissions_job")
    assert stage == "pictures"
    calibration = requests.get(f"{cluster.url}/api/jobs/{job_id}/calibration", timeout=10).json()
    assert calibration["ra"] == pytest.approx(169.966, abs=0.01)
    sent = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        picture: Future[tuple[int, bytes]] = pool.submit(
            fetch, f"{cluster.url}/annotated_display/{job_id}", sent
        )
        assert sent.wait(30), "the request for the picture never went out"
        gate.unlink()  # asked for while still being drawn: now let them be drawn
        status, content = picture.result(timeout=60)
    assert status == 200 and content.startswith(b"\x89PNG")
    [(stage,)] = cluster.query("SELECT stage FROM submissions_job")
    assert stage == "finished"


def held_pictures(tmp_path: Path) -> Path:
    gate = tmp_path / "picture-gate"
    gate.write_text("held")
    return gate


def test_it_serves_the_picture_asked_for_right_after_success(tmp_path: Path) -> None:
    require_service("postgresql")
    gate = held_pictures(tmp_path)
    cluster = Cluster(tmp_path, SKYSOLVE_FAKE_PICTURE_GATE=str(gate))
    try:
        cluster.start_web(workers=1)
        fetch_right_after_success(cluster, gate)
    finally:
        gate.unlink(missing_ok=True)
        cluster.close()


def test_it_records_the_celery_answer_before_the_pictures(tmp_path: Path) -> None:
    require_service("postgresql")
    require_service("redis")
    gate = held_pictures(tmp_path)
    cluster = Cluster(tmp_path, **celery_env(), SKYSOLVE_FAKE_PICTURE_GATE=str(gate))
    try:
        cluster.start_web(workers=1)  # the dispatcher
        cluster.start("celery", "worker", "--concurrency", "1")
        fetch_right_after_success(cluster, gate)
    finally:
        gate.unlink(missing_ok=True)
        cluster.close()
