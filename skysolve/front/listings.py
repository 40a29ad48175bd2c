"""Cards and listings: one line of any list of images, and lists a page at a time.

Privacy rule for every listing here: an image is listed only when both the
image and its submission are public.  Private images appear only in their
owner's own pages ("my submissions", "my images", their own albums).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    prefetch_related_objects,
)

from skysolve.community.models import Album
from skysolve.front.astro import dec_dms, ra_hms
from skysolve.submissions import services as submissions
from skysolve.submissions.models import Job, Submission, UserImage


def file_url(prefix: str, job_id: int) -> str:
    # The API app serves these at nova's root-anchored paths; clients depend on
    # them, so building them by hand is as stable as reversing a name.
    return f"/{prefix}/{job_id}"


def public_jobs() -> QuerySet[Job]:
    return Job.objects.filter(
        user_image__publicly_visible="y", user_image__submission__publicly_visible="y"
    )


def public_images() -> QuerySet[UserImage]:
    return UserImage.objects.filter(publicly_visible="y", submission__publicly_visible="y")


def has_file(job: Job, key: str) -> bool:
    return bool(job.result) and key in (job.result.get("files") or {})


@dataclass(frozen=True)
class Card:
    """One image in a listing, with its latest job."""

    image_id: int
    job_id: int | None
    filename: str
    owner: str
    created: datetime
    status: str
    public: bool
    ra: float | None = None
    dec: float | None = None
    radius: float | None = None
    thumbnail: str | None = None
    distance: float | None = None

    @property
    def ra_text(self) -> str:
        return "" if self.ra is None else ra_hms(self.ra)

    @property
    def dec_text(self) -> str:
        return "" if self.dec is None else dec_dms(self.dec)


def card_for_job(job: Job, *, distance: float | None = None) -> Card:
    image = job.user_image
    owner = image.submission.user
    # Listings annotate ``has_picture`` so that no row's result JSON is read.
    if hasattr(job, "has_picture"):
        picture = bool(job.has_picture)  # None: no result yet
    else:
        picture = has_file(job, "annotated_display")
    return Card(
        image_id=image.id,
        job_id=job.id,
        filename=image.original_filename or f"image {image.id}",
        owner=owner.username if owner is not None else "anonymous",
        created=image.created,
        status=job.status,
        public=image.is_public and image.submission.is_public,
        ra=job.ra,
        dec=job.dec,
        radius=job.radius,
        thumbnail=file_url("annotated_display", job.id) if picture else thumbnail_url(image.id),
        distance=distance,
    )


def card_for_image(image: UserImage, job: Job | None = None) -> Card:
    """The card of an image: its latest job's (``job``, or looked up when not given)."""
    job = job if job is not None else latest_jobs([image]).get(image.id)
    if job is not None:
        job.user_image = image  # the image at hand, with its submission and owner
        return card_for_job(job)
    owner = image.submission.user
    return Card(
        image_id=image.id,
        job_id=None,
        filename=image.original_filename or f"image {image.id}",
        owner=owner.username if owner is not None else "anonymous",
        created=image.created,
        status="",
        public=image.is_public and image.submission.is_public,
        thumbnail=thumbnail_url(image.id),
    )


def thumbnail_url(image_id: int) -> str:
    """The small rendering of the original, for images without an annotated picture."""
    return f"/user_images/{image_id}/thumbnail"


#: What a card reads of a job: never the result JSON or the log (large).
CARD_JOB_FIELDS = ("id", "status", "queued_at", "ra", "dec", "radius", "user_image_id")


def _has_picture(jobs: QuerySet[Job]) -> QuerySet[Job]:
    picture = ExpressionWrapper(
        Q(result__files__has_key="annotated_display"), output_field=BooleanField()
    )
    return jobs.annotate(has_picture=picture)


