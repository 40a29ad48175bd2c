"""What the web pages show, computed from plain values (never a request).

Privacy rule for every listing here: an image is listed only when both the
image and its submission are public.  Private images appear only in their
owner's own pages ("my submissions", "my images", their own albums).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
from django.utils import timezone

from skysolve.engine.inputs.formats import sniff_format
from skysolve.engine.params import SolveParameters
from skysolve.front import originals
from skysolve.front.astro import (
    angle_text,
    angular_distance,
    dec_dms,
    ra_hms,
    small_circle,
)
from skysolve.front.skymap import MapField, fields_map_svg, sky_plot_html
from skysolve.submissions import services as submissions
from skysolve.submissions import sky
from skysolve.submissions.jobfiles import PICTURES
from skysolve.submissions.logs import shown_log
from skysolve.submissions.models import Album, Job, Submission, Tag, TaggedUserImage, UserImage

if TYPE_CHECKING:  # viewers imports astropy, which only the results page needs
    from skysolve.front.viewers import Field

#: Result files and the nova URL the API serves each one at.
RESULT_FILES: list[tuple[str, str, str]] = [
    ("wcs", "wcs_file", "WCS header (wcs.fits)"),
    ("new_fits", "new_fits_file", "image with WCS (new-image.fits)"),
    ("rdls", "rdls_file", "catalogue stars in the field (rdls.fits)"),
    ("axy", "axy_file", "detected sources (axy.fits)"),
    ("corr", "corr_file", "matched star pairs (corr.fits)"),
    ("kml", "kml_file", "Google Earth sky overlay (KML)"),
    ("lens", "lens_file", "all-sky lens model and matched stars (lens.json)"),
    ("annotated_full", "annotated_full", "annotated image, full size"),
    ("red_green_full", "red_green_image_full", "sources vs catalogue, full size"),
    ("extraction_full", "extraction_image_full", "detected sources, full size"),
    ("grid_full", "grid_full", "RA/Dec grid, full size"),
    ("residuals_full", "residuals_full", "fit residuals as arrows, full size"),
    ("log", "joblog", "solver log"),
]

#: The overlays the results page can switch between (display-size pictures).
OVERLAYS: list[tuple[str, str, str]] = [
    ("annotated_display", "annotated_display", "objects"),
    ("extraction_display", "extraction_image_display", "sources"),
    ("red_green_display", "red_green_image_display", "catalogue stars"),
    ("grid_display", "grid_display", "grid"),
    ("residuals_display", "residuals_display", "fit residuals"),
]

STAGE_LABELS = {
    "": "waiting for a worker",
    "preparing": "reading the image",
    "extracting": "extracting sources",
    "solving": "solving",
    "annotating": "naming objects in the field",
    "finished": "finishing",
}

#: Most tags the results page shows.
TAGS_SHOWN = 100
#: How many lines of the solver log the status page shows.
LOG_TAIL_LINES = 30


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


# -- cards: one line of any listing ------------------------------------------


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


def _card_jobs(jobs: QuerySet[Job]) -> QuerySet[Job]:
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


def _job_cards(jobs: Iterable[Job]) -> list[Card]:
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
    jobs = _card_jobs(public_jobs().filter(status=Job.SUCCESS))
    found, more = _seek(
        jobs, cursor, key="finished_at", anchor=_anchor(Job, "finished_at", cursor.before)
    )
    return Listing(_job_cards(found), found[-1].id if more else None)


def user_public_images(owner: User, cursor: Cursor = Cursor()) -> Listing:
    """A user's public images (every job), newest first.

    A user's jobs carry ``owner_key`` "user:<id>", which an index serves in
    the listing's order; the submission's user is checked as well.
    """
    jobs = public_jobs().filter(owner_key=f"user:{owner.pk}", user_image__submission__user=owner)
    found, more = _seek(
        _card_jobs(jobs), cursor, key="queued_at", anchor=_anchor(Job, "queued_at", cursor.before)
    )
    return Listing(_job_cards(found), found[-1].id if more else None)


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


# -- search ------------------------------------------------------------------

#: What a position search looks for (the ``mode`` of the search form).
WITHIN = "within"  # fields whose centre is within the radius
OVERLAP = "overlap"  # fields that overlap the circle
CONTAINS = "contains"  # fields that contain the point (the radius is not used)
SEARCH_MODES = (WITHIN, OVERLAP, CONTAINS)
#: Most cards a search shows (nearest first).
SEARCH_LIMIT = 200


@dataclass(frozen=True)
class Query:
    ra: float | None = None
    dec: float | None = None
    radius: float | None = None
    object_name: str = ""
    tag: str = ""
    username: str = ""
    mode: str = OVERLAP  # as astronomers mean "images of this place"

    @property
    def is_cone(self) -> bool:
        return self.ra is not None and self.dec is not None and self.radius is not None

    @property
    def is_empty(self) -> bool:
        return not (self.is_cone or self.object_name or self.tag or self.username)


def object_tags(typed: str) -> QuerySet[Tag]:
    """The machine tags that name the object ``typed``, by any of its names (objectnames)."""
    from skysolve.front.objectnames import designation, names_for

    wanted = names_for(typed)
    match = Q(pk__in=[])
    if wanted.exact:
        match |= Q(text__in=sorted(wanted.exact))
    for star in sorted(wanted.stars):
        match |= Q(text__iexact=f"The star {star}") | Q(text__istartswith=f"The star {star} (")
    if designation(typed) is None:
        # As typed, too: "Ursa Major" is in "Part of the constellation Ursa Major (UMa)".
        match |= Q(text__icontains=typed)
    return Tag.objects.filter(match)


def cone_filter(
    jobs: QuerySet[Job], ra: float, dec: float, radius: float, sizes: Iterable[int] | None = None
) -> QuerySet[Job]:
    """Jobs whose centre may be within ``radius`` of (ra, dec): HEALPix ranges of the
    sky index (:mod:`skysolve.submissions.sky`); callers refine with exact distances.

    ``sizes`` limits the search to these classes of field size (all by default).
    """
    return jobs.filter(_cone_q(ra, dec, {size: radius for size in _all_sizes(sizes)}))


def _all_sizes(sizes: Iterable[int] | None) -> list[int]:
    return list(range(len(sky.SIZE_LIMITS))) if sizes is None else list(sizes)


def _cone_q(ra: float, dec: float, radii: dict[int, float]) -> Q:
    """Centres within ``radii[size]`` of (ra, dec), for each class of field size.

    Each term names the class and one range of pixels, so that each is one
    range of the index (sky_size, sky_pixel).
    """
    terms = Q(pk__in=[])
    for size, radius in radii.items():
        for lo, hi in sky.cone_ranges(ra, dec, radius):
            terms |= Q(sky_size=size, sky_pixel__gte=lo, sky_pixel__lt=hi)
    return terms


def _reach(mode: str, search_radius: float, field_radius: float) -> float:
    """How far from the point a matching field's centre may be."""
    if mode == CONTAINS:
        return field_radius
    if mode == OVERLAP:
        return search_radius + field_radius
    return search_radius


