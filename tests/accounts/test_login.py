from __future__ import annotations

import pytest
from django.test import Client

from tests.front.helpers import make_user

pytestmark = pytest.mark.django_db


def test_it_signs_in_and_returns_to_next(client: Client) -> None:
    make_user("alice")
    data = {"username": "alice", "password": "correct horse 42", "next": "/my/images"}
    response = client.post("/accounts/login", data)
    assert (response.status_code, response["Location"]) == (302, "/my/images")
    assert client.get("/my/images").status_code == 200


def test_it_goes_to_upload_by_default(client: Client) -> None:
    make_user("alice")
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "correct horse 42"}
    )
    assert response["Location"] == "/upload"


def test_it_refuses_a_wrong_password(client: Client) -> None:
    make_user("alice")
    response = client.post("/accounts/login", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode()
    assert client.get("/my/images").status_code == 302


def test_it_carries_next_through_the_form(client: Client) -> None:
    body = client.get("/accounts/login/?next=/upload").content.decode()
    assert 'name="next" value="/upload"' in body
