from __future__ import annotations

import pytest
from django.test import Client

from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def test_it_lists_my_submissions_private_ones_included(client: Client) -> None:
    alice = make_user("alice")
    solve(submit(alice, filename="public.jpg"))
    submit(alice, filename="private.jpg", public=False)
    submit(make_user("bob"), filename="bobs.jpg")
    client.force_login(alice)
    body = client.get("/my/submissions").content.decode()
    assert "public.jpg" in body and "private.jpg" in body
    assert "bobs.jpg" not in body


def test_it_lists_my_images_private_ones_included(client: Client) -> None:
    alice = make_user("alice")
    solve(submit(alice, filename="public.jpg"))
    submit(alice, filename="private.jpg", public=False)
    solve(submit(make_user("bob"), filename="bobs.jpg"))
    client.force_login(alice)
    body = client.get("/my/images").content.decode()
    assert "public.jpg" in body and "private.jpg" in body
    assert "bobs.jpg" not in body


def test_it_needs_sign_in(client: Client) -> None:
    for url in ("/my/submissions", "/my/images"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
