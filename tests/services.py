"""Tests that need PostgreSQL, Redis or RabbitMQ use the real service, or say loudly why not.

When a service is unreachable the test is skipped with a reason naming it,
unless ``SKYSOLVE_REQUIRE_SERVICES=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import os

import pytest

from tests.check_services import SERVICES, reachable

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def require_service(name: str) -> None:
    """Skip (or fail under SKYSOLVE_REQUIRE_SERVICES=1) unless ``name`` is reachable."""
    host, port = SERVICES[name]
    if reachable(host, port):
        return
    reason = f"*** {name} is NOT reachable on {host}:{port}: this test did not run ***"
    if os.environ.get("SKYSOLVE_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + " (SKYSOLVE_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)
