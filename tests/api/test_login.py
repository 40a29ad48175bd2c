from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from skysolve.accounts.models import ApiSession
from skysolve.submissions.services import create_api_key

pytestmark = pytest.mark.django_db


def post(client: Client, path: str, payload: object) -> dict:
    response = client.post(path, {"request-json": json.dumps(payload)})
    assert response["Content-Type"] == "text/plain"
    return json.loads(response.content)


def test_it_logs_in_with_an_api_key(client: Client) -> None:
    key = create_api_key("alice", email="alice@example.org")
    data = post(client, "/api/login", {"apikey": key.key})
    assert data["status"] == "success"
    assert data["message"] == "authenticated user: alice@example.org"
    session = ApiSession.objects.get(key=data["session"])
    assert session.user is not None and session.user.username == "alice"
    assert session.expires - session.created >= timedelta(days=14)


def test_it_accepts_a_trailing_slash_and_a_referer(client: Client) -> None:
    key = create_api_key("alice")
    response = client.post(
        "/api/login/",
        {"request-json": json.dumps({"apikey": key.key})},
        HTTP_REFERER="http://testserver/api/login",
    )
    assert json.loads(response.content)["message"] == "authenticated user: alice"


def test_it_rejects_a_bad_key(client: Client) -> None:
    assert post(client, "/api/login", {"apikey": "nope"}) == {
        "status": "error",
        "errormessage": "bad apikey",
    }


def test_it_needs_an_apikey(client: Client) -> None:
    assert post(client, "/api/login", {})["errormessage"] == 'need "apikey"'


def test_it_needs_json(client: Client) -> None:
    response = client.post("/api/login", {})
    assert json.loads(response.content)["errormessage"] == "no json"


def test_it_reports_unparseable_json(client: Client) -> None:
    response = client.post("/api/login", {"request-json": "{oops"})
    assert json.loads(response.content)["errormessage"] == 'failed to parse JSON: "{oops"'


def test_it_accepts_any_key_when_allowed(client: Client, settings: object) -> None:
    settings.SKYSOLVE_ALLOW_ANY_APIKEY = True  # type: ignore[attr-defined]
    data = post(client, "/api/login", {"apikey": "whatever"})
    assert data["message"] == "authenticated user: anonymous"
    assert ApiSession.objects.get(key=data["session"]).user is None


def test_it_refuses_an_expired_session(client: Client) -> None:
    key = create_api_key("bob")
    session = ApiSession.start(key.user, key)
    ApiSession.objects.filter(pk=session.pk).update(expires=timezone.now() - timedelta(seconds=1))
    data = post(client, "/api/myjobs", {"session": session.key})
    assert data["errormessage"] == f'no session with key "{session.key}"'


def test_it_refuses_a_regenerated_key(client: Client) -> None:
    key = create_api_key("charlie")
    old = key.key
    key.regenerate()
    assert post(client, "/api/login", {"apikey": old})["errormessage"] == "bad apikey"
