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
    page = first.context["page"]
    assert len(page.object_list) == 24
    # "older" names the last image shown; the next page starts after it.
    assert f'href="?{page.older_query.replace("&", "&amp;")}" rel="next"' in first.content.decode()
    second = client.get(f"/gallery?{page.older_query}")
    rest = second.context["page"].object_list
    assert len(rest) == 6 and not second.context["page"].has_next
    shown = [card.image_id for card in [*page.object_list, *rest]]
    assert len(set(shown)) == 30
    # Old numbered links still work (as far as a bounded OFFSET reaches).
    assert [c.image_id for c in client.get("/gallery?page=2").context["page"].object_list] == [
        c.image_id for c in rest
    ]
    far = client.get("/gallery?page=10000")
    assert far.context["page"].object_list == []
    assert "Numbered pages end here" in far.content.decode()
