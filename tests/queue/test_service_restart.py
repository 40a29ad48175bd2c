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
