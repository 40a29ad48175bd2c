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
from typing import Any

from django.contrib.auth.models import User
from django.db.models import OuterRef, Q, QuerySet, Subquery

from skysolve.engine.images import sniff_format
from skysolve.front import originals
from skysolve.front.astro import angle_text, angular_distance, dec_dms, ra_hms, ra_ranges
from skysolve.front.skymap import sky_map_svg
from skysolve.submissions import services as submissions
from skysolve.submissions.models import Album, Job, Submission, UserImage

#: Result files and the nova URL the API serves each one at.
RESULT_FILES: list[tuple[str, str, str]] = [
    ("wcs", "wcs_file", "WCS header (wcs.fits)"),
    ("new_fits", "new_fits_file", "image with WCS (new-image.fits)"),
    ("rdls", "rdls_file", "catalogue stars in the field (rdls.fits)"),
    ("axy", "axy_file", "detected sources (axy.fits)"),
    ("corr", "corr_file", "matched star pairs (corr.fits)"),
    ("kml", "kml_file", "Google Earth sky overlay (KML)"),
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
        thumbnail=file_url("annotated_display", job.id)
        if has_file(job, "annotated_display")
        else thumbnail_url(image.id),
        distance=distance,
    )


def card_for_image(image: UserImage) -> Card:
    job = image.latest_job()
    if job is not None:
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


def _job_cards(jobs: Iterable[Job]) -> list[Card]:
    return [card_for_job(job) for job in jobs]


def _with_relations(jobs: QuerySet[Job]) -> QuerySet[Job]:
    return jobs.select_related("user_image__submission__user")


# -- listings ----------------------------------------------------------------


def gallery(limit: int = 200) -> list[Card]:
    """Recent public solved images, newest first."""
    jobs = _with_relations(public_jobs().filter(status=Job.SUCCESS))
    return _job_cards(jobs.order_by("-finished_at", "-id")[:limit])


def user_public_images(username: str, limit: int = 200) -> list[Card]:
    jobs = public_jobs().filter(user_image__submission__user__username=username)
    return _job_cards(_with_relations(jobs).order_by("-queued_at", "-id")[:limit])


#: The status filters of the owner's listings, by the latest job of each image.
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "solved": (Job.SUCCESS,),
    "in_progress": (Job.QUEUED, Job.RUNNING),
    "failed": (Job.FAILURE, Job.CANCELLED),
}


def _latest_status() -> Subquery:
    latest = Job.objects.filter(user_image=OuterRef("pk")).order_by("-queued_at", "-id")
    return Subquery(latest.values("status")[:1])


def my_images(user: User, limit: int = 500, *, status: str = "") -> list[Card]:
    """The user's images, newest first; ``status`` one of STATUS_FILTERS' keys (or all)."""
    images = UserImage.objects.filter(submission__user=user)
    if status in STATUS_FILTERS:
        images = images.annotate(latest_status=_latest_status()).filter(
            latest_status__in=STATUS_FILTERS[status]
        )
    images = images.select_related("submission__user").order_by("-created", "-id")[:limit]
    return [card_for_image(image) for image in images]


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


def my_submissions(user: User, limit: int = 500, *, status: str = "") -> list[SubmissionRow]:
    """The user's submissions, newest first; with ``status``, those with a job in that state."""
    subs = Submission.objects.filter(user=user)
    if status in STATUS_FILTERS:
        subs = subs.filter(user_images__jobs__status__in=STATUS_FILTERS[status]).distinct()
    rows = []
    for sub in subs.order_by("-created", "-id")[:limit].prefetch_related("user_images__jobs"):
        images = sorted(sub.user_images.all(), key=lambda image: (image.created, image.id))
        jobs = [(job.id, job.status) for image in images for job in image.jobs.all()]
        thumbnail = None
        if images:
            first = images[0]
            solved = [job for job in first.jobs.all() if has_file(job, "annotated_display")]
            thumbnail = thumbnail_url(first.id)
            if solved:
                thumbnail = file_url("annotated_display", solved[-1].id)
        rows.append(
            SubmissionRow(
                id=sub.id,
                created=sub.created,
                filename=sub.original_filename or sub.url or f"submission {sub.id}",
                public=sub.is_public,
                finished=bool(jobs) and all(status in Job.FINISHED for _, status in jobs),
                jobs=jobs,
                error=sub.error_message,
                thumbnail=thumbnail,
            )
        )
    return rows


