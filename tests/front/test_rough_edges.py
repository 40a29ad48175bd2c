"""Small things people meet: the 404 page, the favicon, why sign-in, what a button did."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def test_it_answers_404_with_the_sites_own_page(client: Client) -> None:
    response = client.get("/no/such/page")
    body = response.content.decode()
    assert response.status_code == 404
    assert 'id="not-found"' in body and "/static/front/style.css" in body
    # The API keeps its JSON error shape (sent as text/plain, as nova does).
    assert json.loads(client.get("/api/no/such/thing").content)["status"] == "error"


def test_every_page_has_a_favicon(client: Client) -> None:
    assert 'rel="icon" href="/static/front/favicon.svg"' in client.get("/gallery").content.decode()


def test_it_says_why_upload_needs_signing_in(client: Client) -> None:
    response = client.get("/upload")
    assert response.status_code == 302
    body = client.get(response["Location"]).content.decode()
    assert 'id="why-sign-in"' in body and "Uploading on this site needs an account" in body


def test_hiding_an_image_says_what_it_did(client: Client) -> None:
    alice = make_user("alice")
    job = solve(submit(alice))
    client.force_login(alice)
    response = client.post(f"/user_images/{job.user_image.id}/hide", follow=True)
    assert "The image is private now" in response.content.decode()
    response = client.post(
        f"/user_images/{job.user_image.id}/flags", {"flags": ["nice", "good_demo"]}
    )
    assert response["Location"].endswith("#flags")
    body = client.get(response["Location"], follow=True).content.decode()
    assert "Flags saved: nice solve, good demo." in body
