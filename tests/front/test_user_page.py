from __future__ import annotations

import pytest
from django.test import Client

from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def test_it_lists_a_users_public_images_even_to_themselves(client: Client) -> None:
    alice = make_user("alice")
    solve(submit(alice, filename="shown.jpg"))
    solve(submit(alice, filename="hidden.jpg", public=False))
    solve(submit(make_user("bob"), filename="bobs.jpg"))
    client.force_login(alice)
    body = client.get("/users/alice").content.decode()
    assert "shown.jpg" in body
    assert "hidden.jpg" not in body
    assert "bobs.jpg" not in body


def test_it_answers_404_for_an_unknown_user(client: Client) -> None:
    assert client.get("/users/nobody").status_code == 404