def card_jobs(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """Jobs with what their cards show, in one query (image, submission, owner)."""
    return _has_picture(
        jobs.select_related("user_image__submission__user").only(
            *CARD_JOB_FIELDS,
            "user_image__original_filename",
            "user_image__created",
            "user_image__publicly_visible",
            "user_image__submission__publicly_visible",
            "user_image__submission__user__username",
        )
    )


def job_cards(jobs: Iterable[Job]) -> list[Card]:
    return [card_for_job(job) for job in jobs]


def latest_jobs(images: Iterable[UserImage]) -> dict[int, Job]:
    """The latest job of each image, in one query (no job's result or log is read)."""
    ids = [image.id for image in images]
    if not ids:
        return {}
    jobs = _has_picture(Job.objects.filter(user_image_id__in=ids).only(*CARD_JOB_FIELDS))
    latest: dict[int, Job] = {}
    for job in jobs.order_by("user_image_id", "-queued_at", "-id"):
        latest.setdefault(job.user_image_id, job)  # type: ignore[attr-defined]
    return latest


def image_cards(images: list[UserImage]) -> list[Card]:
    """Cards of these images with their latest jobs, in one query."""
    latest = latest_jobs(images)
    return [card_for_image(image, latest.get(image.id)) for image in images]


def _card_images(images: QuerySet[UserImage]) -> QuerySet[UserImage]:
    return images.select_related("submission__user").only(
        "id",
        "original_filename",
        "created",
        "publicly_visible",
        "submission__publicly_visible",
        "submission__user__username",
    )


# -- listings: one page at a time --------------------------------------------
#
# Every listing is paged by its sort key ("seek" paging): a page after the
# first names the last row of the page before (``before``), and the next page
# starts below it in the index that serves the listing's order.  Nothing is
# counted, and a deep page costs what the first does.  A page number without
# ``before`` (links of the old numbered pages) is honoured up to
# MAX_OFFSET_PAGES, the most an OFFSET may skip cheaply.

PAGE_SIZE = 24
MAX_OFFSET_PAGES = 20


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after the row ``before`` (an id), or at a small page number."""

    before: int | None = None
    number: int = 1

    @property
    def offset(self) -> int:
        if self.before is not None:
            return 0
        return (min(self.number, MAX_OFFSET_PAGES) - 1) * PAGE_SIZE

    @property
    def beyond(self) -> bool:
        """A page number past what plain page numbers reach (``before`` is needed)."""
        return self.before is None and self.number > MAX_OFFSET_PAGES


@dataclass(frozen=True)
class Listing:
    """One page of a listing; ``older`` is the ``before`` of the next page (None: last)."""

    items: list[Any]
    older: int | None = None


def _seek(
    rows: QuerySet[Any],
    cursor: Cursor,
    *,
    key: str,
    anchor: Any,
    size: int = PAGE_SIZE,
) -> tuple[list[Any], bool]:
    """A page of ``rows`` ordered by (``key``, id) descending, and whether more follow.

    ``anchor`` is the value of ``key`` of the row ``cursor.before`` (None when
    that row is gone: the listing starts again at the top).
    """
    if cursor.beyond:
        return [], False
    rows = rows.order_by(f"-{key}", "-id")
    if cursor.before is not None and anchor is not None:
        # key <= anchor is a range on the index; the ties are cut by id.
        rows = rows.filter(**{f"{key}__lte": anchor}).exclude(
            **{key: anchor, "id__gte": cursor.before}
        )
    found = list(rows[cursor.offset : cursor.offset + size + 1])
    return found[:size], len(found) > size


def _anchor(model: Any, key: str, row_id: int | None) -> Any:
    if row_id is None:
        return None
    return model.objects.filter(pk=row_id).values_list(key, flat=True).first()


def gallery(cursor: Cursor = Cursor()) -> Listing:
    """Recent public solved images, newest first."""
    jobs = card_jobs(public_jobs().filter(status=Job.SUCCESS))
    found, more = _seek(
        jobs, cursor, key="finished_at", anchor=_anchor(Job, "finished_at", cursor.before)
    )
    return Listing(job_cards(found), found[-1].id if more else None)


def user_public_images(owner: User, cursor: Cursor = Cursor()) -> Listing:
    """A user's public images (every job), newest first.

    A user's jobs carry ``owner_key`` "user:<id>", which an index serves in
    the listing's order; the submission's user is checked as well.
    """
    jobs = public_jobs().filter(owner_key=f"user:{owner.pk}", user_image__submission__user=owner)
    found, more = _seek(
        card_jobs(jobs), cursor, key="queued_at", anchor=_anchor(Job, "queued_at", cursor.before)
    )
    return Listing(job_cards(found), found[-1].id if more else None)


#: The status filters of the owner's listings, by the latest job of each image.
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "solved": (Job.SUCCESS,),
    "in_progress": (Job.QUEUED, Job.RUNNING),
    "failed": (Job.FAILURE, Job.CANCELLED),
}


def _latest_status() -> Subquery:
    latest = Job.objects.filter(user_image=OuterRef("pk")).order_by("-queued_at", "-id")
    return Subquery(latest.values("status")[:1])


def my_images(user: User, cursor: Cursor = Cursor(), *, status: str = "") -> Listing:
    """The user's images, newest first; ``status`` one of STATUS_FILTERS' keys (or all)."""
    images = UserImage.objects.filter(user=user, submission__user=user)
    if status in STATUS_FILTERS:
        images = images.annotate(latest_status=_latest_status()).filter(
            latest_status__in=STATUS_FILTERS[status]
        )
    found, more = _seek(
        _card_images(images),
        cursor,
        key="created",
        anchor=_anchor(UserImage, "created", cursor.before),
    )
    return Listing(image_cards(found), found[-1].id if more else None)


@dataclass(frozen=True)
class SubmissionRow:
    id: int
    created: datetime
    filename: str
    public: bool
    finished: bool
    jobs: list[tuple[int, str]]
    error: str
    #: The first image's picture (the annotated one once solved).
    thumbnail: str | None = None


def my_submissions(user: User, cursor: Cursor = Cursor(), *, status: str = "") -> Listing:
    """The user's submissions, newest first; with ``status``, those with a job in that state."""
    subs = Submission.objects.filter(user=user).only(
        "id", "created", "original_filename", "url", "publicly_visible", "error_message"
    )
    if status in STATUS_FILTERS:
        in_state = Job.objects.filter(
            user_image__submission=OuterRef("pk"), status__in=STATUS_FILTERS[status]
        )
        subs = subs.filter(Exists(in_state))
    found, more = _seek(
        subs, cursor, key="created", anchor=_anchor(Submission, "created", cursor.before)
    )
    images = UserImage.objects.only("id", "created", "submission_id")
    jobs = _has_picture(Job.objects.only(*CARD_JOB_FIELDS)).order_by("queued_at", "id")
    prefetch_related_objects(
        found,
        Prefetch("user_images", queryset=images),
        Prefetch("user_images__jobs", queryset=jobs),
    )
    rows = []
    for sub in found:
        images_of = sorted(sub.user_images.all(), key=lambda image: (image.created, image.id))
        job_list = [(job.id, job.status) for image in images_of for job in image.jobs.all()]
        thumbnail = None
        if images_of:
            first = images_of[0]
            solved = [job for job in first.jobs.all() if getattr(job, "has_picture", False)]
            thumbnail = thumbnail_url(first.id)
            if solved:
                thumbnail = file_url("annotated_display", solved[-1].id)
        rows.append(
            SubmissionRow(
                id=sub.id,
                created=sub.created,
                filename=sub.original_filename or sub.url or f"submission {sub.id}",
                public=sub.is_public,
                finished=bool(job_list) and all(s in Job.FINISHED for _, s in job_list),
                jobs=job_list,
                error=sub.error_message,
                thumbnail=thumbnail,
            )
        )
    return Listing(rows, found[-1].id if more else None)


# -- albums ------------------------------------------------------------------


def albums_for(viewer: submissions.Viewer, cursor: Cursor = Cursor()) -> Listing:
    """Public albums, plus the viewer's own private ones, newest first.

    The two are paged apart (each by an index) and merged, so that no
    OR of the two conditions has to be sorted whole.
    """
    anchor = _anchor(Album, "created", cursor.before)
    albums = Album.objects.select_related("owner")
    found, more = _seek(albums.filter(publicly_visible="y"), cursor, key="created", anchor=anchor)
    if viewer.user is not None:
        own = albums.filter(owner=viewer.user).exclude(publicly_visible="y")
        mine, more_mine = _seek(own, cursor, key="created", anchor=anchor)
        merged = sorted([*found, *mine], key=lambda a: (a.created, a.id), reverse=True)
        more = more or more_mine or len(merged) > PAGE_SIZE
        found = merged[:PAGE_SIZE]
    return Listing(found, found[-1].id if more and found else None)


def album_images(album: Album, viewer: submissions.Viewer, cursor: Cursor = Cursor()) -> Listing:
    """A page of an album's images, most recently added first.

    Read through the album's membership rows (the album's own index), so the
    cost follows the album and never the images of everyone else.
    """
    if cursor.beyond:
        return Listing([])
    members = Album.user_images.through.objects.filter(album_id=album.id)
    mine = viewer.user is not None and viewer.user.pk == album.owner_id  # type: ignore[attr-defined]
    if not mine:
        members = members.filter(
            userimage__publicly_visible="y", userimage__submission__publicly_visible="y"
        )
    if cursor.before is not None:
        anchor = (
            Album.user_images.through.objects.filter(album_id=album.id, userimage_id=cursor.before)
            .values_list("id", flat=True)
            .first()
        )
        if anchor is not None:
            members = members.filter(id__lt=anchor)
    rows = members.select_related("userimage__submission__user").only(
        "id",
        "userimage__id",
        "userimage__original_filename",
        "userimage__created",
        "userimage__publicly_visible",
        "userimage__submission__publicly_visible",
        "userimage__submission__user__username",
    )
    found = [
        row.userimage for row in rows.order_by("-id")[cursor.offset : cursor.offset + PAGE_SIZE + 1]
    ]
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    return Listing(image_cards(found), found[-1].id if more else None)
