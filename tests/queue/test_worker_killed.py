"""A worker killed with SIGKILL in the middle of a solve: the job finishes, same id, once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.queue.cluster import Cluster, celery_env
from tests.services import require_service

pytestmark = [pytest.mark.slow, pytest.mark.services]


def held_solves(tmp_path: Path) -> Path:
    """The gate that keeps every solve going until the test removes it."""
    gate = tmp_path / "solve-gate"
    gate.write_text("held")
    return gate


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    require_service("postgresql")
    gate = held_solves(tmp_path)
    cluster = Cluster(tmp_path, SKYSOLVE_LEASE_SECONDS="5", SKYSOLVE_FAKE_GATE=str(gate))
    try:
        yield cluster
    finally:
        gate.unlink(missing_ok=True)
        cluster.close()


def test_it_finishes_the_job_of_a_killed_embedded_worker(cluster: Cluster) -> None:
    cluster.start_web()
    doomed = cluster.start("doomed", "worker")
    [subid] = cluster.submit_xy(cluster.session(), 1)
    cluster.wait_for(lambda: cluster.statuses() == ["running"], "the worker to start the job")
    [(job_id, _, _, _, worker_id)] = cluster.jobs()
    assert f":{doomed.pid}:" in worker_id
    cluster.stop(doomed, signal.SIGKILL)  # in the middle of the solve: it is held
    (cluster.tmp / "solve-gate").unlink()
    cluster.start("survivor", "worker")
    cluster.wait_finished(1)
    [(same_id, status, attempts, _, survivor_id)] = cluster.jobs()
    assert (same_id, status, attempts) == (job_id, "success", 2)
    assert f":{doomed.pid}:" not in survivor_id
    # One result: one set of files, machine tags once.
    files = sorted(p.name for p in (cluster.data_dir / "jobs" / str(job_id)).iterdir())
    assert files == sorted(
        ["solve.log", "wcs.fits", "new.fits", "annotated_display.png",
         "red_green_display.png", "annotated_full.jpg"]
    )  # fmt: skip
    tags = cluster.query(
        "SELECT count(*) FROM submissions_taggeduserimage t JOIN submissions_userimage u"
        " ON t.user_image_id = u.id WHERE u.submission_id = %s",
        subid,
    )
    assert tags == [(2,)]


def test_it_finishes_the_job_of_a_killed_celery_worker(tmp_path: Path) -> None:
    require_service("postgresql")
    require_service("redis")
    gate = held_solves(tmp_path)
    cluster = Cluster(
        tmp_path, **celery_env(), SKYSOLVE_LEASE_SECONDS="5", SKYSOLVE_FAKE_GATE=str(gate)
    )
    try:
        cluster.start_web(workers=1)  # the dispatcher
        doomed = cluster.start("doomed", "worker", "--concurrency", "1")
        [subid] = cluster.submit_xy(cluster.session(), 1)
        cluster.wait_for(lambda: "solving (task" in cluster.log("doomed"), "a worker to start")
        cluster.stop(doomed, signal.SIGKILL)  # the whole worker: main process and child
        gate.unlink()
        cluster.start("survivor", "worker", "--concurrency", "1")
        cluster.wait_finished(1)
        [(job_id, status, attempts, _, _)] = cluster.jobs()
        # The dispatcher kept the job (one attempt) and sent the task again.
        assert (status, attempts) == ("success", 1)
        assert "solving (task" in cluster.log("survivor")
        files = {p.name for p in (cluster.data_dir / "jobs" / str(job_id)).iterdir()}
        assert {"wcs.fits", "new.fits", "solve.log"} <= files
        assert not any(name.endswith(".part") for name in files)
        tags = cluster.query(
            "SELECT count(*) FROM submissions_taggeduserimage t JOIN submissions_userimage u"
            " ON t.user_image_id = u.id WHERE u.submission_id = %s",
            subid,
        )
        assert tags == [(2,)]
    finally:
        gate.unlink(missing_ok=True)
        cluster.close()
