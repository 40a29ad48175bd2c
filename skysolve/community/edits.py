"""What an image's owner changes: its description, visibility, licence and albums."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from skysolve.community import tagcounts
from skysolve.community.access import COMMENT_MAX, get_own_image
from skysolve.community.models import Album
from skysolve.submissions import services as submissions
from skysolve.submissions.models import (
    LICENCE_COMMERCIAL_CHOICES,
    LICENCE_MODIFICATIONS_CHOICES,
    Submission,
    UserImage,
)


@dataclass(frozen=True)
class ImageEdit:
    description: str
    publicly_visible: str
    allow_commercial_use: str
    allow_modifications: str
    album_ids: Sequence[int]


def edit_image(image_id: int, viewer: submissions.Viewer, edit: ImageEdit) -> UserImage:
    """The owner changes an image's description, visibility, licence and albums.

    The licence belongs to the submission (the API takes it per upload), so
    it changes for every image of the submission.  Visibility is the image's
    own; a submission of one image follows it, so hiding the image also hides
    the submission's status page and API answers in strict mode.  An image of
    a private submission of several images cannot be made public alone.
    """
    image = get_own_image(image_id, viewer)
    assert viewer.user is not None
    if edit.publicly_visible not in ("y", "n"):
        raise submissions.ServiceError("visibility must be y or n")
    if edit.allow_commercial_use not in dict(LICENCE_COMMERCIAL_CHOICES):
        raise submissions.ServiceError("unknown commercial-use choice")
    if edit.allow_modifications not in dict(LICENCE_MODIFICATIONS_CHOICES):
        raise submissions.ServiceError("unknown modifications choice")
    albums = list(Album.objects.filter(owner=viewer.user, pk__in=list(edit.album_ids)))
    if len(albums) != len(set(edit.album_ids)):
        raise submissions.ServiceError("you can only put an image in your own albums")
    submission = image.submission
    single = submission.user_images.count() == 1
    if edit.publicly_visible == "y" and not single and not submission.is_public:
        raise submissions.ServiceError(
            "this image belongs to a private submission of several images; "
            "it stays private while the submission is"
        )
    was_public = image.is_public and submission.is_public
    with transaction.atomic():
        image.description = edit.description.strip()[:COMMENT_MAX]
        image.publicly_visible = edit.publicly_visible
        image.save(update_fields=["description", "publicly_visible"])
        fields = {
            "allow_commercial_use": edit.allow_commercial_use,
            "allow_modifications": edit.allow_modifications,
        }
        if single:
            fields["publicly_visible"] = edit.publicly_visible
        Submission.objects.filter(pk=submission.pk).update(**fields)
        now_public = edit.publicly_visible == "y" and (single or submission.is_public)
        if now_public != was_public:
            tagcounts.image_visibility_changed(image.id, public=now_public)
        # Only the owner's albums can hold it; the set replaces the old membership.
        for album in Album.objects.filter(owner=viewer.user, user_images=image):
            album.user_images.remove(image)
        for album in albums:
            album.user_images.add(image)
    return image


def set_visibility(image_id: int, viewer: submissions.Viewer, *, public: bool) -> UserImage:
    """Hide or unhide an image (nova's hide/unhide), leaving everything else as it is."""
    image = get_own_image(image_id, viewer)
    submission = image.submission
    edit = ImageEdit(
        description=image.description,
        publicly_visible="y" if public else "n",
        allow_commercial_use=submission.allow_commercial_use,
        allow_modifications=submission.allow_modifications,
        album_ids=list(Album.objects.filter(user_images=image).values_list("id", flat=True)),
    )
    return edit_image(image_id, viewer, edit)
