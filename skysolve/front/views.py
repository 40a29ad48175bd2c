"""Views of the web site: parse and authorise, then call front.services."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from skysolve.accounts.ratelimit import client_ip, submission_slots
from skysolve.front import services
from skysolve.front.astro import parse_dec, parse_ra
from skysolve.front.forms import UploadForm
from skysolve.submissions import services as submissions
from skysolve.submissions import uploads
from skysolve.submissions.models import Album, Job, Profile, Submission, UserImage

PAGE_SIZE = 24


def viewer_of(request: HttpRequest) -> submissions.Viewer:
    user = request.user if request.user.is_authenticated else None
    assert user is None or isinstance(user, User)
    return submissions.Viewer(user=user)


def readable_job(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve ``job_id`` to a Job the viewer may read, else 404 (never 403:
    in strict mode a private job's existence is not revealed)."""

    @wraps(view)
    def wrapper(request: HttpRequest, job_id: int, **kwargs: Any) -> HttpResponse:
        try:
            job = submissions.get_job(job_id, viewer_of(request))
        except submissions.NotFound:
            raise Http404("no such job") from None
        return view(request, job, **kwargs)

    return wrapper


def readable_submission(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, submission_id: int, **kwargs: Any) -> HttpResponse:
        try:
            submission = submissions.get_submission(submission_id, viewer_of(request))
        except submissions.NotFound:
            raise Http404("no such submission") from None
        return view(request, submission, **kwargs)

    return wrapper


def _without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _page(request: HttpRequest, items: list[Any]) -> Any:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


# -- upload and status ---------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Signed-in people come to upload; everyone else sees what others solved."""
    if request.user.is_authenticated:
        return redirect("front:upload")
    page = _page(request, services.gallery())
    ctx = {"page": page, "title": "Recent solved images", "intro": True}
    return render(request, "front/gallery.html", ctx)


@csrf_exempt  # checked below, once the body has been read under the size cap
@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    """The upload form.  Files stream to disk and reading stops past the size cap.

    Django's CSRF check reads the form before the view runs; here the body is
    read first, so an oversized upload is cut off by the upload handler and
    answered 413 instead of failing the CSRF check on a truncated form.
    """
    if request.method == "POST":
        request.POST  # noqa: B018 (parses the body through LimitedUploadHandler)
        if uploads.was_too_large(request):
            mb = settings.SKYSOLVE_MAX_UPLOAD_BYTES // (1024 * 1024)
            error = f"The upload is larger than {mb} MB."
            return _upload_page(request, _blank_upload_form(request), status=413, error=error)
    return _checked_upload(request)


