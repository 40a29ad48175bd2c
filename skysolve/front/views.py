"""Views of the web site: parse and authorise, then call front.services."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    JsonResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.datastructures import MultiValueDict
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from skysolve.accounts.models import Profile
from skysolve.accounts.ratelimit import client_ip, submission_slots
from skysolve.community import access, comments, edits, flags
from skysolve.community import albums as community_albums
from skysolve.community import tags as community_tags
from skysolve.community.models import Album, Flag
from skysolve.front import originals, services
from skysolve.front.astro import parse_dec, parse_ra
from skysolve.front.forms import AlbumForm, ImageEditForm, UploadForm, readable_error
from skysolve.submissions import services as submissions
from skysolve.submissions import uploads
from skysolve.submissions.models import Job, Submission, UserImage

PAGE_SIZE = services.PAGE_SIZE


def viewer_of(request: HttpRequest) -> submissions.Viewer:
    user = request.user if request.user.is_authenticated else None
    assert user is None or isinstance(user, User)
    return submissions.Viewer(user=user)


def readable_job(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve ``job_id`` to a Job whose pages the viewer may see, else 404 (never
    403: a private job's existence is not revealed)."""

    @wraps(view)
    def wrapper(request: HttpRequest, job_id: int, **kwargs: Any) -> HttpResponse:
        try:
            job = submissions.get_job(job_id, viewer_of(request), pages=True)
        except submissions.NotFound:
            raise Http404("no such job") from None
        return view(request, job, **kwargs)

    return wrapper


def readable_submission(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, submission_id: int, **kwargs: Any) -> HttpResponse:
        try:
            submission = submissions.get_submission(submission_id, viewer_of(request), pages=True)
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


def _cursor(request: HttpRequest) -> services.Cursor:
    """Where a listing's page starts: ``before`` (the last row of the page before) or a
    page number; anything else is the first page."""
    before = request.GET.get("before", "")
    number = request.GET.get("page", "")
    return services.Cursor(
        before=int(before) if before.isdigit() and 0 < int(before) < 2**31 else None,
        number=max(1, min(int(number), 10**6)) if number.isdigit() else 1,
    )


class SeekPage:
    """A page of a seek-paged listing, for the templates' page links.

    It has no page count (nothing is counted): "newest" goes back to the
    first page and "older" follows ``before``.
    """

    def __init__(self, request: HttpRequest, listing: services.Listing) -> None:
        cursor = _cursor(request)
        self.object_list = listing.items
        self.number = cursor.number
        params = request.GET.copy()
        for name in ("page", "before"):
            params.pop(name, None)
        self.first_query = params.urlencode()
        self.older_query = ""
        if listing.older is not None:
            params["before"] = str(listing.older)
            params["page"] = str(cursor.number + 1)
            self.older_query = params.urlencode()
        self.has_previous = cursor.number > 1 or cursor.before is not None
        self.has_next = bool(self.older_query)
        self.has_other_pages = self.has_previous or self.has_next
        #: A page number past the numbered pages (their links predate seek paging).
        self.beyond = cursor.beyond


# -- upload and status ---------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Signed-in people come to upload; everyone else sees what others solved."""
    if request.user.is_authenticated:
        return redirect("front:upload")
    page = SeekPage(request, services.gallery(_cursor(request)))
    ctx = {
        "page": page,
        "title": "Recent solved images",
        "intro": True,
        "anonymous_upload": settings.SKYSOLVE_ANONYMOUS_WEB_UPLOAD,
    }
    return render(request, "front/gallery.html", ctx)


@csrf_exempt  # checked below, once the body has been read under the size cap
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    """The upload form.  Files stream to disk and reading stops past the size cap.

    Django's CSRF check reads the form before the view runs; here the body is
    read first, so an oversized upload is cut off by the upload handler and
    answered 413 instead of failing the CSRF check on a truncated form.
    Without an account it is open only when SKYSOLVE_ANONYMOUS_WEB_UPLOAD is on.
    """
    if not request.user.is_authenticated and not settings.SKYSOLVE_ANONYMOUS_WEB_UPLOAD:
        return redirect_to_login(request.get_full_path())
    if request.method == "POST":
        request.POST  # noqa: B018 (parses the body through LimitedUploadHandler)
        if uploads.was_too_large(request):
            mb = settings.SKYSOLVE_MAX_UPLOAD_BYTES // (1024 * 1024)
            error = f"The upload is larger than {mb} MB."
            return _upload_page(request, _blank_upload_form(request), status=413, error=error)
    return _checked_upload(request)