def sky_search(
    jobs: QuerySet[Job],
    ra: float,
    dec: float,
    radius: float,
    *,
    mode: str = WITHIN,
    limit: int = SEARCH_LIMIT,
    max_reach: float = 180.0,
) -> list[tuple[float, int]]:
    """(distance, job id) of the ``limit`` matching jobs with the nearest centres.

    The cone around the point grows from 1/64 of the reach, doubling, until
    ``limit`` matches are found inside it (nothing farther can come before
    them) or it reaches as far as a match can be; each size class of fields
    stops growing at its own reach.  Only ids and calibrations are read, so
    the work follows the matches found, not the table.
    """
    reaches = {size: _reach(mode, radius, limit_) for size, limit_ in enumerate(sky.SIZE_LIMITS)}
    farthest = min(180.0, max(reaches.values()))
    cone = max(farthest / 64, 0.05)
    seen: dict[int, float] = {}
    while True:
        radii = {size: min(cone, reach) for size, reach in reaches.items() if reach > 0}
        rows = jobs.filter(_cone_q(ra, dec, radii)).values_list("id", "ra", "dec", "radius")
        for job_id, job_ra, job_dec, job_radius in rows:
            distance = angular_distance(ra, dec, job_ra, job_dec)
            reach = min(max_reach, _reach(mode, radius, job_radius or 0.0))
            if distance <= reach and distance <= cone:
                seen[job_id] = distance
        if len(seen) >= limit or cone >= farthest:
            break
        cone *= 2
        # A class whose whole reach the cone has covered needs no more looking.
        reaches = {size: reach for size, reach in reaches.items() if reach > cone / 2}
    found = sorted((distance, job_id) for job_id, distance in seen.items())
    return found[:limit]


