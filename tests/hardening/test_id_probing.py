"""Guessing ids: lookups of ids that do not exist, counted per address (ratelimit.record_miss)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client
from pytest_django import DjangoAssertNumQueries

from skysolve.accounts.models import LookupMiss
from skysolve.accounts.ratelimit import forget_blocked_addresses
from skysolve.web.checks import check_settings
from tests.api.helpers import session_for, solve_all, submit_xy
from tests.jobs import job_of
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db

PROBER = "203.0.113.9"
NEIGHBOUR = "198.51.100.4"
MISSING = 1_000_000_000  # random ids are spread over 1 .. 2**31; the tests make few


@pytest.fixture
def limit(settings: Any) -> int:
    settings.SKYSOLVE_ID_MISSES_PER_HOUR = 5
    return 5


@pytest.fixture
def job_id(client: Client, fake_solver: FakeSolver) -> int:
    job = job_of(submit_xy(client, session_for("alice"), publicly_visible="n"))
    solve_all(fake_solver)
    return job.id


def probe(client: Client, n: int, ip: str = PROBER) -> list[int]:
    paths = ["/api/jobs/{}", "/api/jobs/{}/calibration", "/wcs_file/{}", "/api/submissions/{}"]
    return [
        client.get(paths[i % len(paths)].format(MISSING + i), REMOTE_ADDR=ip).status_code
        for i in range(n)
    ]


def test_it_refuses_an_address_that_guesses_ids(client: Client, limit: int, job_id: int) -> None:
    assert probe(client, limit) == [404] * limit
    refused = client.get(f"/api/jobs/{MISSING + 100}", REMOTE_ADDR=PROBER)
    assert refused.status_code == 429
    data = json.loads(refused.content)
    assert data["status"] == "error"
    assert data["errormessage"].startswith("too many lookups of ids that do not exist")
    assert 3000 < int(refused["Retry-After"]) <= 3600
    # A hit is refused too, or the answers would still tell hits from misses.
    for path in (f"/api/jobs/{job_id}/calibration", f"/wcs_file/{job_id}"):
        assert client.get(path, REMOTE_ADDR=PROBER).status_code == 429
    # Other addresses are not affected.
    assert client.get(f"/api/jobs/{job_id}", REMOTE_ADDR=NEIGHBOUR).status_code == 200
    assert client.get(f"/api/jobs/{MISSING}", REMOTE_ADDR=NEIGHBOUR).status_code == 404


def test_it_does_not_count_a_vanished_job_polled_again(client: Client, limit: int) -> None:
    """A client polling a deleted job asks for one id again and again: one miss."""
    for _ in range(limit * 4):
        assert client.get(f"/api/jobs/{MISSING}", REMOTE_ADDR=PROBER).status_code == 404
    assert LookupMiss.objects.filter(ip=PROBER).count() == 1


def test_it_costs_a_hit_no_query(
    client: Client,
    limit: int,
    job_id: int,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    probe(client, limit - 1)
    with django_assert_max_num_queries(1):
        assert client.get(f"/api/jobs/{job_id}", REMOTE_ADDR=PROBER).status_code == 200


def test_it_tells_other_processes_through_the_database(client: Client, limit: int) -> None:
    probe(client, limit + 1)
    forget_blocked_addresses()  # a process that has not seen this address yet
    assert client.get(f"/api/jobs/{MISSING + 50}", REMOTE_ADDR=PROBER).status_code == 429


def test_it_logs_the_address_once(
    client: Client, limit: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="skysolve.accounts.ratelimit"):
        probe(client, limit + 3)
    lines = [r.getMessage() for r in caplog.records if PROBER in r.getMessage()]
    assert len(lines) == 1
    assert "refusing its id lookups" in lines[0]


def test_it_counts_submission_ids_in_request_json(client: Client, limit: int) -> None:
    session = session_for("bob")
    codes = [
        client.post(
            "/api/submission_images",
            {"request-json": json.dumps({"session": session, "subid": MISSING + i})},
            REMOTE_ADDR=PROBER,
        ).status_code
        for i in range(limit + 1)
    ]
    assert codes == [404] * limit + [429]


@pytest.mark.parametrize("subid", [-(10**30), 10**30, 0])
def test_it_counts_ids_beyond_any_integer_column(client: Client, limit: int, subid: int) -> None:
    response = client.post(
        "/api/submission_images",
        {"request-json": json.dumps({"session": session_for("bob"), "subid": subid})},
        REMOTE_ADDR=PROBER,
    )
    assert response.status_code == 404
    assert LookupMiss.objects.filter(ip=PROBER).count() == 1


def test_it_exempts_staff(client: Client, limit: int, job_id: int) -> None:
    staff = session_for("root", staff=True)
    for i in range(limit * 2):
        response = client.get(f"/api/jobs/{MISSING + i}?session={staff}", REMOTE_ADDR=PROBER)
        assert response.status_code == 404
    assert client.get(f"/api/jobs/{job_id}?session={staff}", REMOTE_ADDR=PROBER).status_code == 200


def test_it_is_off_at_zero(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_ID_MISSES_PER_HOUR = 0
    assert probe(client, 20) == [404] * 20
    assert not LookupMiss.objects.exists()


def test_it_is_on_by_default(settings: Any) -> None:
    from skysolve.web import settings as defaults

    assert defaults.SKYSOLVE_ID_MISSES_PER_HOUR > 0
    settings.SKYSOLVE_ID_MISSES_PER_HOUR = -1
    assert "skysolve.E020" in [m.id for m in check_settings()]