def _uploader(request: HttpRequest) -> submissions.Viewer:
    """The signed-in user, or an anonymous uploader known by a token in their session.

    The token (never the session cookie itself) owns their submissions and
    keeps one browser's uploads together in the queue's fair order.
    """
    if request.user.is_authenticated:
        return viewer_of(request)
    token = request.session.get("anonymous_uploader")
    if not isinstance(token, str):
        token = request.session["anonymous_uploader"] = secrets.token_hex(16)
    return submissions.Viewer(user=None, session_key=f"web:{token}")


@csrf_protect
def _checked_upload(request: HttpRequest) -> HttpResponse:
    viewer = _uploader(request)
    max_bytes = settings.SKYSOLVE_MAX_UPLOAD_BYTES
    if request.method != "POST":
        return _upload_page(request, _blank_upload_form(request))
    files, held = request.FILES, None
    if not files.getlist("images"):
        held = _held_files(request)
        if held is not None:
            files = MultiValueDict({"images": list[UploadedFile](held)})
    form = UploadForm(request.POST, files, max_bytes=max_bytes)
    status = 200
    if form.is_valid():
        options = form.options()
        if viewer.user is None:
            # nova's rule: what is uploaded without an account is public, in no album.
            options["publicly_visible"] = "y"
            options.pop("album", None)
        images = form.cleaned_data["images"]
        try:
            with submission_slots(
                viewer.user,
                client_ip(request),
                count=max(1, len(images)),
                anonymous_web=viewer.user is None,
            ):
                if images:
                    created = [_submit_file(viewer, options, f) for f in images]
                else:
                    url = form.cleaned_data["url"]
                    created = [submissions.submit_url(viewer, options, url)]
        except submissions.ServiceError as exc:
            form.add_error(None, readable_error(exc.message))
            status = exc.status if exc.status >= 400 else 200
        else:
            request.session.pop(HELD_KEY, None)
            if len(created) == 1:
                return redirect("front:status", submission_id=created[0].id)
            messages.success(request, f"{len(created)} images submitted.")
            if viewer.user is None:
                return _upload_page(request, form, created=created)
            return redirect("front:my_submissions")
    kept = held if held is not None else _hold(request, form.cleaned_data.get("images") or [])
    return _upload_page(request, form, status=status, held=kept)


#: The session's record of files kept from an upload the form refused.
HELD_KEY = "held_upload"


class HeldFile(UploadedFile):
    """A file kept from a refused upload, offered to the form as if chosen again."""

    def __init__(self, path: Path, name: str) -> None:
        # Never opened here: the submission moves the file by its path.
        super().__init__(None, name=name, size=path.stat().st_size)
        self.path = path

    def temporary_file_path(self) -> str:
        return str(self.path)


def _hold(request: HttpRequest, images: list[Any]) -> list[HeldFile] | None:
    """Keep the files of a form refused for its other fields, so nobody chooses them twice.

    They wait in the spool directory (swept after an hour like any spooled
    upload) under a token this session holds; the next post of the form
    without files uses them.
    """
    if not images:
        return None
    token = secrets.token_hex(8)
    kept = []
    for number, upload in enumerate(images):
        target = uploads.spool_dir() / f"upload-held-{token}-{number}"
        with target.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        kept.append({"file": target.name, "name": upload.name})
    request.session[HELD_KEY] = {"token": token, "files": kept}
    return _held_files(request, token=token)


def _held_files(request: HttpRequest, *, token: str = "") -> list[HeldFile] | None:
    """The files this session keeps under the token the form sent back (or ``token``)."""
    record = request.session.get(HELD_KEY)
    wanted = token or request.POST.get("held", "")
    if not isinstance(record, dict) or not wanted or record.get("token") != wanted:
        return None
    files = []
    for entry in record.get("files") or []:
        path = uploads.spool_dir() / str(entry.get("file", ""))
        if not path.name.startswith("upload-held-") or not path.is_file():
            request.session.pop(HELD_KEY, None)
            return None  # swept meanwhile: the form asks for the file again
        files.append(HeldFile(path, str(entry.get("name") or path.name)))
    return files or None


