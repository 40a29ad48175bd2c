"""What people do with images on the site: tags, comments, flags, edits, albums.

Every function takes plain values (a viewer, ids, text) and raises
``submissions.NotFound`` for what the viewer may not see and
``submissions.ServiceError`` (403) for what they see but may not change, so
the views only translate.  The rules follow nova's: any signed-in user who can
see an image tags, comments on and flags it; the tagger or the image's owner
removes a tag; the author or the owner of the image or album deletes a comment;
only the owner edits an image or an album.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet

from skysolve.submissions import services as submissions
from skysolve.submissions import tagcounts
from skysolve.submissions.models import (
    LICENCE_COMMERCIAL_CHOICES,
    LICENCE_MODIFICATIONS_CHOICES,
    Album,
    Comment,
    Flag,
    Submission,
    Tag,
    TaggedUserImage,
    UserImage,
)

#: Longest tag and comment people may write.
TAG_MAX = 200
COMMENT_MAX = 4000


def _valid_id(value: int) -> int:
    return value if 0 < value < 2**31 else 0


def _forbidden(message: str) -> submissions.ServiceError:
    return submissions.ServiceError(message, status=403)


# -- images ------------------------------------------------------------------


def get_image(image_id: int, viewer: submissions.Viewer) -> UserImage:
    """The image if the viewer may see its pages (the rule of its results page), else NotFound."""
    image = (
        UserImage.objects.select_related("submission__user", "user")
        .filter(pk=_valid_id(image_id))
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
    image = UserImage.objects.select_related("submission__user").filter(pk=_valid_id(image_id))
    found = image.first()
    if found is None or viewer.user is None or not owns_image(viewer, found):
        raise submissions.NotFound(f"no image with id {image_id}")
    return found


def _signed_in(viewer: submissions.Viewer) -> User:
    if viewer.user is None:
        raise _forbidden("sign in first")
    return viewer.user


# -- tags --------------------------------------------------------------------


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


#: Most tags and comments an image's page shows (the first ones added).
TAGS_SHOWN = 100
COMMENTS_SHOWN = 100


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
    user = _signed_in(viewer)
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
    user = _signed_in(viewer)
    row = (
        TaggedUserImage.objects.select_related("user_image__submission")
        .filter(pk=_valid_id(tagged_id))
        .first()
    )
    if row is None:
        raise submissions.NotFound(f"no tag with id {tagged_id}")
    image = get_image(row.user_image.id, viewer)  # NotFound when the image is hidden from them
    if not (owns_image(viewer, image) or row.added_by_id == user.pk or viewer.is_staff):  # type: ignore[attr-defined]
        raise _forbidden("only the person who added a tag or the image's owner removes it")
    row.delete()
    return image


def tag_counts(query: str = "", *, exact: bool = False, order: str = "count") -> QuerySet[Tag]:
    """Tags with the number of public images carrying each (only tags with one).

    The number is the kept ``Tag.public_count`` (see
    :mod:`skysolve.submissions.tagcounts`), as ``n``.
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
    tag = Tag.objects.filter(pk=_valid_id(tag_id)).first()
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


# -- comments ----------------------------------------------------------------


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
    user = _signed_in(viewer)
    image = get_image(image_id, viewer)
    return Comment.objects.create(author=user, user_image=image, text=_comment_text(text))


def comment_on_album(album: Album, viewer: submissions.Viewer, text: str) -> Comment:
    user = _signed_in(viewer)
    return Comment.objects.create(author=user, album=album, text=_comment_text(text))


def delete_comment(comment_id: int, viewer: submissions.Viewer) -> Comment:
    """Delete a comment (its author, the owner of what it is on, or staff); returns it."""
    from skysolve.front.services import get_album

    user = _signed_in(viewer)
    comment = (
        Comment.objects.select_related("user_image__submission", "album")
        .filter(pk=_valid_id(comment_id))
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
        raise _forbidden("only the author or the owner deletes a comment")
    comment.delete()
    return comment


# -- flags -------------------------------------------------------------------

FLAG_KINDS = dict(Flag.KIND_CHOICES)


def flags_of(image: UserImage, viewer: submissions.Viewer) -> list[tuple[str, str, bool]]:
    """(kind, label, set by the viewer) for every kind of flag."""
    mine: set[str] = set()
    if viewer.user is not None:
        mine = set(
            Flag.objects.filter(user_image=image, user=viewer.user).values_list("kind", flat=True)
        )
    return [(kind, label, kind in mine) for kind, label in Flag.KIND_CHOICES]


def set_flags(image_id: int, viewer: submissions.Viewer, kinds: Sequence[str]) -> UserImage:
    """Make the viewer's flags on the image exactly ``kinds`` (nova's form posts them all)."""
    user = _signed_in(viewer)
    image = get_image(image_id, viewer)
    unknown = sorted(set(kinds) - set(FLAG_KINDS))
    if unknown:
        raise submissions.ServiceError(f"no such flag: {', '.join(unknown)}")
    with transaction.atomic():
        Flag.objects.filter(user_image=image, user=user).exclude(kind__in=kinds).delete()
        for kind in set(kinds):
            try:
                with transaction.atomic():
                    Flag.objects.get_or_create(user_image=image, user=user, kind=kind)
            except IntegrityError:  # the same form posted twice at once
                pass
    return image


@dataclass(frozen=True)
class FlaggedImage:
    image_id: int
    filename: str
    owner: str
    counts: list[tuple[str, int]]
    latest: datetime


def flagged_images(kind: str = "") -> list[FlaggedImage]:
    """Every flagged image (private ones too: this is the staff's view), newest flag first."""
    flags = Flag.objects.select_related("user_image__submission__user")
    if kind:
        flags = flags.filter(kind=kind)
    by_image: dict[int, dict[str, int]] = {}
    latest: dict[int, datetime] = {}
    images: dict[int, UserImage] = {}
    for flag in flags.order_by("-created"):
        image = flag.user_image
        images[image.id] = image
        by_image.setdefault(image.id, {})
        by_image[image.id][flag.kind] = by_image[image.id].get(flag.kind, 0) + 1
        latest.setdefault(image.id, flag.created)
    out = []
    for image_id, counts in by_image.items():
        image = images[image_id]
        owner = image.submission.user
        out.append(
            FlaggedImage(
                image_id=image_id,
                filename=image.original_filename or f"image {image_id}",
                owner=owner.username if owner is not None else "anonymous",
                counts=[
                    (FLAG_KINDS[k], n) for k, _ in Flag.KIND_CHOICES if (n := counts.get(k, 0))
                ],
                latest=latest[image_id],
            )
        )
    out.sort(key=lambda item: item.latest, reverse=True)
    return out


# -- editing an image --------------------------------------------------------


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


# -- albums ------------------------------------------------------------------


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
    user = _signed_in(viewer)
    title, description, visible = _album_fields(title, description, publicly_visible)
    if Album.objects.filter(owner=user, title=title).exists():
        raise submissions.ServiceError(f"you already have an album called {title!r}")
    return Album.objects.create(
        owner=user, title=title, description=description, publicly_visible=visible
    )


def get_own_album(album_id: int, viewer: submissions.Viewer) -> Album:
    album = Album.objects.filter(pk=_valid_id(album_id)).first()
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