#: Public images carrying the searched tags from which on a search walks the solved
#: jobs newest first, checking each for the tag, rather than sorting the tag's images.
COMMON_TAG = 10_000


def _tagged(tags: list[int], *, machine: bool | None, probe: bool) -> Q:
    """Jobs whose image carries one of the tags ``tags`` (ids).

    ``probe``: as a check of each job (an OR PostgreSQL does not turn into a
    join), so that a listing newest first reads jobs in the index order and
    stops at its limit; otherwise as a join, which reads the tags' images.
    """
    if not probe:
        # The tags' images (fewer than COMMON_TAG: an index range each) read
        # first, then their jobs by id; as a subquery PostgreSQL hashed it
        # against every public image instead (0.1 s at 1M).
        carrying = TaggedUserImage.objects.filter(tag__in=tags)
        if machine is not None:
            carrying = carrying.filter(machine=machine)
        return Q(user_image_id__in=list(carrying.values_list("user_image_id", flat=True)))
    rows = TaggedUserImage.objects.filter(user_image=OuterRef("user_image"), tag__in=tags)
    if machine is not None:
        rows = rows.filter(machine=machine)
    return Q(Exists(rows)) | Q(id__lt=0)  # no job has a negative id


def _with_terms(query: Query) -> QuerySet[Job]:
    jobs = public_jobs().filter(status=Job.SUCCESS)
    for text, machine in ((query.object_name, True), (query.tag, None)):
        if not text:
            continue
        # objects_in_field are stored as machine tags, which the database can search.
        tags = object_tags(text) if machine else Tag.objects.filter(text__iexact=text)
        # The tags' ids, not a subquery: with them PostgreSQL estimates the
        # tags' images from the index and joins from there (a subquery with a
        # pattern made it walk every solved job instead: 0.3 s at 1M).
        found = list(tags.values_list("id", "public_count"))
        if not found:
            return Job.objects.none()
        probe = sum(count for _, count in found) >= COMMON_TAG
        jobs = jobs.filter(_tagged([tag for tag, _ in found], machine=machine, probe=probe))
    if query.username:
        jobs = jobs.filter(user_image__submission__user__username__iexact=query.username)
    return jobs


def search(query: Query, limit: int = SEARCH_LIMIT) -> list[Card]:
    """Public solved images matching every given criterion (at most ``limit``)."""
    if query.is_empty:
        return []
    jobs = _with_terms(query)
    if not query.is_cone:
        return _job_cards(_card_jobs(jobs).order_by("-finished_at", "-id")[:limit])
    assert query.ra is not None and query.dec is not None and query.radius is not None
    found = sky_search(jobs, query.ra, query.dec, query.radius, mode=query.mode, limit=limit)
    return _cards_by_id(found)


def _cards_by_id(found: list[tuple[float, int]]) -> list[Card]:
    jobs = {job.id: job for job in _card_jobs(Job.objects.filter(id__in=[i for _, i in found]))}
    return [card_for_job(jobs[i], distance=d) for d, i in found if i in jobs]


