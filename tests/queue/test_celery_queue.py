"""Celery mode end to end: web host with dispatcher, `skysolve worker` processes, real broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.queue.cluster import Cluster, celery_env
from tests.services import RABBITMQ_URL, REDIS_URL, require_service

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_it_solves_through_the_broker(tmp_path: Path, broker: str) -> None:
    require_service("postgresql")
    require_service("redis")
    require_service(broker)
    url = REDIS_URL if broker == "redis" else RABBITMQ_URL
    cluster = Cluster(tmp_path, **celery_env(url), SKYSOLVE_DISPATCH_SLOTS="2")
    try:
        cluster.start_web(workers=1)
        # The worker gets its own empty data directory: nothing is shared but the broker.
        cluster.start(
            "worker", "worker", "--concurrency", "2", SKYSOLVE_DATA_DIR=str(tmp_path / "w")
        )
        alice, bob = cluster.session("alice"), cluster.session("bob")
        cluster.submit_xy(alice, 4)
        cluster.submit_xy(bob, 2)
        cluster.wait_finished(6)
        assert cluster.statuses() == ["success"] * 6
        job_id = cluster.jobs()[0][0]
        files = {p.name for p in (cluster.data_dir / "jobs" / str(job_id)).iterdir()}
        assert {"wcs.fits", "new.fits", "solve.log", "annotated_display.png"} <= files
        assert not (tmp_path / "w" / "jobs").exists()
        ra = cluster.query("SELECT ra FROM submissions_job WHERE id = %s", job_id)
        assert ra[0][0] == pytest.approx(169.966)
    finally:
        cluster.close()


@pytest.mark.parametrize(("code", "attempts"), [("solver_failed", 2), ("no_match", 1)])
def test_it_retries_only_retryable_errors(tmp_path: Path, code: str, attempts: int) -> None:
    require_service("postgresql")
    require_service("redis")
    cluster = Cluster(tmp_path, **celery_env(), SKYSOLVE_MAX_ATTEMPTS="2")
    try:
        cluster.start_web(workers=1)
        cluster.start("worker", "worker", "--concurrency", "1", SKYSOLVE_FAKE_ERROR=code)
        cluster.submit_xy(cluster.session(), 1)
        cluster.wait_finished(1)
        [(_, status, tries, error_code, _)] = cluster.jobs()
        assert (status, tries, error_code) == ("failure", attempts, code)
    finally:
        cluster.close()


def test_it_serves_users_round_robin(tmp_path: Path) -> None:
    require_service("postgresql")
    require_service("redis")
    cluster = Cluster(tmp_path, **celery_env(), SKYSOLVE_DISPATCH_SLOTS="1")
    try:
        cluster.start_web(workers=1)
        alice, bob = cluster.session("alice"), cluster.session("bob")
        alice_jobs = cluster.submit_xy(alice, 4)
        bob_jobs = cluster.submit_xy(bob, 1)
        # The worker starts only now: the one slot holds alice's first job, and
        # the broker holds nothing else; the next job picked is bob's.
        cluster.start("worker", "worker", "--concurrency", "1")
        cluster.wait_finished(5)
        order = cluster.query(
            "SELECT u.submission_id FROM submissions_job j JOIN submissions_userimage u"
            " ON j.user_image_id = u.id ORDER BY j.started_at"
        )
        assert [row[0] for row in order] == [alice_jobs[0], bob_jobs[0], *alice_jobs[1:]]
    finally:
        cluster.close()


def test_it_wakes_the_dispatcher_when_a_job_is_queued(tmp_path: Path) -> None:
    require_service("postgresql")
    require_service("redis")
    # An idle slot would look at the table only once an hour: the job can
    # only be sent because the submission rang the dispatcher through Redis.
    cluster = Cluster(tmp_path, **celery_env(), SKYSOLVE_DISPATCH_POLL_SECONDS="3600")
    try:
        cluster.start_web(workers=1)
        cluster.start("worker", "worker", "--concurrency", "1")
        cluster.wait_for(lambda: "listening for queued jobs" in cluster.log("web"), "the bell")
        cluster.wait_for(lambda: " ready." in cluster.log("worker"), "the worker")
        for count in (1, 2):  # the second one finds the slot idle again
            cluster.submit_xy(cluster.session(), 1)
            cluster.wait_finished(count)
        assert cluster.statuses() == ["success"] * 2
    finally:
        cluster.close()


def test_a_large_image_keeps_its_header_hints_and_gets_its_pictures(tmp_path: Path) -> None:
    """Above the task's size cap an image stays on the web host; only its sources travel.

    Its header's pointing and scale travel with them (the solve is not blind),
    and its pictures are drawn on the web host, on the image itself: at
    2100 px wide the worker, which never sees the pixels, draws none.
    """
    from skysolve.engine.solving.fastpath import default_db_path
    from tests.gates import require_file
    from tests.queue.test_transfer import hinted_fits

    require_file(default_db_path(), "make setup (skysolve db build)")
    require_service("postgresql")
    require_service("redis")
    image = hinted_fits(tmp_path / "big.fits", width=2100, height=1400)
    cluster = Cluster(tmp_path, **celery_env(), SKYSOLVE_TASK_MAX_FILE_MB="1")
    try:
        cluster.start_web(workers=1)
        cluster.start(
            "worker", "worker", "--concurrency", "1",
            SKYSOLVE_SOLVER="skysolve.engine.pipeline.solve",
            SKYSOLVE_DATA_DIR=str(tmp_path / "w"),
        )  # fmt: skip
        payload = {"session": cluster.session(), "publicly_visible": "n"}
        answer = requests.post(
            f"{cluster.url}/api/upload",
            data={"request-json": json.dumps(payload)},
            files={"file": ("big.fits", image.read_bytes())},
            timeout=60,
        ).json()
        assert answer["status"] == "success", answer
        cluster.wait_finished(1)
        [(job_id, status, _, _, _)] = cluster.jobs()
        assert status == "success", cluster.log("web") + cluster.log("worker")
        [(result,)] = cluster.query("SELECT result FROM submissions_job WHERE id = %s", job_id)
        result = json.loads(result) if isinstance(result, str) else result
        assert "RA/DEC keywords" in result["hints"]["sources"], result["hints"]
        assert "PIXSCALE keyword" in result["hints"]["sources"], result["hints"]
        files = {p.name for p in (cluster.data_dir / "jobs" / str(job_id)).iterdir()}
        assert {"annotated_display.jpg", "annotated_full.jpg"} <= files, files
        assert "extraction_display.png" in files, files
    finally:
        cluster.close()
