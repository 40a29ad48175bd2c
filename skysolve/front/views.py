"""Views of the site's pages: results, listings, search, albums, the original image and staff pages.

Each parses and authorises, then calls the page modules (``listings``,
``search_page``, ``status_page``, ``results_page``, ``maps``) or the community app;
the upload views are in ``upload_views``, the community's actions in
``community_views``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from skysolve.community import access, comments, flags
from skysolve.community import tags as community_tags
from skysolve.front import listings, maps, originals, results_page, search_page
from skysolve.front.astro import parse_dec, parse_ra
from skysolve.front.viewhelpers import (
    SeekPage,
    page_cursor,
    paginate,
    query_without_page,
    readable_job,
    viewer_of,
)
from skysolve.submissions import services as submissions
from skysolve.submissions.models import Job, UserImage

# -- results ---------------------------------------------------------------------


@require_GET
@readable_job
def results(request: HttpRequest, job: Job) -> HttpResponse:
    viewer = viewer_of(request)
    ctx = results_page.results(job)
    ctx["nearby"] = search_page.nearby(job)
    image = job.user_image
    ctx["mine"] = viewer.user is not None and access.owns_image(viewer, image)
    ctx["image_tags"] = [t for t in community_tags.image_tags(image, viewer) if not t.machine]
    ctx["comments"] = comments.image_comments(image, viewer)
    ctx["flags"] = flags.flags_of(image, viewer)
    ctx["viewers"] = maps.sky_viewers(job, site_root=settings.SITE_ROOT)
    return render(request, "front/results.html", ctx)


@require_GET
def user_image(request: HttpRequest, image_id: int) -> HttpResponse:
    """nova's /user_images/N: the results of the image's latest job."""
    image = UserImage.objects.select_related("submission").filter(pk=image_id).first()
    viewer = viewer_of(request)
    public = image is not None and image.is_public
    if image is None or not submissions.may_read(
        viewer, image.submission, public=public, pages=True
    ):
        raise Http404("no such image")
    job = image.latest_job()
    if job is None:
        return redirect("front:status", submission_id=image.submission.id)
    return redirect("front:results", job_id=job.id)


@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    page = SeekPage(request, listings.gallery(page_cursor(request)))
    return render(request, "front/gallery.html", {"page": page, "title": "Recent solved images"})


@require_GET
def user_page(request: HttpRequest, username: str) -> HttpResponse:
    owner = get_object_or_404(User, username=username)
    page = SeekPage(request, listings.user_public_images(owner, page_cursor(request)))
    ctx = {"page": page, "title": f"Images of {owner.username}", "owner": owner}
    ctx["fields_map"] = maps.user_fields_map(owner)
    return render(request, "front/gallery.html", ctx)


@login_required
@require_GET
def my_images(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    status = request.GET.get("status", "")
    status = status if status in listings.STATUS_FILTERS else ""
    page = SeekPage(request, listings.my_images(request.user, page_cursor(request), status=status))
    ctx = {
        # The map draws solved fields: under another status filter it has nothing to show.
        "fields_map": maps.my_fields_map(request.user) if status in ("", "solved") else None,
        "page": page,
        "title": "My images",
        "filters": _status_filters(status),
        "query_string": query_without_page(request),
    }
    return render(request, "front/gallery.html", ctx)


def _status_filters(current: str) -> list[tuple[str, str, bool]]:
    """(value, label, chosen) of the owner's listing filters, "all" first."""
    labels = {"": "all", "solved": "solved", "in_progress": "in progress", "failed": "failed"}
    return [(value, label, value == current) for value, label in labels.items()]