def nearby(job: Job, limit: int = 12) -> list[Card]:
    """Other public solved fields that overlap this one, nearest first (never private ones),
    centred within 5° or twice its radius."""
    if job.ra is None or job.dec is None:
        return []
    jobs = public_jobs().filter(status=Job.SUCCESS).exclude(id=job.id)
    radius = job.radius or 0.0
    reach = min(90.0, max(5.0, 2 * radius))
    found = sky_search(jobs, job.ra, job.dec, radius, mode=OVERLAP, limit=limit, max_reach=reach)
    return _cards_by_id(found)


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


def get_album(album_id: int, viewer: submissions.Viewer) -> Album:
    album = Album.objects.select_related("owner").filter(pk=album_id if 0 < album_id < 2**31 else 0)
    found = album.first()
    if found is None:
        raise submissions.NotFound(f"no album with id {album_id}")
    mine = viewer.user is not None and viewer.user.pk == found.owner_id  # type: ignore[attr-defined]
    if found.publicly_visible != "y" and not (mine or viewer.is_staff):
        raise submissions.NotFound(f"no album with id {album_id}")
    return found


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


# -- status ------------------------------------------------------------------

#: Jobs ahead in the queue counted for the status page (more shows as "more than").
QUEUE_AHEAD_SHOWN = 1000


def status_label(job: Job) -> str:
    if job.status == Job.QUEUED:
        # Counted up to a bound: a long queue is not read whole for every poll.
        earlier = Job.objects.filter(status=Job.QUEUED, queued_at__lt=job.queued_at)
        ahead = earlier.values("id")[:QUEUE_AHEAD_SHOWN].count()
        if ahead >= QUEUE_AHEAD_SHOWN:
            return f"queued (more than {QUEUE_AHEAD_SHOWN - 1} ahead)"
        return "queued" if ahead == 0 else f"queued ({ahead} ahead)"
    if job.status == Job.RUNNING:
        return STAGE_LABELS.get(job.stage, job.stage)
    if job.status == Job.SUCCESS:
        return "done: solved"
    if job.status == Job.CANCELLED:
        return "cancelled"
    return f"failed: {shown_log(job.error_message)}" if job.error_message else "failed"


def log_tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The end of a solver log as shown to people: file paths reduced to names."""
    return shown_log("\n".join(text.splitlines()[-lines:]))


SCALE_UNIT_TEXT = {
    "degwidth": "° image width",
    "arcminwidth": "′ image width",
    "arcsecperpix": "″ per pixel",
    "focalmm": "mm focal length (35 mm equivalent)",
}
PARITY_TEXT = {0: "positive", 1: "negative (flipped)", 2: "try both"}


def upload_settings(parameters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The solve settings a submission was made with, as (label, text) rows."""
    p = dict(parameters)
    units = SCALE_UNIT_TEXT.get(str(p.get("scale_units")), str(p.get("scale_units") or ""))
    if p.get("scale_type") == "ev" and p.get("scale_est") is not None:
        err = p.get("scale_err")
        scale = f"{p['scale_est']:g} {units} ± {err if err is not None else 20:g}%"
    elif p.get("scale_lower") is not None or p.get("scale_upper") is not None:
        lo, hi = p.get("scale_lower"), p.get("scale_upper")
        scale = f"{'…' if lo is None else f'{lo:g}'} to {'…' if hi is None else f'{hi:g}'} {units}"
    else:
        scale = "not given (blind)"
    if p.get("center_ra") is not None and p.get("center_dec") is not None:
        radius = p.get("radius")
        position = f"RA {ra_hms(p['center_ra'])}, Dec {dec_dms(p['center_dec'])}"
        position += f" within {radius:g}°" if radius is not None else ""
    else:
        position = "not given"
    extractor = "sextractor" if p.get("use_sextractor") else str(p.get("extractor") or "sep")
    downsample = p.get("downsample_factor")
    return [
        ("Scale", scale),
        ("Position", position),
        ("Parity", PARITY_TEXT.get(p.get("parity", 2), str(p.get("parity")))),
        ("Downsample", f"{downsample:g}×" if downsample else "automatic"),
        ("Tweak (SIP) order", _tweak_text(p.get("tweak_order"))),
        ("Source extractor", extractor),
    ]


