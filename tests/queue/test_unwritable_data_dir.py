"""A data directory that cannot take results: the job fails clearly, the worker carries on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.queue.cluster import Cluster
from tests.services import require_service

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_it_fails_the_job_and_keeps_serving(tmp_path: Path) -> None:
    require_service("postgresql")
    cluster = Cluster(tmp_path)
    try:
        cluster.start_web()
        worker = cluster.start("worker", "worker")
        session = cluster.session()
        # A file where the jobs directory belongs: no mkdir below it can work,
        # whoever the tests run as (root ignores permission bits).
        jobs = cluster.data_dir / "jobs"
        shutil.rmtree(jobs, ignore_errors=True)
        jobs.write_text("not a directory")
        cluster.submit_xy(session, 1)
        cluster.wait_finished(1)
        [(_, status, attempts, error_code, _)] = cluster.jobs()
        assert (status, attempts, error_code) == ("failure", 1, "storage")
        message = cluster.query("SELECT error_message FROM submissions_job")[0][0]
        assert "cannot be stored" in message
        assert worker.poll() is None
        jobs.unlink()
        cluster.submit_xy(session, 1)
        cluster.wait_finished(2)
        assert cluster.statuses() == ["failure", "success"]
    finally:
        cluster.close()
