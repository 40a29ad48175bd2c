from __future__ import annotations

import pytest
from django.test import Client

from skysolve.community.models import Album
from skysolve.submissions.models import UserImage
from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def test_it_creates_an_album(client: Client) -> None:
    alice = make_user("alice")
    client.force_login(alice)
    assert client.get("/albums/new").status_code == 200
    response = client.post(
        "/albums/new", {"title": " Deep  sky ", "description": "faint", "publicly_visible": "n"}
    )
    album = Album.objects.get()
    assert response["Location"] == f"/albums/{album.id}"
    assert (album.title, album.description, album.publicly_visible) == ("Deep sky", "faint", "n")
    again = client.post("/albums/new", {"title": "Deep sky", "publicly_visible": "y"})
    assert "already have an album" in again.content.decode()


def test_it_edits_and_deletes_only_the_owners_album(client: Client) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    image = solve(submit(alice, album="Messier")).user_image
    album = Album.objects.get()
    client.force_login(bob)
    assert client.get(f"/albums/{album.id}/edit").status_code == 404
    assert client.post(f"/albums/{album.id}/delete").status_code == 404
    client.force_login(alice)
    response = client.post(
        f"/albums/{album.id}/edit", {"title": "Messier objects", "publicly_visible": "y"}
    )
    assert response.status_code == 302
    assert Album.objects.get().title == "Messier objects"
    assert client.post(f"/albums/{album.id}/delete").status_code == 302
    assert not Album.objects.exists()
    assert UserImage.objects.filter(pk=image.id).exists()  # images stay


def test_it_lists_a_users_albums(client: Client) -> None:
    alice = make_user("alice")
    Album.objects.create(owner=alice, title="Open <b>skies</b>")
    Album.objects.create(owner=alice, title="Drafts", publicly_visible="n")
    body = client.get("/users/alice/albums").content.decode()
    assert "Open &lt;b&gt;skies&lt;/b&gt;" in body and "Drafts" not in body
    client.force_login(alice)
    assert "Drafts" in client.get("/users/alice/albums").content.decode()
    assert client.get("/users/nobody/albums").status_code == 404