def _tweak_text(order: Any) -> str:
    return "chosen by the fit" if order is None else str(order)


def detected_stars(job: Job) -> int | None:
    """How many sources the solve used, once it has said (None before)."""
    if not job.result or "n_sources" not in job.result:
        return None
    return int(job.result["n_sources"])


def stars_text(count: int | None) -> str:
    """``count`` sources as people should read it: at the engine's cap it is a cap, not a count."""
    if count is None:
        return ""
    cap = SolveParameters().max_sources
    if count >= cap:
        return f"the brightest {count} (the most the solver uses; the image holds more)"
    return str(count)


def submission_status(
    submission: Submission, viewer: submissions.Viewer | None = None
) -> dict[str, Any]:
    """What the status page polls: one entry per job, and whether all finished.

    With a viewer, jobs of images they may not read (an image its owner hid
    from a public batch, in strict mode) are left out.
    """
    jobs = (
        Job.objects.filter(user_image__submission=submission)
        .select_related("user_image")
        .order_by("queued_at", "id")
    )
    entries = []
    for job in jobs:
        public = job.user_image.is_public
        if viewer is not None and not submissions.may_read(
            viewer, submission, public=public, pages=True
        ):
            continue
        entries.append(
            {
                "id": job.id,
                "status": job.status,
                "stage": job.stage,
                "label": status_label(job),
                "log": log_tail(job.log),
                "error": shown_log(job.error_message),
                "results_url": f"/results/{job.id}",
                "stars": detected_stars(job),
                "stars_text": stars_text(detected_stars(job)),
                "pictures_pending": pictures_pending(job),
            }
        )
    return {
        "submission": submission.id,
        "settings": upload_settings(submission.parameters or {}),
        "finished": bool(entries) and all(e["status"] in Job.FINISHED for e in entries),
        "error": shown_log(submission.error_message),
        "jobs": entries,
    }


# -- results -----------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationRow:
    label: str
    value: str


def calibration_rows(job: Job) -> list[CalibrationRow]:
    cal = job.calibration_dict()
    nova = job.nova_calibration()
    if cal is None or nova is None:
        return []
    parity = "positive (+1, not flipped)" if cal["parity"] >= 0 else "negative (−1, flipped)"
    return [
        CalibrationRow("Centre RA", f"{cal['ra']:.6f}° = {ra_hms(cal['ra'])}"),
        CalibrationRow("Centre Dec", f"{cal['dec']:+.6f}° = {dec_dms(cal['dec'])}"),
        CalibrationRow("Pixel scale", f"{cal['pixscale']:.4g} arcsec/pixel"),
        CalibrationRow(
            "Field size",
            f"{angle_text(cal['width_arcsec'] / 3600)} × {angle_text(cal['height_arcsec'] / 3600)}",
        ),
        CalibrationRow("Radius", f"{angle_text(cal['radius'])} (half-diagonal)"),
        CalibrationRow("Orientation", f"{nova['orientation']:.2f}° East of North"),
        CalibrationRow("Parity", parity),
    ]


def object_groups(job: Job) -> list[list[str]]:
    """The objects in the field, one list of names per object ("NGC 5194", "M 51", "Whirlpool
    Galaxy" are one galaxy), in ``objects_in_field``'s order."""
    group_of: dict[str, int] = {}
    groups: list[list[str]] = []
    for annotation in job.annotations():
        names = [str(name) for name in annotation.get("names") or []]
        if len(names) > 1 and annotation.get("type") not in ("bright", "constellation"):
            for name in names:
                group_of.setdefault(name, len(groups))
            groups.append(names)
    shown: list[list[str]] = []
    seen: set[int] = set()
    for name in job.objects_in_field():
        index = group_of.get(name)
        if index is None:
            shown.append([name])
        elif index not in seen:
            seen.add(index)
            shown.append(groups[index])
    return shown


