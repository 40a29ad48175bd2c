from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from skysolve.accounts.models import ApiKey, Profile

pytestmark = pytest.mark.django_db

PASSWORD = "a long sky password 42"


def test_it_creates_the_account_signs_in_and_shows_the_key() -> None:
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/signup")
    data = {
        "username": "alice",
        "email": "alice@example.org",
        "password1": PASSWORD,
        "password2": PASSWORD,
        "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
    }
    response = client.post("/accounts/signup", data)
    assert (response.status_code, response["Location"]) == (302, "/accounts/profile")
    alice = User.objects.get(username="alice")
    assert Profile.objects.filter(user=alice).exists()
    key = ApiKey.objects.get(user=alice).key
    assert key in client.get("/accounts/profile").content.decode()


def test_it_refuses_without_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    data = {"username": "bob", "password1": PASSWORD, "password2": PASSWORD}
    assert client.post("/accounts/signup", data).status_code == 403
    assert not User.objects.filter(username="bob").exists()


def test_it_explains_mismatched_passwords(client: Client) -> None:
    data = {"username": "bob", "password1": PASSWORD, "password2": PASSWORD + "x"}
    response = client.post("/accounts/signup", data)
    assert response.status_code == 200
    assert "didn’t match" in response.content.decode()
    assert not User.objects.exists()


def test_it_follows_a_local_next_only(client: Client) -> None:
    data = {"username": "charlie", "password1": PASSWORD, "password2": PASSWORD}
    response = client.post("/accounts/signup?next=https://evil.example/", data)
    assert response["Location"] == "/accounts/profile"