def _submit_file(viewer: submissions.Viewer, options: dict[str, Any], upload: Any) -> Submission:
    if hasattr(upload, "temporary_file_path"):
        # Streamed to DATA_DIR/tmp by the upload handler: moved, never read whole.
        path = Path(upload.temporary_file_path())
        return submissions.submit_upload_file(viewer, options, path, upload.name)
    return submissions.submit_upload(viewer, options, upload.read(), upload.name)


def _blank_upload_form(request: HttpRequest) -> UploadForm:
    user = request.user
    if not isinstance(user, User):
        return UploadForm(max_bytes=settings.SKYSOLVE_MAX_UPLOAD_BYTES)
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
    request: HttpRequest,
    form: UploadForm,
    *,
    status: int = 200,
    error: str = "",
    created: list[Submission] | None = None,
    held: list[HeldFile] | None = None,
) -> HttpResponse:
    if error:
        # An unbound form cannot add_error(); its (empty) error dict takes one.
        form.errors["__all__"] = form.error_class([error])
    user = request.user
    max_bytes = settings.SKYSOLVE_MAX_UPLOAD_BYTES
    titles: list[str] = []
    if isinstance(user, User):
        albums = Album.objects.filter(owner=user).order_by("title")
        titles = list(albums.values_list("title", flat=True))
    ctx = {
        "form": form,
        "albums": titles,
        "max_mb": max_bytes // (1024 * 1024),
        "anonymous": not user.is_authenticated,
        "created": created or [],
        "strict_privacy": settings.SKYSOLVE_PRIVATE_RESULTS == "strict",
        "held": _held_context(request, held),
    }
    return render(request, "front/upload.html", ctx, status=status)


def _held_context(request: HttpRequest, held: list[HeldFile] | None) -> dict[str, Any] | None:
    if not held:
        return None
    record = request.session.get(HELD_KEY) or {}
    return {"token": record.get("token", ""), "names": [kept.name for kept in held]}


@require_GET
@readable_submission
def status(request: HttpRequest, submission: Submission) -> HttpResponse:
    status = services.submission_status(submission, viewer_of(request))
    ctx = {"submission": submission, "status": status}
    return render(request, "front/status.html", ctx)


@never_cache
@require_GET
@readable_submission
def status_json(request: HttpRequest, submission: Submission) -> HttpResponse:
    return JsonResponse(services.submission_status(submission, viewer_of(request)))


# -- results ---------------------------------------------------------------------


@require_GET
@readable_job
def results(request: HttpRequest, job: Job) -> HttpResponse:
    viewer = viewer_of(request)
    ctx = services.results(job)
    ctx["nearby"] = services.nearby(job)
    image = job.user_image
    ctx["mine"] = viewer.user is not None and access.owns_image(viewer, image)
    ctx["image_tags"] = [t for t in community_tags.image_tags(image, viewer) if not t.machine]
    ctx["comments"] = comments.image_comments(image, viewer)
    ctx["flags"] = flags.flags_of(image, viewer)
    ctx["viewers"] = services.sky_viewers(job, site_root=settings.SITE_ROOT)
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


# -- listings --------------------------------------------------------------------


@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    page = SeekPage(request, services.gallery(_cursor(request)))
    return render(request, "front/gallery.html", {"page": page, "title": "Recent solved images"})


@require_GET
def user_page(request: HttpRequest, username: str) -> HttpResponse:
    owner = get_object_or_404(User, username=username)
    page = SeekPage(request, services.user_public_images(owner, _cursor(request)))
    ctx = {"page": page, "title": f"Images of {owner.username}", "owner": owner}
    ctx["fields_map"] = services.user_fields_map(owner)
    return render(request, "front/gallery.html", ctx)


