"""PostgreSQL out of reach until the workers notice: they wait, then carry on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.queue.cluster import Cluster, database_url
from tests.queue.tcpproxy import TcpProxy
from tests.services import require_service

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_it_waits_for_the_database_and_carries_on(tmp_path: Path) -> None:
    require_service("postgresql")
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.start()
    cluster = Cluster(tmp_path, SKYSOLVE_FAKE_SLEEP="0.5")
    try:
        cluster.start_web()  # the web server talks to PostgreSQL directly
        through_proxy = database_url(cluster.db_name, port=proxy.port)
        workers = [
            cluster.start(f"worker{i}", "worker", DATABASE_URL=through_proxy) for i in range(2)
        ]
        cluster.submit_xy(cluster.session(), 12)
        cluster.wait_for(lambda: cluster.statuses().count("success") >= 2, "the first jobs")
        proxy.stop()
        # The outage lasts until the workers have run into it (it is in their logs).
        cluster.wait_for(
            lambda: "database unavailable" in cluster.log("worker0") + cluster.log("worker1"),
            "a worker to find the database unavailable",
        )
        cluster.submit_xy(cluster.session(), 4)  # submissions go on meanwhile
        proxy.start()
        cluster.wait_finished(16)
        assert cluster.statuses() == ["success"] * 16
        assert all(w.poll() is None for w in workers)
    finally:
        proxy.stop()
        cluster.close()
