from __future__ import annotations

import pytest
from django.test import Client

from tests.front.helpers import make_user

pytestmark = pytest.mark.django_db


def test_it_signs_out_on_post(client: Client) -> None:
    client.force_login(make_user("alice"))
    response = client.post("/accounts/logout")
    assert (response.status_code, response["Location"]) == (302, "/")
    assert client.get("/my/images").status_code == 302


def test_it_ignores_get(client: Client) -> None:
    client.force_login(make_user("alice"))
    assert client.get("/accounts/logout").status_code == 405
    assert client.get("/my/images").status_code == 200