@login_required
@require_GET
def my_submissions(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    status = request.GET.get("status", "")
    status = status if status in listings.STATUS_FILTERS else ""
    listing = listings.my_submissions(request.user, page_cursor(request), status=status)
    page = SeekPage(request, listing)
    ctx = {
        "page": page,
        "filters": _status_filters(status),
        "query_string": query_without_page(request),
    }
    return render(request, "front/my_submissions.html", ctx)


#: What a position search looks for when the form names nothing else.
DEFAULT_MODE = search_page.OVERLAP


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    params = request.GET
    ra = dec = radius = None
    if any(params.get(k, "").strip() for k in ("ra", "dec", "radius")):
        try:
            ra = parse_ra(params.get("ra", ""))
            dec = parse_dec(params.get("dec", ""))
            radius = float(params.get("radius") or 1.0)
            if not 0 < radius <= 180:
                raise ValueError("radius must be in (0, 180] degrees")
        except ValueError as exc:
            errors.append(str(exc))
            ra = dec = radius = None
    query = search_page.Query(
        ra=ra,
        dec=dec,
        radius=radius,
        object_name=params.get("object", "").strip()[:200],
        tag=params.get("tag", "").strip()[:200],
        username=params.get("user", "").strip()[:150],
        mode=mode if (mode := params.get("mode", "")) in search_page.SEARCH_MODES else DEFAULT_MODE,
    )
    cards = [] if errors else search_page.search(query)
    ctx = {
        "page": paginate(request, cards),
        "query": query,
        "params": params,
        "errors": errors,
        "searched": not query.is_empty,
        "query_string": query_without_page(request),
    }
    return render(request, "front/search.html", ctx)


@require_GET
def albums(request: HttpRequest) -> HttpResponse:
    page = SeekPage(request, listings.albums_for(viewer_of(request), page_cursor(request)))
    return render(request, "front/albums.html", {"albums": page.object_list, "page": page})


@require_GET
def album(request: HttpRequest, album_id: int) -> HttpResponse:
    viewer = viewer_of(request)
    try:
        found = access.get_album(album_id, viewer)
    except submissions.NotFound:
        raise Http404("no such album") from None
    page = SeekPage(request, listings.album_images(found, viewer, page_cursor(request)))
    ctx = {
        "fields_map": maps.album_fields_map(found, viewer),
        "album": found,
        "page": page,
        "mine": viewer.user is not None and viewer.user.pk == found.owner_id,  # type: ignore[attr-defined]
        "comments": comments.album_comments(found, viewer),
    }
    return render(request, "front/album.html", ctx)


# -- the original image ------------------------------------------------------------


def _readable_image(request: HttpRequest, image_id: int) -> UserImage:
    try:
        return access.get_image(image_id, viewer_of(request))
    except submissions.NotFound:
        raise Http404("no such image") from None


@require_GET
def original(request: HttpRequest, image_id: int) -> HttpResponseBase:
    """The uploaded file as it came, under its original name."""
    image = _readable_image(request, image_id)
    try:
        path, name, content_type = originals.original_download(image)
    except originals.NoPicture as exc:
        raise Http404(str(exc)) from None
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=name, content_type=content_type
    )


def _preview(request: HttpRequest, image_id: int, size: str) -> HttpResponseBase:
    image = _readable_image(request, image_id)
    try:
        path = originals.preview(image, size)
    except originals.NoPicture as exc:
        raise Http404(str(exc)) from None
    response = FileResponse(path.open("rb"), content_type="image/jpeg")
    # The picture of an upload never changes; private ones stay out of shared caches.
    public = image.is_public and image.submission.is_public
    response["Cache-Control"] = f"{'public' if public else 'private'}, max-age=86400"
    return response


@require_GET
def display(request: HttpRequest, image_id: int) -> HttpResponseBase:
    """The original rendered for the browser (FITS and TIFF included), at most 800 px."""
    return _preview(request, image_id, "display")


#: What a listing shows for an image with no picture (a failed upload that is not
#: an image): a card saying so, never a broken image.
NO_PICTURE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 240 180" width="240" height="180">'
    '<rect width="240" height="180" fill="#1a2030"/>'
    '<text x="120" y="96" fill="#9aa4b5" font-family="sans-serif" font-size="18" '
    'text-anchor="middle">no picture</text></svg>'
)


@require_GET
def thumbnail(request: HttpRequest, image_id: int) -> HttpResponseBase:
    try:
        return _preview(request, image_id, "thumbnail")
    except Http404:
        _readable_image(request, image_id)  # still 404 to those who may not see it
        response = HttpResponse(NO_PICTURE_SVG, content_type="image/svg+xml")
        response["Cache-Control"] = "private, max-age=60"
        return response


# -- staff -----------------------------------------------------------------------


@require_GET
@staff_member_required
def indexes(request: HttpRequest) -> HttpResponse:
    """The index files this service solves with, and what a field size needs."""
    from skysolve.submissions.indexstats import overview

    fov: float | None = None
    raw = request.GET.get("fov_deg", "").strip()
    error = ""
    if raw:
        try:
            fov = float(raw)
        except ValueError:
            fov = None
        if fov is None or not (0.01 <= fov <= 180.0):
            fov, error = None, "the field width must be a number of degrees from 0.01 to 180"
    ctx = overview(fov, mirrors=settings.SKYSOLVE_INDEX_MIRRORS)
    ctx["error"] = error or ctx["error"]
    ctx["fov_deg"] = raw
    return render(request, "front/indexes.html", ctx)
