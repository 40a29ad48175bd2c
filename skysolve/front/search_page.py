"""The search page: fields by position (cone, overlap, containing a point), by
object name and by tag, and the fields near a job's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet

from skysolve.community.models import Tag, TaggedUserImage
from skysolve.front.astro import angular_distance
from skysolve.front.listings import Card, card_for_job, card_jobs, job_cards, public_jobs
from skysolve.submissions import sky
from skysolve.submissions.models import Job

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
        return job_cards(card_jobs(jobs).order_by("-finished_at", "-id")[:limit])
    assert query.ra is not None and query.dec is not None and query.radius is not None
    found = sky_search(jobs, query.ra, query.dec, query.radius, mode=query.mode, limit=limit)
    return _cards_by_id(found)


def _cards_by_id(found: list[tuple[float, int]]) -> list[Card]:
    jobs = {job.id: job for job in card_jobs(Job.objects.filter(id__in=[i for _, i in found]))}
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