@csrf_protect
def _checked_upload(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    max_bytes = settings.SKYSOLVE_MAX_UPLOAD_BYTES
    if request.method != "POST":
        return _upload_page(request, _blank_upload_form(request))
    form = UploadForm(request.POST, request.FILES, max_bytes=max_bytes)
    status = 200
    if form.is_valid():
        options = form.options()
        images = form.cleaned_data["images"]
        try:
            with submission_slots(user, client_ip(request), count=max(1, len(images))):
                if images:
                    created = [_submit_file(user, options, f) for f in images]
                else:
                    created = [services.submit_url(user, options, form.cleaned_data["url"])]
        except submissions.ServiceError as exc:
            form.add_error(None, exc.message)
            status = exc.status if exc.status >= 400 else 200
        else:
            if len(created) == 1:
                return redirect("front:status", submission_id=created[0].id)
            messages.success(request, f"{len(created)} images submitted.")
            return redirect("front:my_submissions")
    return _upload_page(request, form, status=status)


def _submit_file(user: User, options: dict[str, Any], upload: Any) -> Submission:
    viewer = submissions.Viewer(user=user)
    if hasattr(upload, "temporary_file_path"):
        # Streamed to DATA_DIR/tmp by the upload handler: moved, never read whole.
        path = Path(upload.temporary_file_path())
        return submissions.submit_upload_file(viewer, options, path, upload.name)
    return submissions.submit_upload(viewer, options, upload.read(), upload.name)


def _blank_upload_form(request: HttpRequest) -> UploadForm:
    user = request.user
    assert isinstance(user, User)
    profile = Profile.for_user(user)
    return UploadForm(
        max_bytes=settings.SKYSOLVE_MAX_UPLOAD_BYTES,
        initial={
            "allow_commercial_use": profile.default_allow_commercial_use,
            "allow_modifications": profile.default_allow_modifications,
            "publicly_visible": profile.default_publicly_visible,
        },
    )


def _upload_page(
    request: HttpRequest, form: UploadForm, *, status: int = 200, error: str = ""
) -> HttpResponse:
    if error:
        # An unbound form cannot add_error(); its (empty) error dict takes one.
        form.errors["__all__"] = form.error_class([error])
    user = request.user
    max_bytes = settings.SKYSOLVE_MAX_UPLOAD_BYTES
    albums = Album.objects.filter(owner=user).order_by("title").values_list("title", flat=True)
    ctx = {"form": form, "albums": list(albums), "max_mb": max_bytes // (1024 * 1024)}
    return render(request, "front/upload.html", ctx, status=status)


@require_GET
@readable_submission
def status(request: HttpRequest, submission: Submission) -> HttpResponse:
    ctx = {"submission": submission, "status": services.submission_status(submission)}
    return render(request, "front/status.html", ctx)


@never_cache
@require_GET
@readable_submission
def status_json(request: HttpRequest, submission: Submission) -> HttpResponse:
    return JsonResponse(services.submission_status(submission))


# -- results ---------------------------------------------------------------------


@require_GET
@readable_job
def results(request: HttpRequest, job: Job) -> HttpResponse:
    ctx = services.results(job)
    ctx["nearby"] = services.nearby(job)
    return render(request, "front/results.html", ctx)


@require_GET
def user_image(request: HttpRequest, image_id: int) -> HttpResponse:
    """nova's /user_images/N: the results of the image's latest job."""
    image = UserImage.objects.select_related("submission").filter(pk=image_id).first()
    viewer = viewer_of(request)
    if image is None or not submissions.may_read(viewer, image.submission, public=image.is_public):
        raise Http404("no such image")
    job = image.latest_job()
    if job is None:
        return redirect("front:status", submission_id=image.submission.id)
    return redirect("front:results", job_id=job.id)


# -- listings --------------------------------------------------------------------


@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    page = _page(request, services.gallery())
    return render(request, "front/gallery.html", {"page": page, "title": "Recent solved images"})


@require_GET
def user_page(request: HttpRequest, username: str) -> HttpResponse:
    owner = get_object_or_404(User, username=username)
    page = _page(request, services.user_public_images(owner.username))
    ctx = {"page": page, "title": f"Images of {owner.username}", "owner": owner}
    return render(request, "front/gallery.html", ctx)


@login_required
@require_GET
def my_images(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    page = _page(request, services.my_images(request.user))
    return render(request, "front/gallery.html", {"page": page, "title": "My images"})


@login_required
@require_GET
def my_submissions(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    page = _page(request, services.my_submissions(request.user))
    return render(request, "front/my_submissions.html", {"page": page})


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
    query = services.Query(
        ra=ra,
        dec=dec,
        radius=radius,
        object_name=params.get("object", "").strip()[:200],
        tag=params.get("tag", "").strip()[:200],
        username=params.get("user", "").strip()[:150],
    )
    cards = [] if errors else services.search(query)
    ctx = {
        "page": _page(request, cards),
        "query": query,
        "params": params,
        "errors": errors,
        "searched": not query.is_empty,
        "query_string": _without_page(request),
    }
    return render(request, "front/search.html", ctx)


@require_GET
def tags(request: HttpRequest) -> HttpResponse:
    return render(request, "front/tags.html", {"tags": services.tags_with_counts()})


@require_GET
def albums(request: HttpRequest) -> HttpResponse:
    return render(request, "front/albums.html", {"albums": services.albums_for(viewer_of(request))})


@require_GET
def album(request: HttpRequest, album_id: int) -> HttpResponse:
    viewer = viewer_of(request)
    try:
        found = services.get_album(album_id, viewer)
    except submissions.NotFound:
        raise Http404("no such album") from None
    page = _page(request, services.album_images(found, viewer))
    return render(request, "front/album.html", {"album": found, "page": page})


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
