from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.api.helpers import session_for, solve_all, submit_xy
from tests.jobs import job_of
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def status(client: Client, job_id: int, session: str | None = None) -> int:
    path = f"/api/jobs/{job_id}/calibration"
    if session is not None:
        path += f"?session={session}"
    return client.get(path).status_code


@pytest.fixture
def jobs(client: Client, fake_solver: FakeSolver) -> dict[str, Any]:
    alice = session_for("alice")
    public = job_of(submit_xy(client, alice)).id
    private = job_of(submit_xy(client, alice, publicly_visible="n")).id
    solve_all(fake_solver)
    return {"alice": alice, "public": public, "private": private}


def test_it_lets_anyone_read_by_id_in_open_mode(client: Client, jobs: dict[str, Any]) -> None:
    bob = session_for("bob")
    for job_id in (jobs["public"], jobs["private"]):
        assert status(client, job_id) == 200
        assert status(client, job_id, bob) == 200
        assert status(client, job_id, jobs["alice"]) == 200


def test_it_keeps_private_jobs_to_owner_and_staff_in_strict_mode(
    client: Client, jobs: dict[str, Any], settings: Any
) -> None:
    settings.SKYSOLVE_PRIVATE_RESULTS = "strict"
    bob = session_for("bob")
    charlie = session_for("charlie", staff=True)
    assert status(client, jobs["public"]) == 200
    assert status(client, jobs["public"], bob) == 200
    assert status(client, jobs["private"]) == 404
    assert status(client, jobs["private"], bob) == 404
    assert status(client, jobs["private"], jobs["alice"]) == 200
    assert status(client, jobs["private"], charlie) == 200
    assert client.get(f"/wcs_file/{jobs['private']}").status_code == 404
    # The session may also come inside request-json, or from the web site's login.
    payload = {"request-json": json.dumps({"session": jobs["alice"]})}
    assert client.post(f"/api/jobs/{jobs['private']}", payload).status_code == 200
    client.force_login(User.objects.get(username="alice"))
    assert status(client, jobs["private"]) == 200


def test_it_lets_an_anonymous_session_read_its_own_private_job(
    client: Client, settings: Any, fake_solver: FakeSolver
) -> None:
    settings.SKYSOLVE_ALLOW_ANY_APIKEY = True
    settings.SKYSOLVE_PRIVATE_RESULTS = "strict"
    login = client.post("/api/login", {"request-json": json.dumps({"apikey": "x"})})
    anon = json.loads(login.content)["session"]
    job_id = job_of(submit_xy(client, anon, publicly_visible="n")).id
    solve_all(fake_solver)
    assert status(client, job_id) == 404
    assert status(client, job_id, anon) == 200
    assert status(client, job_id, session_for("bob")) == 404


def test_it_never_lists_private_jobs_of_others(client: Client, jobs: dict[str, Any]) -> None:
    bob = session_for("bob")
    mine = client.post("/api/myjobs", {"request-json": json.dumps({"session": bob})})
    assert json.loads(mine.content)["jobs"] == []
    tagged = json.loads(client.get("/api/jobs_by_tag?query=M").content)["job_ids"]
    assert jobs["private"] not in tagged and jobs["public"] in tagged