@login_required
@require_GET
def my_images(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    status = request.GET.get("status", "")
    status = status if status in services.STATUS_FILTERS else ""
    page = SeekPage(request, services.my_images(request.user, _cursor(request), status=status))
    ctx = {
        # The map draws solved fields: under another status filter it has nothing to show.
        "fields_map": services.my_fields_map(request.user) if status in ("", "solved") else None,
        "page": page,
        "title": "My images",
        "filters": _status_filters(status),
        "query_string": _without_page(request),
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
    status = status if status in services.STATUS_FILTERS else ""
    listing = services.my_submissions(request.user, _cursor(request), status=status)
    page = SeekPage(request, listing)
    ctx = {"page": page, "filters": _status_filters(status), "query_string": _without_page(request)}
    return render(request, "front/my_submissions.html", ctx)


#: What a position search looks for when the form names nothing else.
DEFAULT_MODE = services.OVERLAP


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
        mode=mode if (mode := params.get("mode", "")) in services.SEARCH_MODES else DEFAULT_MODE,
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
def albums(request: HttpRequest) -> HttpResponse:
    page = SeekPage(request, services.albums_for(viewer_of(request), _cursor(request)))
    return render(request, "front/albums.html", {"albums": page.object_list, "page": page})


@require_GET
def album(request: HttpRequest, album_id: int) -> HttpResponse:
    viewer = viewer_of(request)
    try:
        found = access.get_album(album_id, viewer)
    except submissions.NotFound:
        raise Http404("no such album") from None
    page = SeekPage(request, services.album_images(found, viewer, _cursor(request)))
    ctx = {
        "fields_map": services.album_fields_map(found, viewer),
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


# -- tags, comments, flags ---------------------------------------------------------


def _back_to_image(image_id: int, *, section: str = "") -> HttpResponse:
    """To the image's results page, at ``section`` (an element id) when given."""
    response = redirect("front:user_image", image_id=image_id)
    if section:
        # Browsers keep the fragment through the redirect to /results/N.
        response["Location"] += f"#{section}"
    return response


def _acting(request: HttpRequest, action: Callable[[], HttpResponse]) -> HttpResponse:
    """Run a change; NotFound becomes 404, a refused change a message (403 kept)."""
    try:
        return action()
    except submissions.NotFound:
        raise Http404("not found") from None
    except submissions.ServiceError as exc:
        if exc.status == 403:
            return HttpResponseForbidden(exc.message)
        messages.error(request, exc.message)
        return _bounce(request)


def _bounce(request: HttpRequest) -> HttpResponse:
    """Back to the page the form was on, only if it is a page of this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("front:home")


@login_required
@require_POST
def add_tag(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        community_tags.add_tag(image_id, viewer, request.POST.get("text", ""))
        return _back_to_image(image_id)

    return _acting(request, act)


@login_required
@require_POST
def remove_tag(request: HttpRequest, tagged_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        image = community_tags.remove_tag(tagged_id, viewer)
        return _back_to_image(image.id)

    return _acting(request, act)


@login_required
@require_POST
def comment_image(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        comments.comment_on_image(image_id, viewer, request.POST.get("text", ""))
        return _back_to_image(image_id)

    return _acting(request, act)


@login_required
@require_POST
def comment_album(request: HttpRequest, album_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        found = access.get_album(album_id, viewer)
        comments.comment_on_album(found, viewer, request.POST.get("text", ""))
        return redirect("front:album", album_id=found.id)

    return _acting(request, act)


@login_required
@require_POST
def delete_comment(request: HttpRequest, comment_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        comment = comments.delete_comment(comment_id, viewer)
        if comment.user_image_id is not None:  # type: ignore[attr-defined]
            return _back_to_image(comment.user_image_id)  # type: ignore[attr-defined]
        return redirect("front:album", album_id=comment.album_id)  # type: ignore[attr-defined]

    return _acting(request, act)


@login_required
@require_POST
def set_flags(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        chosen = request.POST.getlist("flags")
        flags.set_flags(image_id, viewer, chosen)
        labels = [label for kind, label in Flag.KIND_CHOICES if kind in chosen]
        said = f"Flags saved: {', '.join(labels)}." if labels else "Flags saved: none set."
        messages.success(request, said)
        return _back_to_image(image_id, section="flags")

    return _acting(request, act)


@login_required
@require_GET
def flagged(request: HttpRequest) -> HttpResponse:
    """The staff's list of flagged images; to anyone else it does not exist."""
    if not viewer_of(request).is_staff:
        raise Http404("no such page")
    kind = request.GET.get("kind", "")
    kind = kind if kind in flags.FLAG_KINDS else ""
    ctx = {
        "page": _page(request, flags.flagged_images(kind)),
        "kinds": Flag.KIND_CHOICES,
        "kind": kind,
        "query_string": _without_page(request),
    }
    return render(request, "front/flagged.html", ctx)


# -- tags --------------------------------------------------------------------------


@require_GET
def tags(request: HttpRequest) -> HttpResponse:
    """Tags of public images with their counts: substring or exact search, paged."""
    query = " ".join(request.GET.get("q", "").split())[: access.TAG_MAX]
    exact = request.GET.get("exact") == "1"
    order = "name" if request.GET.get("order") == "name" else "count"
    found = community_tags.tag_counts(query, exact=exact, order=order)
    ctx = {
        "page": Paginator(found, 100).get_page(request.GET.get("page")),
        "q": query,
        "exact": exact,
        "order": order,
        "query_string": _without_page(request),
    }
    return render(request, "front/tags.html", ctx)


@require_GET
def tag(request: HttpRequest, tag_id: int) -> HttpResponse:
    viewer = viewer_of(request)
    try:
        found = community_tags.get_tag(tag_id, viewer)
    except submissions.NotFound:
        raise Http404("no such tag") from None
    images, older = community_tags.tag_images(found, viewer, before=_cursor(request).before)
    page = SeekPage(request, services.Listing(services.image_cards(images), older))
    # The kept count of public images (the viewer's own private ones are not in it).
    ctx = {"page": page, "tag": found, "count": found.public_count}
    return render(request, "front/tag.html", ctx)


# -- editing an image --------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def edit_image(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)
    try:
        image = access.get_own_image(image_id, viewer)
    except submissions.NotFound:
        raise Http404("no such image") from None
    albums = Album.objects.filter(owner=request.user).order_by("title")
    if request.method == "POST":
        form = ImageEditForm(request.POST, albums=albums)
        if form.is_valid():
            try:
                edits.edit_image(image_id, viewer, form.edit())
            except submissions.ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Image saved.")
                return _back_to_image(image_id)
    else:
        form = ImageEditForm(
            albums=albums,
            initial={
                "description": image.description,
                "publicly_visible": image.publicly_visible,
                "allow_commercial_use": image.submission.allow_commercial_use,
                "allow_modifications": image.submission.allow_modifications,
                "albums": list(albums.filter(user_images=image).values_list("id", flat=True)),
            },
        )
    return render(request, "front/image_edit.html", {"form": form, "image": image})


@login_required
@require_POST
def hide_image(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        image = edits.set_visibility(image_id, viewer, public=False)
        messages.success(request, "The image is private now: only you (and staff) see its pages.")
        return _back_to_image(image.id)

    return _acting(request, act)


@login_required
@require_POST
def unhide_image(request: HttpRequest, image_id: int) -> HttpResponse:
    viewer = viewer_of(request)

    def act() -> HttpResponse:
        image = edits.set_visibility(image_id, viewer, public=True)
        messages.success(request, "The image is public now: the gallery and searches show it.")
        return _back_to_image(image.id)

    return _acting(request, act)


# -- albums ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def new_album(request: HttpRequest) -> HttpResponse:
    form = AlbumForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = community_albums.create_album(viewer_of(request), **form.cleaned_data)
        except submissions.ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("front:album", album_id=created.id)
    return render(request, "front/album_form.html", {"form": form, "album": None})


@login_required
@require_http_methods(["GET", "POST"])
def edit_album(request: HttpRequest, album_id: int) -> HttpResponse:
    viewer = viewer_of(request)
    try:
        found = community_albums.get_own_album(album_id, viewer)
    except submissions.NotFound:
        raise Http404("no such album") from None
    if request.method == "POST":
        form = AlbumForm(request.POST)
        if form.is_valid():
            try:
                community_albums.edit_album(album_id, viewer, **form.cleaned_data)
            except submissions.ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("front:album", album_id=album_id)
    else:
        form = AlbumForm(
            initial={
                "title": found.title,
                "description": found.description,
                "publicly_visible": found.publicly_visible,
            }
        )
    return render(request, "front/album_form.html", {"form": form, "album": found})


@login_required
@require_POST
def delete_album(request: HttpRequest, album_id: int) -> HttpResponse:
    try:
        community_albums.delete_album(album_id, viewer_of(request))
    except submissions.NotFound:
        raise Http404("no such album") from None
    messages.success(request, "Album deleted; its images are still in My images.")
    return redirect("front:user_albums", username=request.user.get_username())


@require_GET
def user_albums(request: HttpRequest, username: str) -> HttpResponse:
    owner = get_object_or_404(User, username=username)
    ctx = {"albums": community_albums.user_albums(owner, viewer_of(request)), "owner": owner}
    return render(request, "front/albums.html", ctx)


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
