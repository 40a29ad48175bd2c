"""Tags on images: who adds and removes them, the tag list and a tag's images.

How many public images carry each tag, and which jobs are listed under it,
is kept as tags change by :mod:`skysolve.community.tagcounts`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet

from skysolve.community.access import TAG_MAX, forbidden, get_image, owns_image, signed_in, valid_id
from skysolve.community.models import Tag, TaggedUserImage
from skysolve.submissions import services as submissions
from skysolve.submissions.models import UserImage


@dataclass(frozen=True)
class ImageTag:
    id: int  # of the tag on this image (what removing it names)
    tag_id: int
    text: str
    machine: bool
    added_by: str
    removable: bool


def normalise_tag(text: str) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise submissions.ServiceError("a tag needs some text")
    if len(cleaned) > TAG_MAX:
        raise submissions.ServiceError(f"a tag is at most {TAG_MAX} characters")
    return cleaned


#: Most tags an image's page shows (the first ones added).
TAGS_SHOWN = 100


def image_tags(
    image: UserImage, viewer: submissions.Viewer, *, limit: int = TAGS_SHOWN
) -> list[ImageTag]:
    """The tags of an image (at most ``limit``), people's first, with whether the viewer
    may remove each."""
    owner = viewer.user is not None and owns_image(viewer, image)
    rows = (
        TaggedUserImage.objects.filter(user_image=image)
        .select_related("tag", "added_by")
        .order_by("machine", "id")[:limit]
    )
    out = []
    for row in rows:
        mine = viewer.user is not None and row.added_by_id == viewer.user.pk  # type: ignore[attr-defined]
        out.append(
            ImageTag(
                id=row.pk,
                tag_id=row.tag.pk,
                text=row.tag.text,
                machine=row.machine,
                added_by=row.added_by.username if row.added_by is not None else "",
                removable=owner or mine or viewer.is_staff,
            )
        )
    return out


def add_tag(image_id: int, viewer: submissions.Viewer, text: str) -> TaggedUserImage:
    user = signed_in(viewer)
    image = get_image(image_id, viewer)
    cleaned = normalise_tag(text)
    with transaction.atomic():
        tag = Tag.objects.filter(text__iexact=cleaned).first()
        if tag is None:
            tag, _ = Tag.objects.get_or_create(text=cleaned)
        tagged, _ = TaggedUserImage.objects.get_or_create(
            user_image=image, tag=tag, machine=False, defaults={"added_by": user}
        )
    return tagged


def remove_tag(tagged_id: int, viewer: submissions.Viewer) -> UserImage:
    """Remove one tag of an image (the tagger, the image's owner or staff)."""
    user = signed_in(viewer)
    row = (
        TaggedUserImage.objects.select_related("user_image__submission")
        .filter(pk=valid_id(tagged_id))
        .first()
    )
    if row is None:
        raise submissions.NotFound(f"no tag with id {tagged_id}")
    image = get_image(row.user_image.id, viewer)  # NotFound when the image is hidden from them
    if not (owns_image(viewer, image) or row.added_by_id == user.pk or viewer.is_staff):  # type: ignore[attr-defined]
        raise forbidden("only the person who added a tag or the image's owner removes it")
    row.delete()
    return image


def tag_counts(query: str = "", *, exact: bool = False, order: str = "count") -> QuerySet[Tag]:
    """Tags with the number of public images carrying each (only tags with one).

    The number is the kept ``Tag.public_count`` (see
    :mod:`skysolve.community.tagcounts`), as ``n``.
    """
    tags = Tag.objects.filter(public_count__gt=0)
    if query:
        tags = tags.filter(text__iexact=query) if exact else tags.filter(text__icontains=query)
    counted = tags.annotate(n=F("public_count"))
    if order == "name":
        return counted.order_by("text")
    return counted.order_by("-public_count", "text")


def get_tag(tag_id: int, viewer: submissions.Viewer) -> Tag:
    """A tag that is on a public image, or on one of the viewer's own."""
    tag = Tag.objects.filter(pk=valid_id(tag_id)).first()
    if tag is None or not _visible_tagged(tag, viewer).exists():
        raise submissions.NotFound(f"no tag with id {tag_id}")
    return tag


def _visible_tagged(tag: Tag, viewer: submissions.Viewer) -> QuerySet[TaggedUserImage]:
    """The rows of ``tag`` on images the viewer may see, one per image (its latest)."""
    visible = Q(user_image__publicly_visible="y", user_image__submission__publicly_visible="y")
    if viewer.is_staff:
        visible = Q()
    elif viewer.user is not None:
        visible |= Q(user_image__submission__user=viewer.user)
    # An image tagged twice (a person's tag and a machine tag) is listed by its newer row.
    newer = TaggedUserImage.objects.filter(
        tag=tag, user_image=OuterRef("user_image"), id__gt=OuterRef("id")
    )
    # tag_id as a range, not "=": PostgreSQL drops a sort key fixed by "=", and
    # then walks the primary key backwards filtering by tag (all the table for a
    # tag on old images) instead of the index (tag, id).
    rows = TaggedUserImage.objects.filter(visible, tag__gte=tag.pk, tag__lte=tag.pk)
    return rows.exclude(Exists(newer))


def tag_images(
    tag: Tag, viewer: submissions.Viewer, *, before: int | None = None, size: int = 24
) -> tuple[list[UserImage], int | None]:
    """A page of the images with ``tag``, most recently tagged first, and the next page's
    ``before`` (None on the last page).

    ``before`` is the last image of the previous page.  The page follows the
    index of tag rows by tag, so a deep page costs what the first does.
    """
    rows = _visible_tagged(tag, viewer).select_related("user_image__submission__user")
    if before is not None:
        anchor = (
            TaggedUserImage.objects.filter(tag=tag, user_image_id=before)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        if anchor is not None:
            rows = rows.filter(id__lt=anchor)
    # Ordered as the index (tag, id) is, so that it is the one read (tag_id is fixed).
    found = list(rows.order_by("-tag_id", "-id")[: size + 1])
    images = [row.user_image for row in found[:size]]
    return images, images[-1].id if len(found) > size else None


def image_tag_texts(image: UserImage, *, machine: bool, limit: int | None = None) -> list[str]:
    """The texts of an image's people's tags (or machine tags) in the order they were added."""
    rows = TaggedUserImage.objects.filter(user_image=image, machine=machine).order_by("id")
    return list(rows.values_list("tag__text", flat=True)[:limit])