# -- search ------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    ra: float | None = None
    dec: float | None = None
    radius: float | None = None
    object_name: str = ""
    tag: str = ""
    username: str = ""

    @property
    def is_cone(self) -> bool:
        return self.ra is not None and self.dec is not None and self.radius is not None

    @property
    def is_empty(self) -> bool:
        return not (self.is_cone or self.object_name or self.tag or self.username)


def cone_filter(jobs: QuerySet[Job], ra: float, dec: float, radius: float) -> QuerySet[Job]:
    """A bounding box on the calibration columns; callers refine with exact distances."""
    jobs = jobs.filter(dec__gte=dec - radius, dec__lte=dec + radius)
    ranges = ra_ranges(ra, dec, radius)
    if ranges is not None:
        box = Q()
        for lo, hi in ranges:
            box |= Q(ra__gte=lo, ra__lte=hi)
        jobs = jobs.filter(box)
    return jobs


def search(query: Query, limit: int = 200) -> list[Card]:
    """Public solved images matching every given criterion."""
    if query.is_empty:
        return []
    jobs = public_jobs().filter(status=Job.SUCCESS)
    if query.object_name:
        # objects_in_field are stored as machine tags, which the database can search.
        jobs = jobs.filter(
            user_image__taggeduserimage__machine=True,
            user_image__taggeduserimage__tag__text__icontains=query.object_name,
        )
    if query.tag:
        jobs = jobs.filter(user_image__taggeduserimage__tag__text__iexact=query.tag)
    if query.username:
        jobs = jobs.filter(user_image__submission__user__username__iexact=query.username)
    jobs = _with_relations(jobs.distinct())
    if not query.is_cone:
        return _job_cards(jobs.order_by("-finished_at", "-id")[:limit])
    assert query.ra is not None and query.dec is not None and query.radius is not None
    found = []
    for job in cone_filter(jobs, query.ra, query.dec, query.radius):
        assert job.ra is not None and job.dec is not None
        distance = angular_distance(query.ra, query.dec, job.ra, job.dec)
        if distance <= query.radius:
            found.append((distance, job))
    found.sort(key=lambda pair: (pair[0], -pair[1].id))
    return [card_for_job(job, distance=d) for d, job in found[:limit]]


def nearby(job: Job, limit: int = 12) -> list[Card]:
    """Other public solved fields near this one (never private ones)."""
    if job.ra is None or job.dec is None:
        return []
    radius = max(5.0, 2 * (job.radius or 0.0))
    query = Query(ra=job.ra, dec=job.dec, radius=min(radius, 90.0))
    return [card for card in search(query, limit=limit + 1) if card.job_id != job.id][:limit]


# -- albums ------------------------------------------------------------------


def albums_for(viewer: submissions.Viewer) -> list[Album]:
    """Public albums, plus the viewer's own private ones."""
    albums = Q(publicly_visible="y")
    if viewer.user is not None:
        albums |= Q(owner=viewer.user)
    return list(Album.objects.filter(albums).select_related("owner").order_by("-created", "-id"))


def get_album(album_id: int, viewer: submissions.Viewer) -> Album:
    album = Album.objects.select_related("owner").filter(pk=album_id if 0 < album_id < 2**31 else 0)
    found = album.first()
    if found is None:
        raise submissions.NotFound(f"no album with id {album_id}")
    mine = viewer.user is not None and viewer.user.pk == found.owner_id  # type: ignore[attr-defined]
    if found.publicly_visible != "y" and not (mine or viewer.is_staff):
        raise submissions.NotFound(f"no album with id {album_id}")
    return found


def album_images(album: Album, viewer: submissions.Viewer) -> list[Card]:
    images = album.user_images.select_related("submission__user").order_by("-created", "-id")
    mine = viewer.user is not None and viewer.user.pk == album.owner_id  # type: ignore[attr-defined]
    if not mine:
        images = images.filter(publicly_visible="y", submission__publicly_visible="y")
    return [card_for_image(image) for image in images]


