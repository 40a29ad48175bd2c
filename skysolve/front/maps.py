"""Where fields are on the sky: a job's outline for the sky viewers, and field maps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.db.models import QuerySet

from skysolve.community.models import Album
from skysolve.engine.inputs.formats import sniff_format
from skysolve.front import originals
from skysolve.front.astro import small_circle
from skysolve.front.listings import public_jobs
from skysolve.front.skymap import MapField, fields_map_svg, sky_plot_html
from skysolve.submissions import services as submissions
from skysolve.submissions.models import Job

if TYPE_CHECKING:  # viewers imports astropy, which only the results page needs
    from skysolve.front.viewers import Field


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