def quality_rows(job: Job) -> list[CalibrationRow]:
    """How good the calibration is, in words and numbers (empty when not measured)."""
    q = job.quality()
    if not q or not q.get("matched_stars"):
        return []

    def number(key: str, fmt: str, unit: str = "") -> str:
        value = q.get(key)
        return "—" if value is None else f"{value:{fmt}}{unit}"

    order = q.get("sip_order") or 0
    how = "requested" if q.get("order_chosen_by") == "request" else "chosen by cross-validation"
    band = f" ({q['band']} catalogue)" if q.get("band") else ""
    distortion = f"SIP order {order} ({how})" if order else f"none ({how})"
    if q.get("lens_projection"):
        distortion = f"all-sky lens model, {q['lens_projection']} projection (lens file)"
    rows = [
        CalibrationRow("Matched stars", f"{q['matched_stars']}{band}"),
        CalibrationRow(
            "Residuals",
            f"RMS {number('rms_px', '.3f', ' px')} = {number('rms_arcsec', '.2f', '″')}, "
            f"median {number('median_px', '.3f', ' px')}",
        ),
        CalibrationRow("Distortion", distortion),
        CalibrationRow(
            "Centre uncertainty (1σ)",
            f"RA {number('ra_error_arcsec', '.3g', '″')}, "
            f"Dec {number('dec_error_arcsec', '.3g', '″')}",
        ),
        CalibrationRow(
            "Scale, rotation uncertainty (1σ)",
            f"{number('pixscale_error', '.2g', ' arcsec/pixel')}, "
            f"{number('rotation_error_deg', '.2g', '°')}",
        ),
        CalibrationRow("Faintest matched star", number("limiting_mag", ".2f", " mag")),
    ]
    if q.get("zero_point") is not None:
        rows.append(
            CalibrationRow(
                "Photometric zero point",
                f"{q['zero_point']:.2f} ± {number('zero_point_scatter', '.2f')} mag "
                f"({q.get('zero_point_stars')} stars; mag + 2.5 log10 flux)",
            )
        )
    if q.get("fwhm_px") is not None:
        rows.append(
            CalibrationRow(
                "Star shapes",
                f"FWHM {q['fwhm_px']:.2f} px, elongation {number('elongation', '.2f')} "
                f"(median of {q.get('shape_stars')} stars)",
            )
        )
    if q.get("refit") is False:
        rows.append(CalibrationRow("Final fit", "not better than the solver's own: kept"))
    return rows


def display_up(job: Job, orientation: float) -> float:
    """Position angle (degrees East of North, in [0, 360)) of the displayed picture's up.

    ``orientation`` is the +y axis's; FITS pictures are shown with +y up, every
    other input (and a star list's canvas) with +y down.
    """
    bottom_up = (job.result or {}).get("image_format") == "fits"
    return (orientation if bottom_up else orientation + 180.0) % 360.0


def reproduce_command(job: Job) -> str:
    command = [str(part) for part in (job.result or {}).get("command") or []]
    filename = job.user_image.original_filename
    if len(command) >= 3 and command[:2] == ["skysolve", "solve"] and filename:
        # The engine saw the stored upload's generated name; people have their own file.
        command[2] = filename
    return shlex.join(command)


@dataclass(frozen=True)
class Licence:
    """The Creative Commons licence an image is offered under, or none."""

    code: str  # "by-nc-sa"; "" when the owner chose none
    name: str
    url: str


#: (commercial use, modifications) -> the Creative Commons licence nova offers for it.
_CC_CODES = {
    ("y", "y"): "by",
    ("y", "sa"): "by-sa",
    ("y", "n"): "by-nd",
    ("n", "y"): "by-nc",
    ("n", "sa"): "by-nc-sa",
    ("n", "n"): "by-nc-nd",
}
_CC_NAMES = {"by": "Attribution", "nc": "NonCommercial", "sa": "ShareAlike", "nd": "NoDerivatives"}