# -- status ------------------------------------------------------------------


def status_label(job: Job) -> str:
    if job.status == Job.QUEUED:
        ahead = Job.objects.filter(status=Job.QUEUED, queued_at__lt=job.queued_at).count()
        return "queued" if ahead == 0 else f"queued ({ahead} ahead)"
    if job.status == Job.RUNNING:
        return STAGE_LABELS.get(job.stage, job.stage)
    if job.status == Job.SUCCESS:
        return "done: solved"
    if job.status == Job.CANCELLED:
        return "cancelled"
    return f"failed: {job.error_message}" if job.error_message else "failed"


def log_tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


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
    """How many sources the solve detected, once it has said (None before)."""
    if not job.result or "n_sources" not in job.result:
        return None
    return int(job.result["n_sources"])


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
        if viewer is not None and not submissions.may_read(viewer, submission, public=public):
            continue
        entries.append(
            {
                "id": job.id,
                "status": job.status,
                "stage": job.stage,
                "label": status_label(job),
                "log": log_tail(job.log),
                "error": job.error_message,
                "results_url": f"/results/{job.id}",
                "stars": detected_stars(job),
            }
        )
    return {
        "submission": submission.id,
        "settings": upload_settings(submission.parameters or {}),
        "finished": bool(entries) and all(e["status"] in Job.FINISHED for e in entries),
        "error": submission.error_message,
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
        CalibrationRow("Up is", f"{display_up(job, cal['orientation']):.2f}° East of North"),
        CalibrationRow(
            "Orientation (API)",
            f"{nova['orientation']:.2f}° — nova's number, which clients compare: the angle "
            "East of North of the image's +y pixel axis, mirrored to (180° − angle) for "
            "JPEG, PNG and GIF inputs as nova does; not the direction of the picture's up",
        ),
        CalibrationRow("Parity", parity),
    ]


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
    rows = [
        CalibrationRow("Matched stars", f"{q['matched_stars']} ({q.get('band', '')} catalogue)"),
        CalibrationRow(
            "Residuals",
            f"RMS {number('rms_px', '.3f', ' px')} = {number('rms_arcsec', '.2f', '″')}, "
            f"median {number('median_px', '.3f', ' px')}",
        ),
        CalibrationRow("Distortion", f"SIP order {order} ({how})" if order else f"none ({how})"),
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


LICENCE_TEXT = {
    "allow_commercial_use": {"d": "owner's default", "y": "allowed", "n": "not allowed"},
    "allow_modifications": {
        "d": "owner's default",
        "y": "allowed",
        "n": "not allowed",
        "sa": "allowed, share alike",
    },
}


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
    sky_map = None
    if job.has_calibration:
        assert job.ra is not None and job.dec is not None
        sky_map = sky_map_svg(job.ra, job.dec, job.radius or 0.0)
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
        "objects": job.objects_in_field(),
        "tags": image.tag_texts(machine=False),
        "original_url": f"/user_images/{image.id}/original" if original is not None else "",
        "sky_map": sky_map,
        "command": reproduce_command(job),
        "status_label": status_label(job),
        "commercial": LICENCE_TEXT["allow_commercial_use"].get(submission.allow_commercial_use),
        "modifications": LICENCE_TEXT["allow_modifications"].get(submission.allow_modifications),
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


def sky_viewers(job: Job, *, site_root: str) -> list[dict[str, str]]:
    """Links to external sky viewers for a solved job, built here from its WCS.

    WorldWideTelescope fetches the picture itself from this site, so it is
    offered only for public images on a site whose ``SITE_ROOT`` is not local.
    """
    from pathlib import Path

    from skysolve.front import viewers

    if not job.has_calibration or not job.result:
        return []
    result = job.result
    width, height = int(result.get("image_width") or 0), int(result.get("image_height") or 0)
    assert job.ra is not None and job.dec is not None
    if width <= 0 or height <= 0 or not job.pixscale:
        return []
    image = job.user_image
    path = originals.original_path(image)
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
    corners = viewers.outline(field, Path(wcs_file) if wcs_file else None)
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
