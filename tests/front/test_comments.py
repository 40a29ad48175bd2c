from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from skysolve.community.models import Album, Comment
from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def test_it_adds_a_comment_to_an_image_and_shows_it_escaped(client: Client) -> None:
    alice = make_user("alice")
    job = solve(submit(alice))
    client.force_login(make_user("bob"))
    text = "Lovely field <img src=x onerror=alert(1)>\nsecond line"
    response = client.post(f"/user_images/{job.user_image.id}/comments", {"text": text})
    assert response.status_code == 302
    comment = Comment.objects.get()
    assert comment.author.username == "bob" and comment.user_image == job.user_image
    body = client.get(f"/results/{job.id}").content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;<br>second line" in body
    assert "<img src=x" not in body


def test_it_refuses_empty_comments_and_anonymous_ones(client: Client) -> None:
    job = solve(submit(make_user("alice")))
    url = f"/user_images/{job.user_image.id}/comments"
    response = client.post(url, {"text": "hello"})
    assert response.status_code == 302 and "/accounts/login" in response["Location"]
    client.force_login(make_user("bob"))
    response = client.post(url, {"text": "   ", "next": f"/results/{job.id}"}, follow=True)
    assert "a comment needs some text" in response.content.decode()
    assert not Comment.objects.exists()


def test_it_lets_the_author_or_the_owner_delete_a_comment(client: Client) -> None:
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    image = solve(submit(alice)).user_image
    first = Comment.objects.create(author=bob, user_image=image, text="one")
    second = Comment.objects.create(author=bob, user_image=image, text="two")
    client.force_login(carol)
    assert client.post(f"/comments/{first.id}/delete").status_code == 403
    client.force_login(bob)
    assert client.post(f"/comments/{first.id}/delete").status_code == 302
    client.force_login(alice)
    assert client.post(f"/comments/{second.id}/delete").status_code == 302
    assert not Comment.objects.exists()


def test_it_offers_delete_only_to_who_may(client: Client) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    job = solve(submit(alice))
    comment = Comment.objects.create(author=alice, user_image=job.user_image, text="mine")
    client.force_login(bob)
    assert f"/comments/{comment.id}/delete" not in client.get(f"/results/{job.id}").content.decode()
    client.force_login(alice)
    assert f"/comments/{comment.id}/delete" in client.get(f"/results/{job.id}").content.decode()


def test_it_comments_on_albums(client: Client, settings: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    solve(submit(alice, album="Messier"))
    album = Album.objects.get()
    client.force_login(bob)
    assert client.post(f"/albums/{album.id}/comments", {"text": "great set"}).status_code == 302
    assert "great set" in client.get(f"/albums/{album.id}").content.decode()
    comment = Comment.objects.get()
    client.force_login(alice)  # the album's owner
    assert client.post(f"/comments/{comment.id}/delete").status_code == 302
    album.publicly_visible = "n"
    album.save()
    client.force_login(bob)
    assert client.post(f"/albums/{album.id}/comments", {"text": "x"}).status_code == 404


def test_it_goes_back_only_to_pages_of_this_site(client: Client) -> None:
    job = solve(submit(make_user("alice")))
    client.force_login(make_user("bob"))
    url = f"/user_images/{job.user_image.id}/comments"
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        response = client.post(url, {"text": "", "next": target})
        assert response["Location"] == "/", target
    response = client.post(url, {"text": "", "next": f"/results/{job.id}"})
    assert response["Location"] == f"/results/{job.id}"
