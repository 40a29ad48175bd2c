"""``Tag.public_count``: how many public images carry each tag, kept as tags change.

The tag list shows every tag with its count; counting them from the tag rows
joined to images and submissions reads millions of rows per request at
nova's size.  The count is kept instead: a tag put on or taken off a public
image moves its tag's count by one (signals of :class:`TaggedUserImage`, so
a cascade delete is counted too), and an image that becomes public or
private moves the count of each of its tags (:func:`image_visibility_changed`,
called where visibility is edited).  An image carrying a tag twice (as a
person's tag and as a machine tag) counts once.  :func:`recount_tags`
recomputes them all from the rows (the migration that adds the column runs it).

Each tag row also carries ``public``, its image's visibility (set when the row
is made, by :func:`marking`; changed by :func:`image_visibility_changed`), and
every job of a tagged image has a :class:`TaggedJob` row per tag with that
visibility and the job's ``queued_at``, so that a tag's public jobs in their
order are one index range (``/api/jobs_by_tag``) rather than a visibility check
and a job lookup per image.  Jobs are made with their image, before it can be
tagged; a retry's new ``queued_at`` is copied by ``services.retry_job``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from skysolve.community.models import Tag, TaggedJob, TaggedUserImage
from skysolve.submissions.models import Job, UserImage


def _is_public(image_id: int) -> bool:
    public = UserImage.objects.filter(
        pk=image_id, publicly_visible="y", submission__publicly_visible="y"
    )
    return public.exists()


def _move(tag_ids: Iterable[int], step: int) -> None:
    Tag.objects.filter(pk__in=list(tag_ids)).update(
        public_count=Greatest(F("public_count") + step, Value(0))
    )


def marking(sender: Any, instance: TaggedUserImage, **kwargs: Any) -> None:
    """pre_save: a new tag row carries its image's visibility."""
    if instance._state.adding and not kwargs.get("raw"):
        instance.public = _is_public(instance.user_image_id)  # type: ignore[attr-defined]


def tagged(sender: Any, instance: TaggedUserImage, created: bool, **kwargs: Any) -> None:
    """post_save: a new tag row on a public image counts unless the image had the tag.

    The image's jobs are listed under the tag (once, however many rows).
    """
    if not created or kwargs.get("raw"):
        return
    tag_id, image_id = instance.tag_id, instance.user_image_id  # type: ignore[attr-defined]
    jobs = Job.objects.filter(user_image_id=image_id).values_list("id", "queued_at")
    TaggedJob.objects.bulk_create(
        [
            TaggedJob(tag_id=tag_id, job_id=job_id, public=instance.public, queued_at=queued)
            for job_id, queued in jobs
        ],
        ignore_conflicts=True,
    )
    if not instance.public:
        return
    twin = TaggedUserImage.objects.filter(tag_id=tag_id, user_image_id=image_id)
    if twin.exclude(pk=instance.pk).exists():
        return
    _move([tag_id], +1)


def untagging(sender: Any, instance: TaggedUserImage, **kwargs: Any) -> None:
    """pre_delete: note whether this row is the one that counts its image (the oldest).

    The rows of one delete (an image's cascade) are all gone before any
    post_delete is sent, so only the oldest row of an image's tag may uncount it.
    """
    tag_id, image_id = instance.tag_id, instance.user_image_id  # type: ignore[attr-defined]
    older = TaggedUserImage.objects.filter(
        tag_id=tag_id, user_image_id=image_id, pk__lt=instance.pk
    )
    instance._counts_image = not older.exists()  # type: ignore[attr-defined]


def untagged(sender: Any, instance: TaggedUserImage, **kwargs: Any) -> None:
    """post_delete: the image's tag is uncounted when its counting row went with no twin left."""
    if not getattr(instance, "_counts_image", False):
        return
    tag_id, image_id = instance.tag_id, instance.user_image_id  # type: ignore[attr-defined]
    if TaggedUserImage.objects.filter(tag_id=tag_id, user_image_id=image_id).exists():
        return
    TaggedJob.objects.filter(tag_id=tag_id, job__user_image_id=image_id).delete()
    if instance.public:
        _move([tag_id], -1)


def image_visibility_changed(image_id: int, *, public: bool) -> None:
    """An image became public (or private): each of its tags counts it (or not) now."""
    rows = TaggedUserImage.objects.filter(user_image_id=image_id)
    tag_ids = set(rows.values_list("tag_id", flat=True))
    rows.update(public=public)
    TaggedJob.objects.filter(job__user_image_id=image_id).update(public=public)
    _move(tag_ids, +1 if public else -1)


def recount_tags(tag_ids: Iterable[int] | None = None) -> None:
    """Recompute the counts from the tag rows (all tags, or these)."""
    counts = (
        TaggedUserImage.objects.filter(
            tag=OuterRef("pk"),
            user_image__publicly_visible="y",
            user_image__submission__publicly_visible="y",
        )
        .order_by()
        .values("tag")
        .annotate(n=Count("user_image", distinct=True))
        .values("n")
    )
    tags = Tag.objects.all() if tag_ids is None else Tag.objects.filter(pk__in=list(tag_ids))
    tags.update(public_count=Coalesce(Subquery(counts), Value(0)))
