from __future__ import annotations

import pytest
from django.test import Client

from skysolve.community.models import Album
from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def albums(db: None) -> tuple[Album, Album]:
    alice = make_user("alice")
    solve(submit(alice, album="Messier", filename="m101.jpg"))
    solve(submit(alice, album="Messier", filename="hidden-m51.jpg", public=False))
    solve(submit(alice, album="Drafts", filename="draft.jpg"))
    drafts = Album.objects.get(title="Drafts")
    drafts.publicly_visible = "n"
    drafts.save()
    return Album.objects.get(title="Messier"), drafts


def test_it_lists_public_albums(client: Client, albums: tuple[Album, Album]) -> None:
    client.force_login(make_user("bob"))
    body = client.get("/albums").content.decode()
    assert "Messier" in body
    assert "Drafts" not in body


def test_it_lists_the_owners_private_albums_to_them(
    client: Client, albums: tuple[Album, Album]
) -> None:
    client.force_login(albums[0].owner)
    assert "Drafts" in client.get("/albums").content.decode()


def test_it_shows_only_public_images_to_others(client: Client, albums: tuple[Album, Album]) -> None:
    body = client.get(f"/albums/{albums[0].id}").content.decode()
    assert "m101.jpg" in body
    assert "hidden-m51.jpg" not in body


def test_it_shows_the_owner_everything(client: Client, albums: tuple[Album, Album]) -> None:
    client.force_login(albums[0].owner)
    body = client.get(f"/albums/{albums[0].id}").content.decode()
    assert "hidden-m51.jpg" in body


def test_it_hides_private_albums(client: Client, albums: tuple[Album, Album]) -> None:
    client.force_login(make_user("bob"))
    assert client.get(f"/albums/{albums[1].id}").status_code == 404
    client.force_login(make_user("charlie", staff=True))
    assert client.get(f"/albums/{albums[1].id}").status_code == 200
