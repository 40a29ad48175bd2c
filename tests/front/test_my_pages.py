from __future__ import annotations

import pytest
from django.test import Client

from tests.front.helpers import fail, make_user, solve, submit

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


def test_it_filters_my_images_and_submissions_by_status(client: Client) -> None:
    alice = make_user("alice")
    solve(submit(alice, filename="solved.jpg"))
    fail(submit(alice, filename="failed.jpg"))
    submit(alice, filename="waiting.jpg")
    client.force_login(alice)
    expected = {"solved": "solved.jpg", "failed": "failed.jpg", "in_progress": "waiting.jpg"}
    for status, name in expected.items():
        for url in ("/my/images", "/my/submissions"):
            body = client.get(url, {"status": status}).content.decode()
            shown = {n for n in expected.values() if n in body}
            assert shown == {name}, (url, status, shown)
    body = client.get("/my/images", {"status": "bogus"}).content.decode()
    assert all(name in body for name in expected.values())
    assert (
        'aria-current="page" class="chosen">failed'
        in client.get("/my/images", {"status": "failed"}).content.decode()
    )


def test_it_shows_a_thumbnail_on_each_submission(client: Client) -> None:
    alice = make_user("alice")
    job = solve(submit(alice, filename="solved.jpg"))
    waiting = submit(alice, filename="waiting.jpg")
    client.force_login(alice)
    body = client.get("/my/submissions").content.decode()
    assert f'src="/annotated_display/{job.id}"' in body
    image_id = waiting.user_images.get().id
    assert f'src="/user_images/{image_id}/thumbnail"' in body
