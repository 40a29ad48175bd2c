"""Views of the web site: parse and authorise, then call front.services."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from skysolve.front import services
from skysolve.front.astro import parse_dec, parse_ra
from skysolve.front.forms import UploadForm
from skysolve.submissions import services as submissions
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


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    max_bytes = settings.SKYSOLVE_MAX_UPLOAD_BYTES
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES, max_bytes=max_bytes)
        if form.is_valid():
            options = form.options()
            try:
                if form.cleaned_data["images"]:
                    files = [(f.read(), f.name) for f in form.cleaned_data["images"]]
                    created = services.submit_files(user, options, files)
                else:
                    created = [services.submit_url(user, options, form.cleaned_data["url"])]
            except submissions.ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                if len(created) == 1:
                    return redirect("front:status", submission_id=created[0].id)
                messages.success(request, f"{len(created)} images submitted.")
                return redirect("front:my_submissions")
    else:
        profile = Profile.for_user(user)
        form = UploadForm(
            max_bytes=max_bytes,
            initial={
                "allow_commercial_use": profile.default_allow_commercial_use,
                "allow_modifications": profile.default_allow_modifications,
                "publicly_visible": profile.default_publicly_visible,
            },
        )
    albums = Album.objects.filter(owner=user).order_by("title").values_list("title", flat=True)
    ctx = {"form": form, "albums": list(albums), "max_mb": max_bytes // (1024 * 1024)}
    return render(request, "front/upload.html", ctx)


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
