"""Property-based fuzzing of every API operation of /api/openapi.json.

Every answer must be 200 or 4xx (never 5xx), every error nova's JSON shape,
and the service must keep serving afterwards: first through the Django test
client (hundreds of requests a second), then a smaller sample against a real
``skysolve serve`` (gunicorn) to show the real server survives them too.

Run longer with ``SKYSOLVE_FUZZ_PROFILE=long`` (50 times the examples, random
seeds) and/or ``SKYSOLVE_FUZZ_EXAMPLES=N``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client
from hypothesis import given

from skysolve.api.openapi import build
from tests.api.helpers import session_for, solve_all, submit_xy
from tests.hardening.fuzzing import (
    FuzzRequest,
    Known,
    any_request,
    check_answer,
    fixed_requests,
    fuzz_settings,
    operations,
    storable_submission,
    submission_requests,
)
from tests.jobs import job_of
from tests.liveserver import LiveServer, start_server
from tests.webfixtures import FakeSolver


def send_django(client: Client, request: FuzzRequest) -> None:
    response = client.generic(
        request.method,
        request.path,
        data=request.body,
        content_type=request.content_type or "application/octet-stream",
    )
    # Reading a streamed answer to its end closes it (the test client's own
    # close; closing it again would close the database connection).
    body = b"".join(response) if response.streaming else response.content
    check_answer(request, response.status_code, response.get("Content-Type", ""), body)


def assert_still_serving(client: Client, session: str) -> None:
    subid = submit_xy(client, session)
    answer = json.loads(client.get(f"/api/submissions/{subid}").content)
    assert answer["user"] is not None and answer["jobs"]


@pytest.fixture
def client() -> Client:
    """CSRF enforced as in production: every API URL must be exempt from it."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def known(client: Client, fake_solver: FakeSolver, settings: Any) -> Known:
    settings.SKYSOLVE_RATE_LIMIT_USER_PER_HOUR = 0
    settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR = 0
    session = session_for("alice")
    solved = job_of(submit_xy(client, session)).id
    private = job_of(submit_xy(client, session, publicly_visible="n")).id
    solve_all(fake_solver)
    subid = job_of(submit_xy(client, session)).user_image.submission.id
    return Known(session=session, ids=(solved, private, subid))


def test_it_documents_operations_to_fuzz(client: Client) -> None:
    spec = json.loads(client.get("/api/openapi.json").content)
    ops = operations(spec)
    assert {op.path for op in ops} == set(spec["paths"])
    assert any(op.method == "POST" and op.body_types for op in ops)


@pytest.mark.django_db
def test_it_answers_every_operation_the_same_hostile_inputs(client: Client, known: Known) -> None:
    spec = build()
    fixed = fixed_requests(spec, known)
    assert len(fixed) > 30 * len(spec["paths"])
    for request in fixed:
        send_django(client, request)
    assert_still_serving(client, known.session)


@pytest.mark.django_db
def test_it_never_answers_5xx_or_another_error_shape(client: Client, known: Known) -> None:
    spec = build()

    @fuzz_settings(600)
    @given(any_request(spec, known))
    def fuzz(request: FuzzRequest) -> None:
        send_django(client, request)

    fuzz()
    assert_still_serving(client, known.session)


@pytest.mark.django_db
def test_it_stores_or_refuses_any_submission(client: Client, known: Known) -> None:
    stored = []

    @fuzz_settings(300)
    @given(submission_requests(known))
    def fuzz(request: FuzzRequest) -> None:
        response = client.generic(
            request.method, request.path, data=request.body, content_type=request.content_type
        )
        check_answer(request, response.status_code, response["Content-Type"], response.content)
        ok = json.loads(response.content)["status"] == "success"
        # Junk in keys the service ignores is stored; what it cannot store
        # (NaN, NUL, a lone surrogate) is refused, never half-stored.
        assert request.json_text is not None
        storable = storable_submission(request.json_text)
        if request.well_formed:
            assert ok == storable, (request, response.content[:300])
        else:
            # A line break in a part's header: refused as a bad body, or read up to it.
            assert not ok or storable, (request, response.content[:300])
            assert ok or b"bad multipart body" in response.content, response.content[:300]
        stored.append(ok)

    fuzz()
    # Both kinds came up (how many of each is the generator's business).
    assert 0 < sum(stored) < len(stored), (sum(stored), len(stored))
    assert_still_serving(client, known.session)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_server(tmp_path_factory.mktemp("fuzz"), "tests.webfixtures.fake_solve")


#: gunicorn (like nginx) refuses longer request lines itself, with its own page.
GUNICORN_MAX_REQUEST_LINE = 4094


def send_live(server: LiveServer, request: FuzzRequest) -> None:
    headers = {} if request.content_type is None else {"Content-Type": request.content_type}
    response = requests.request(
        request.method, server.url + request.path, data=request.body, headers=headers, timeout=60
    )
    too_long = len(f"{request.method} {request.path} HTTP/1.1") > GUNICORN_MAX_REQUEST_LINE
    bad_header = any(ord(c) < 32 for c in request.content_type or "")
    if too_long or bad_header:
        # Not HTTP gunicorn accepts: it answers 400 itself, the service never sees it.
        assert response.status_code in (400, 414), (request, response.status_code)
        return
    check_answer(request, response.status_code, response.headers.get("Content-Type", ""),
                 response.content)  # fmt: skip


def live_login(server: LiveServer) -> str:
    answer = requests.post(
        server.url + "/api/login",
        data={"request-json": json.dumps({"apikey": server.apikey})},
        timeout=60,
    ).json()
    assert answer["status"] == "success", answer
    return str(answer["session"])


@pytest.mark.slow
def test_it_keeps_a_real_server_serving(live: LiveServer, tmp_path: Path) -> None:
    session = live_login(live)
    submitted = requests.post(
        live.url + "/api/url_upload",
        data={"request-json": json.dumps({"session": session, "x": [1.0, 2.0], "y": [3.0, 4.0]})},
        timeout=60,
    ).json()
    known = Known(session=session, ids=(int(submitted["subid"]), 1, 2))
    spec = requests.get(live.url + "/api/openapi.json", timeout=60).json()

    @fuzz_settings(60)
    @given(any_request(spec, known))
    def fuzz(request: FuzzRequest) -> None:
        send_live(live, request)

    fuzz()
    for request in fixed_requests(spec, known)[::20]:
        send_live(live, request)
    # Still serving: a new login, a new submission and its status.
    again = live_login(live)
    answer = requests.post(
        live.url + "/api/url_upload",
        data={"request-json": json.dumps({"session": again, "x": [1.0], "y": [2.0]})},
        timeout=60,
    ).json()
    assert answer["status"] == "success", answer
    status = requests.get(f"{live.url}/api/submissions/{answer['subid']}", timeout=60)
    assert status.status_code == 200 and "jobs" in status.json()
