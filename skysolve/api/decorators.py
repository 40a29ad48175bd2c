"""Parsing and authorising API requests before a view calls a service.

``@api_view`` turns a request into an :class:`ApiCall` (request-json, uploaded
parts, session, viewer) and turns :class:`ServiceError` into the one JSON
error shape, so views only pick values and call services.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from skysolve.api import multipart, responses
from skysolve.submissions.models import ApiSession
from skysolve.submissions.services import ServiceError, Viewer, find_session


@dataclass
class ApiCall:
    args: dict[str, Any]
    session: ApiSession | None
    viewer: Viewer
    files: dict[str, multipart.Part] = field(default_factory=dict)


View = Callable[..., HttpResponseBase]


def api_view(*, session: bool = False, json_required: bool = False) -> Callable[[View], View]:
    """Accept GET and POST; parse request-json; require a session when asked."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in ("GET", "POST"):
                return responses.error(f"method {request.method} not allowed", status=405)
            try:
                call = _build_call(request, session_required=session, json_required=json_required)
                return view(request, call, *args, **kwargs)
            except ServiceError as exc:
                return responses.error(exc.message, status=exc.status)

        return wrapper

    return decorate


def _build_call(request: HttpRequest, *, session_required: bool, json_required: bool) -> ApiCall:
    raw, files = _raw_json_and_files(request)
    args: dict[str, Any] = {}
    if raw is None:
        if json_required or session_required:
            raise ServiceError(responses.NO_JSON)
    else:
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ServiceError(responses.failed_to_parse(raw)) from None
        if not isinstance(parsed, dict):
            raise ServiceError(responses.failed_to_parse(raw))
        args = parsed
    api_session = None
    if session_required:
        if "session" not in args:
            raise ServiceError(responses.NO_SESSION)
        key = str(args["session"])
        api_session = find_session(key)
        if api_session is None:
            raise ServiceError(responses.no_session_with_key(key))
    return ApiCall(
        args=args, session=api_session, viewer=_viewer(request, args, api_session), files=files
    )


def _raw_json_and_files(request: HttpRequest) -> tuple[str | None, dict[str, multipart.Part]]:
    content_type = request.META.get("CONTENT_TYPE", "")
    if request.method == "POST" and content_type.lower().startswith("multipart/"):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        limit = settings.SKYSOLVE_MAX_UPLOAD_BYTES
        if length > limit:
            raise ServiceError(f"upload larger than {limit} bytes", status=413)
        body = request.read(limit + 1)
        if len(body) > limit:
            raise ServiceError(f"upload larger than {limit} bytes", status=413)
        try:
            parts = multipart.parse(body, content_type)
        except multipart.MultipartError as exc:
            raise ServiceError(f"bad multipart body: {exc}") from None
        files = {p.name: p for p in parts if p.filename is not None}
        fields = {p.name: p for p in parts if p.filename is None}
        part = fields.get("request-json") or files.get("request-json")
        raw = None if part is None else part.data.decode("utf-8", "replace")
        return raw, files
    if request.method == "POST":
        value = request.POST.get("request-json")
        if value is None:
            value = request.GET.get("request-json")
        return value, {}
    return request.GET.get("request-json"), {}


def _viewer(request: HttpRequest, args: dict[str, Any], api_session: ApiSession | None) -> Viewer:
    """Who reads: the session in request-json, ?session=, or the web site's login cookie."""
    if api_session is not None:
        return Viewer.of_session(api_session)
    for key in (args.get("session"), request.GET.get("session")):
        if key:
            found = find_session(str(key))
            if found is not None:
                return Viewer.of_session(found)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Viewer(user=user)
    return Viewer()
