"""Albums: a person's named collections of images, made, edited and listed."""

from __future__ import annotations

from django.contrib.auth.models import User

from skysolve.community.access import COMMENT_MAX, signed_in, valid_id
from skysolve.community.models import Album
from skysolve.submissions import services as submissions


def _album_fields(title: str, description: str, publicly_visible: str) -> tuple[str, str, str]:
    cleaned = " ".join(title.split())
    if not cleaned:
        raise submissions.ServiceError("an album needs a title")
    if len(cleaned) > 200:
        raise submissions.ServiceError("an album title is at most 200 characters")
    if publicly_visible not in ("y", "n"):
        raise submissions.ServiceError("visibility must be y or n")
    return cleaned, description.strip()[:COMMENT_MAX], publicly_visible


def create_album(
    viewer: submissions.Viewer, title: str, description: str, publicly_visible: str
) -> Album:
    user = signed_in(viewer)
    title, description, visible = _album_fields(title, description, publicly_visible)
    if Album.objects.filter(owner=user, title=title).exists():
        raise submissions.ServiceError(f"you already have an album called {title!r}")
    return Album.objects.create(
        owner=user, title=title, description=description, publicly_visible=visible
    )


def get_own_album(album_id: int, viewer: submissions.Viewer) -> Album:
    album = Album.objects.filter(pk=valid_id(album_id)).first()
    if album is None or viewer.user is None or album.owner_id != viewer.user.pk:  # type: ignore[attr-defined]
        raise submissions.NotFound(f"no album with id {album_id}")
    return album


def edit_album(
    album_id: int, viewer: submissions.Viewer, title: str, description: str, publicly_visible: str
) -> Album:
    album = get_own_album(album_id, viewer)
    title, description, visible = _album_fields(title, description, publicly_visible)
    if Album.objects.filter(owner=album.owner, title=title).exclude(pk=album.pk).exists():
        raise submissions.ServiceError(f"you already have an album called {title!r}")
    album.title, album.description, album.publicly_visible = title, description, visible
    album.save(update_fields=["title", "description", "publicly_visible"])
    return album


def delete_album(album_id: int, viewer: submissions.Viewer) -> None:
    """Delete an album; its images stay (they only leave the album)."""
    get_own_album(album_id, viewer).delete()


def user_albums(owner: User, viewer: submissions.Viewer) -> list[Album]:
    albums = Album.objects.filter(owner=owner)
    mine = viewer.user is not None and viewer.user.pk == owner.pk
    if not (mine or viewer.is_staff):
        albums = albums.filter(publicly_visible="y")
    return list(albums.order_by("title"))