def licence(submission: Submission) -> Licence:
    """The submission's licence: its own choice, else its owner's default.

    "Default" all the way down means nobody chose a licence: all rights stay
    with the owner.  Only one of the two chosen: the other is read as "not
    allowed", the reading that grants nothing the owner did not say.
    """
    commercial, modifications = submission.allow_commercial_use, submission.allow_modifications
    owner = submission.user
    if owner is not None and "d" in (commercial, modifications):
        profile = getattr(owner, "profile", None)
        if profile is not None:
            if commercial == "d":
                commercial = profile.default_allow_commercial_use
            if modifications == "d":
                modifications = profile.default_allow_modifications
    if commercial == "d" and modifications == "d":
        return Licence("", "no licence chosen: all rights reserved by the owner", "")
    key = (commercial if commercial != "d" else "n", modifications if modifications != "d" else "n")
    code = _CC_CODES.get(key, "by-nc-nd")
    words = "-".join(_CC_NAMES[part] for part in code.split("-"))
    return Licence(
        code,
        f"CC {code.upper()} 4.0 ({words})",
        f"https://creativecommons.org/licenses/{code}/4.0/",
    )


def pictures_pending(job: Job) -> bool:
    """A solved job whose worker is still drawing its pictures and writing its files.

    Once its lease has run out the worker is gone and they will not come.
    """
    return (
        job.status == Job.SUCCESS
        and job.stage == PICTURES
        and job.lease_expires is not None
        and job.lease_expires > timezone.now()
    )


def results(job: Job) -> dict[str, Any]:
    """Everything the results page shows about one job."""
    image = job.user_image
    submission = image.submission
    files = (job.result or {}).get("files") or {}
    overlays = [
        {"key": key, "url": file_url(prefix, job.id), "label": label}
        for key, prefix, label in OVERLAYS
        if key in files
    ]
    downloads = [
        {"url": file_url(prefix, job.id), "label": label}
        for key, prefix, label in RESULT_FILES
        if key in files
    ]
    original = originals.original_path(image)
    if (original is not None and sniff_format(original)) or image.star_list or submission.star_list:
        # nova's "original": the upload itself, rendered for the browser.
        overlays.append(
            {"key": "original", "url": f"/user_images/{image.id}/display", "label": "original"}
        )
    if job.log and "log" not in files:
        downloads.append({"url": file_url("joblog", job.id), "label": "solver log"})
    sky_map = sky_plot(job)
    owner = submission.user
    return {
        "job": job,
        "image": image,
        "submission": submission,
        "owner": owner.username if owner is not None else "anonymous",
        "public": image.is_public and submission.is_public,
        "calibration": calibration_rows(job),
        "quality": quality_rows(job),
        "overlays": overlays,
        "downloads": downloads,
        "objects": object_groups(job),
        "tags": image.tag_texts(machine=False, limit=TAGS_SHOWN),
        "original_url": f"/user_images/{image.id}/original" if original is not None else "",
        "sky_map": sky_map,
        "command": reproduce_command(job),
        "status_label": status_label(job),
        "licence": licence(submission),
        "pictures_pending": pictures_pending(job),
        "error_message": shown_log(job.error_message),
        "log_tail": log_tail(job.log),
        "index_fix": index_fix(job),
    }


#: How the engine's no_index message introduces the command that fixes it.
INDEX_FIX_PREFIX = "Install index files for it with: "


def index_fix(job: Job) -> str:
    """For a job that failed for want of index files, the command that installs them."""
    if job.error_code != "no_index" or INDEX_FIX_PREFIX not in job.error_message:
        return ""
    return job.error_message.split(INDEX_FIX_PREFIX, 1)[1].strip()


# -- sky viewers ---------------------------------------------------------------


def _field_outline(job: Job) -> tuple[Field, list[tuple[float, float]]] | None:
    """The solved field as the viewers and the sky plot need it, and its corners (closed)."""
    from pathlib import Path

    from skysolve.front import viewers

    if not job.has_calibration or not job.result:
        return None
    result = job.result
    width, height = int(result.get("image_width") or 0), int(result.get("image_height") or 0)
    assert job.ra is not None and job.dec is not None
    if width <= 0 or height <= 0 or not job.pixscale:
        return None
    path = originals.original_path(job.user_image)
    field = viewers.Field(
        ra=job.ra,
        dec=job.dec,
        radius=job.radius or 0.0,
        pixscale=job.pixscale,
        width=width,
        height=height,
        orientation=job.orientation or 0.0,
        parity=job.parity or 1.0,
        bottom_up=path is not None and sniff_format(path) == "fits",
    )
    wcs_file = (result.get("files") or {}).get("wcs")
    return field, viewers.outline(field, Path(wcs_file) if wcs_file else None)


