"""The upload form (files held across a failed form, size cap, rate limits) and status page."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.datastructures import MultiValueDict
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from skysolve.accounts.models import Profile
from skysolve.accounts.ratelimit import client_ip, submission_slots
from skysolve.community.models import Album
from skysolve.front import listings, status_page
from skysolve.front.forms import UploadForm, readable_error
from skysolve.front.viewhelpers import SeekPage, page_cursor, readable_submission, viewer_of
from skysolve.submissions import services as submissions
from skysolve.submissions import uploads
from skysolve.submissions.models import Submission


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Signed-in people come to upload; everyone else sees what others solved."""
    if request.user.is_authenticated:
        return redirect("front:upload")
    page = SeekPage(request, listings.gallery(page_cursor(request)))
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
    status = status_page.submission_status(submission, viewer_of(request))
    ctx = {"submission": submission, "status": status}
    return render(request, "front/status.html", ctx)


@never_cache
@require_GET
@readable_submission
def status_json(request: HttpRequest, submission: Submission) -> HttpResponse:
    return JsonResponse(status_page.submission_status(submission, viewer_of(request)))
