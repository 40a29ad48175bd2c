"""Restarting `skysolve serve` (embedded workers) during a burst of 50 star lists loses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.queue.cluster import Cluster
from tests.services import require_service

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_it_finishes_every_job_across_a_restart(tmp_path: Path) -> None:
    require_service("postgresql")
    cluster = Cluster(tmp_path, SKYSOLVE_FAKE_SLEEP="0.1")
    try:
        web = cluster.start_web(workers=2)
        session = cluster.session()
        subids = cluster.submit_xy(session, 30)
        cluster.wait_for(
            lambda: cluster.statuses().count("success") >= 5, "the first jobs to finish"
        )
        cluster.stop(web)  # SIGTERM: the workers finish their current job and stop
        left = cluster.statuses()
        assert "success" in left and "queued" in left
        cluster.start_web(workers=2)
        subids += cluster.submit_xy(session, 20)  # the rest of the burst
        cluster.wait_finished(50)
        assert cluster.statuses() == ["success"] * 50
        assert len(set(subids)) == 50
        # Every job was started once: the restart requeued nothing half-done.
        assert {job[2] for job in cluster.jobs()} == {1}
    finally:
        cluster.close()


def test_it_leaves_a_separate_workers_job_alone_across_a_restart(tmp_path: Path) -> None:
    """`serve` restarted mid-solve: the separate worker's job finishes once, same attempt."""
    require_service("postgresql")
    gate = tmp_path / "solve-gate"  # the solve lasts until the restarts are done
    gate.write_text("held")
    cluster = Cluster(tmp_path, SKYSOLVE_FAKE_GATE=str(gate))
    try:
        web = cluster.start_web(workers=1)
        separate = cluster.start("separate", "worker")
        cluster.stop(web)  # only the separate worker is left to take the job
        web = cluster.start_web(workers=0)
        cluster.submit_xy(cluster.session(), 1)
        cluster.wait_for(lambda: cluster.statuses() == ["running"], "the worker to start")
        [(job_id, _, _, _, holder)] = cluster.jobs()
        assert f":{separate.pid}:" in holder
        [(started,)] = cluster.query("SELECT started_at FROM submissions_job")
        cluster.stop(web)
        # The restarted serve has a worker of its own that would take a requeued job.
        cluster.start_web(workers=1)
        gate.unlink()
        cluster.wait_finished(1)
        assert cluster.jobs() == [(job_id, "success", 1, "", holder)]
        # Never queued again: started once, when the separate worker claimed it.
        assert cluster.query("SELECT started_at FROM submissions_job") == [(started,)]
        assert cluster.log("separate").count(f"job {job_id} ") == 2  # started, success
    finally:
        gate.unlink(missing_ok=True)
        cluster.close()
