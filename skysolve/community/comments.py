"""Comments on images and albums: who writes, sees and deletes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from skysolve.community.access import (
    COMMENT_MAX,
    forbidden,
    get_album,
    get_image,
    owns_image,
    signed_in,
    valid_id,
)
from skysolve.community.models import Album, Comment
from skysolve.submissions import services as submissions
from skysolve.submissions.models import UserImage

#: Most comments an image's or album's page shows (the first ones written).
COMMENTS_SHOWN = 100


@dataclass(frozen=True)
class CommentView:
    id: int
    author: str
    text: str
    created: datetime
    deletable: bool


def _comment_views(
    comments: QuerySet[Comment], viewer: submissions.Viewer, *, owner: bool
) -> list[CommentView]:
    out = []
    for c in comments.select_related("author").order_by("created", "id")[:COMMENTS_SHOWN]:
        mine = viewer.user is not None and c.author_id == viewer.user.pk  # type: ignore[attr-defined]
        out.append(
            CommentView(
                c.id, c.author.username, c.text, c.created, owner or mine or viewer.is_staff
            )
        )
    return out


def image_comments(image: UserImage, viewer: submissions.Viewer) -> list[CommentView]:
    owner = viewer.user is not None and owns_image(viewer, image)
    return _comment_views(Comment.objects.filter(user_image=image), viewer, owner=owner)


def album_comments(album: Album, viewer: submissions.Viewer) -> list[CommentView]:
    owner = viewer.user is not None and viewer.user.pk == album.owner_id  # type: ignore[attr-defined]
    return _comment_views(Comment.objects.filter(album=album), viewer, owner=owner)


def _comment_text(text: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise submissions.ServiceError("a comment needs some text")
    if len(cleaned) > COMMENT_MAX:
        raise submissions.ServiceError(f"a comment is at most {COMMENT_MAX} characters")
    return cleaned


def comment_on_image(image_id: int, viewer: submissions.Viewer, text: str) -> Comment:
    user = signed_in(viewer)
    image = get_image(image_id, viewer)
    return Comment.objects.create(author=user, user_image=image, text=_comment_text(text))


def comment_on_album(album: Album, viewer: submissions.Viewer, text: str) -> Comment:
    user = signed_in(viewer)
    return Comment.objects.create(author=user, album=album, text=_comment_text(text))


def delete_comment(comment_id: int, viewer: submissions.Viewer) -> Comment:
    """Delete a comment (its author, the owner of what it is on, or staff); returns it."""
    user = signed_in(viewer)
    comment = (
        Comment.objects.select_related("user_image__submission", "album")
        .filter(pk=valid_id(comment_id))
        .first()
    )
    if comment is None:
        raise submissions.NotFound(f"no comment with id {comment_id}")
    if comment.user_image is not None:
        image = get_image(comment.user_image.id, viewer)
        owner = owns_image(viewer, image)
    else:
        assert comment.album is not None
        album = get_album(comment.album.id, viewer)
        owner = album.owner_id == user.pk  # type: ignore[attr-defined]
    if not (owner or comment.author_id == user.pk or viewer.is_staff):  # type: ignore[attr-defined]
        raise forbidden("only the author or the owner deletes a comment")
    comment.delete()
    return comment