def sky_plot(job: Job) -> str | None:
    """The results page's zoomable plot, from the whole sky down to the field's outline."""
    if not job.has_calibration:
        return None
    assert job.ra is not None and job.dec is not None
    found = _field_outline(job)
    outline = found[1] if found is not None else small_circle(job.ra, job.dec, job.radius or 0.1)
    return sky_plot_html(job.ra, job.dec, job.radius or 0.0, outline)


def sky_viewers(job: Job, *, site_root: str) -> list[dict[str, str]]:
    """Links to external sky viewers for a solved job, built here from its WCS.

    WorldWideTelescope fetches the picture itself from this site, so it is
    offered only for public images on a site whose ``SITE_ROOT`` is not local.
    """
    from skysolve.front import viewers

    found = _field_outline(job)
    if found is None:
        return []
    field, corners = found
    image = job.user_image
    width, height = field.width, field.height
    links = [
        {
            "label": "Legacy Surveys viewer (field outline)",
            "url": viewers.legacy_surveys_url(field, corners),
        }
    ]
    public = image.is_public and image.submission.is_public
    local = any(host in site_root for host in ("://localhost", "://127.", "://[::1]"))
    if public and not local:
        scale = originals.SIZES["display"] / max(width, height)
        size = (max(1, round(width * min(1.0, scale))), max(1, round(height * min(1.0, scale))))
        links.append(
            {
                "label": "WorldWideTelescope (the image on the sky)",
                "url": viewers.wwt_url(
                    field,
                    name=image.original_filename,
                    image_url=f"{site_root.rstrip('/')}/user_images/{image.id}/display",
                    display_size=size,
                ),
            }
        )
    return links


#: The most fields an all-sky map of a user's, an album's or my images draws (the newest).
MAP_FIELDS = 500


def _fields_map(jobs: QuerySet[Job], *, title: str) -> str | None:
    """An all-sky map of the newest MAP_FIELDS solved ``jobs``, each linking to its results.

    One query of five columns, bounded by MAP_FIELDS whatever the listing's size.
    """
    rows = (
        jobs.filter(status=Job.SUCCESS, ra__isnull=False, dec__isnull=False)
        .order_by("-queued_at", "-id")
        .values_list("id", "ra", "dec", "radius", "user_image__original_filename")[:MAP_FIELDS]
    )
    fields = [
        MapField(ra=ra, dec=dec, radius=radius or 0.0, url=f"/results/{job_id}", label=name)
        for job_id, ra, dec, radius, name in rows
    ]
    return fields_map_svg(fields, title=title) if fields else None


def user_fields_map(owner: User) -> str | None:
    """Where a user's public images are (the jobs of the user page's listing)."""
    jobs = public_jobs().filter(owner_key=f"user:{owner.pk}", user_image__submission__user=owner)
    return _fields_map(jobs, title=f"Where {owner.username}'s images are")


def my_fields_map(user: User) -> str | None:
    """Where the user's own images are, private ones included."""
    jobs = Job.objects.filter(owner_key=f"user:{user.pk}", user_image__user=user)
    return _fields_map(jobs, title="Where my images are")


def album_fields_map(album: Album, viewer: submissions.Viewer) -> str | None:
    """Where an album's images are; a visitor sees its public ones only."""
    jobs = Job.objects.filter(user_image__albums=album)
    mine = viewer.user is not None and viewer.user.pk == album.owner_id  # type: ignore[attr-defined]
    if not mine:
        jobs = jobs.filter(
            user_image__publicly_visible="y", user_image__submission__publicly_visible="y"
        )
    return _fields_map(jobs, title=f"Where the images of {album.title} are")
