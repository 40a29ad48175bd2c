"""Who may see and change an image or album: the rules every community action checks.

Every function of the community takes plain values (a viewer, ids, text) and
raises ``NotFound`` for what the viewer may not see and ``ServiceError`` (403)
for what they see but may not change, so the views only translate.  The rules
follow nova's: any signed-in user who can see an image tags, comments on and
flags it; the tagger or the image's owner removes a tag; the author or the
owner of the image or album deletes a comment; only the owner edits an image
or an album.
"""

from __future__ import annotations

from django.contrib.auth.models import User

from skysolve.community.models import Album
from skysolve.submissions import services as submissions
from skysolve.submissions.models import UserImage

#: Longest tag and comment people may write (and an album's description).
TAG_MAX = 200
COMMENT_MAX = 4000


def valid_id(value: int) -> int:
    """The id, or 0 (which no row has) when it is outside the ids' range."""
    return value if 0 < value < 2**31 else 0


def forbidden(message: str) -> submissions.ServiceError:
    return submissions.ServiceError(message, status=403)


def get_image(image_id: int, viewer: submissions.Viewer) -> UserImage:
    """The image if the viewer may see its pages (the rule of its results page), else NotFound."""
    image = (
        UserImage.objects.select_related("submission__user", "user")
        .filter(pk=valid_id(image_id))
        .first()
    )
    public = image is not None and image.is_public
    if image is None or not submissions.may_read(
        viewer, image.submission, public=public, pages=True
    ):
        raise submissions.NotFound(f"no image with id {image_id}")
    return image


def owns_image(viewer: submissions.Viewer, image: UserImage) -> bool:
    return submissions.owns(viewer, image.submission)


def get_own_image(image_id: int, viewer: submissions.Viewer) -> UserImage:
    """The image if it is the viewer's; anyone else learns nothing (NotFound)."""
    image = UserImage.objects.select_related("submission__user").filter(pk=valid_id(image_id))
    found = image.first()
    if found is None or viewer.user is None or not owns_image(viewer, found):
        raise submissions.NotFound(f"no image with id {image_id}")
    return found


def signed_in(viewer: submissions.Viewer) -> User:
    if viewer.user is None:
        raise forbidden("sign in first")
    return viewer.user


def get_album(album_id: int, viewer: submissions.Viewer) -> Album:
    """The album if it is public, the viewer's own, or the viewer is staff; else NotFound."""
    album = Album.objects.select_related("owner").filter(pk=valid_id(album_id))
    found = album.first()
    if found is None:
        raise submissions.NotFound(f"no album with id {album_id}")
    mine = viewer.user is not None and viewer.user.pk == found.owner_id  # type: ignore[attr-defined]
    if found.publicly_visible != "y" and not (mine or viewer.is_staff):
        raise submissions.NotFound(f"no album with id {album_id}")
    return found
