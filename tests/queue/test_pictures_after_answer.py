"""A client that fetches the picture right after `success` (as NINA once did) gets it.

Real processes: the answer is recorded before the pictures are drawn (here
they take 2 s), and the picture URL waits for them instead of answering 404.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.queue.cluster import Cluster, celery_env
from tests.services import require_service

pytestmark = [pytest.mark.slow, pytest.mark.services]


def fetch_right_after_success(cluster: Cluster) -> None:
    [subid] = cluster.submit_xy(cluster.session(), 1)
    give_up = time.monotonic() + 60
    job_id = None
    while time.monotonic() < give_up:
        jobs = requests.get(f"{cluster.url}/api/submissions/{subid}", timeout=10).json()["jobs"]
        if jobs and jobs[0] is not None:
            job_id = jobs[0]
            if requests.get(f"{cluster.url}/api/jobs/{job_id}", timeout=10).json() == {
                "status": "success"
            }:
                break
        time.sleep(0.01)
    else:
        raise AssertionError(f"no success: {cluster.jobs()}")
    # The answer came before the pictures: they are still being drawn now.
    [(stage,)] = cluster.query("SELECT stage FROM submissions_job")
    assert stage == "pictures"
    calibration = requests.get(f"{cluster.url}/api/jobs/{job_id}/calibration", timeout=10).json()
    assert calibration["ra"] == pytest.approx(169.966, abs=0.01)
    picture = requests.get(f"{cluster.url}/annotated_display/{job_id}", timeout=30)
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    [(stage,)] = cluster.query("SELECT stage FROM submissions_job")
    assert stage == "finished"


def test_it_serves_the_picture_asked_for_right_after_success(tmp_path: Path) -> None:
    require_service("postgresql")
    cluster = Cluster(tmp_path, SKYSOLVE_FAKE_PICTURE_SLEEP="2")
    try:
        cluster.start_web(workers=1)
        fetch_right_after_success(cluster)
    finally:
        cluster.close()


def test_it_records_the_celery_answer_before_the_pictures(tmp_path: Path) -> None:
    require_service("postgresql")
    require_service("redis")
    cluster = Cluster(tmp_path, **celery_env(), SKYSOLVE_FAKE_PICTURE_SLEEP="2")
    try:
        cluster.start_web(workers=1)  # the dispatcher
        cluster.start("celery", "worker", "--concurrency", "1")
        fetch_right_after_success(cluster)
    finally:
        cluster.close()
