from __future__ import annotations

import pytest
from django.test import Client

from tests.front.helpers import fail, make_user, solve, submit

pytestmark = pytest.mark.django_db


def test_it_shows_recent_public_solved_images(client: Client) -> None:
    alice = make_user("alice")
    old = solve(submit(alice, filename="old.jpg"))
    new = solve(submit(alice, filename="new.jpg"))
    fail(submit(alice, filename="failed.jpg"))
    submit(alice, filename="queued.jpg")
    solve(submit(alice, filename="private.jpg", public=False))
    body = client.get("/gallery").content.decode()
    assert body.index("new.jpg") < body.index("old.jpg")
    assert f'src="/annotated_display/{new.id}"' in body
    assert f'href="/results/{old.id}"' in body
    for hidden in ("failed.jpg", "queued.jpg", "private.jpg"):
        assert hidden not in body


def test_it_is_the_home_page_for_visitors(client: Client) -> None:
    solve(submit(make_user("alice"), filename="dipper.jpg"))
    body = client.get("/").content.decode()
    assert "dipper.jpg" in body
    assert "Sign up" in body


def test_it_sends_signed_in_people_to_upload(client: Client) -> None:
    client.force_login(make_user("alice"))
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/upload")


def test_it_pages_long_lists(client: Client) -> None:
    alice = make_user("alice")
    for i in range(30):
        solve(submit(alice, filename=f"field-{i}.jpg"))
    first = client.get("/gallery")
    second = client.get("/gallery?page=2")
    assert len(first.context["page"].object_list) == 24
    assert len(second.context["page"].object_list) == 6
    assert "page 1 of 2" in first.content.decode()
