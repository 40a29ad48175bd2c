"""Parsing and authorising API requests before a view calls a service.

``@api_view`` turns a request into an :class:`ApiCall` (request-json, uploaded
parts, session, viewer) and turns :class:`ServiceError` into the one JSON
error shape, so views only pick values and call services.  Nothing a client
sends may end in a 500: malformed bodies, oversized ones, NUL characters and
non-finite numbers all become nova-shaped errors here.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from skysolve.accounts.models import ApiSession
from skysolve.accounts.ratelimit import check_id_lookups, client_ip, record_miss
from skysolve.api import multipart, responses
from skysolve.errors import NotFound, ServiceError
from skysolve.submissions import uploads
from skysolve.submissions.services import Viewer, find_session


@dataclass
class ApiCall:
    args: dict[str, Any]
    session: ApiSession | None
    viewer: Viewer
    files: dict[str, multipart.Part] = field(default_factory=dict)
    #: The client's address (see skysolve.accounts.ratelimit.client_ip).
    client_ip: str = ""


View = Callable[..., HttpResponseBase]

#: URL arguments that make a request an id lookup (see ratelimit.check_id_lookups).
_ID_KWARGS = frozenset({"job_id", "submission_id"})


def api_view(
    *, session: bool = False, json_required: bool = False, head: bool = False, ids: bool = False
) -> Callable[[View], View]:
    """Accept GET and POST (HEAD too if ``head``); parse request-json; ask for a session if told.

    A view with a job or submission id in its URL (or ``ids``, for one that
    takes the id in request-json) is an id lookup: refused with 429 for an
    address that has looked up too many ids that do not exist.
    """
    methods = ("GET", "POST", "HEAD") if head else ("GET", "POST")

    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                return responses.error(f"method {request.method} not allowed", status=405)
            if request.method == "HEAD":
                return _headers_only(wrapper_body(request, *args, **kwargs))
            return wrapper_body(request, *args, **kwargs)

        def wrapper_body(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            files: dict[str, multipart.Part] = {}
            try:
                raw, files = _raw_json_and_files(request)
                call = _build_call(
                    request, raw, files, session_required=session, json_required=json_required
                )
                if (ids or _ID_KWARGS & kwargs.keys()) and not call.viewer.is_staff:
                    check_id_lookups(call.client_ip)
                try:
                    return view(request, call, *args, **kwargs)
                except NotFound as exc:
                    if exc.object_id is not None and not call.viewer.is_staff:
                        record_miss(call.client_ip, exc.kind, exc.object_id)
                    raise
            except ServiceError as exc:  # the one translation of skysolve.errors' refusals
                response = responses.error(exc.message, status=exc.status)
                for name, value in exc.headers.items():
                    response[name] = value
                if exc.status == 429:
                    # Clients that stop at the status code show the reason phrase.
                    response.reason_phrase = f"Too Many Requests ({exc.message})"
                return response
            except RequestDataTooBig:
                return responses.error("request too large for a form body", status=413)
            except SuspiciousOperation as exc:
                # Too many fields, bad host and the like: Django would answer HTML.
                return responses.error(f"bad request: {exc}", status=400)
            finally:
                for part in files.values():
                    part.close()

        return wrapper

    return decorate


def _headers_only(response: HttpResponseBase) -> HttpResponse:
    """The answer to a HEAD: the GET's status and headers, Content-Length included, no body.

    Done here rather than left to the server so that no server sends a file's
    body (or reads it from disk) for a HEAD.
    """
    head = HttpResponse(status=response.status_code)
    for name, value in response.items():
        head[name] = value
    if isinstance(response, FileResponse):
        # Only the file: response.close() would also send request_finished in the
        # middle of the request, and Django then closes the database connection.
        if response.file_to_stream is not None:
            response.file_to_stream.close()
    elif isinstance(response, HttpResponse) and "Content-Length" not in head:
        head["Content-Length"] = str(len(response.content))
    return head


def parse_request_json(raw: str) -> dict[str, Any]:
    """request-json as a dict; NaN, Infinity, huge numbers and NUL characters are refused.

    Python's json accepts NaN/Infinity tokens and turns 1e999 into inf; none
    of them is a usable value and PostgreSQL's jsonb cannot store them (nor
    U+0000), so they are refused at the edge rather than failing later.
    """

    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"number out of range: {text}")
        return value

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not valid JSON")

    try:
        parsed = json.loads(raw, parse_float=finite, parse_constant=refuse)
    except (ValueError, RecursionError):
        raise ServiceError(responses.failed_to_parse(raw)) from None
    if not isinstance(parsed, dict):
        raise ServiceError(responses.failed_to_parse(raw))
    if _unstorable_text(parsed):
        raise ServiceError("request-json must not contain NUL characters or lone surrogates")
    return parsed


def _unstorable_text(value: Any) -> bool:
    """NUL or a lone surrogate (``"\\ud800"`` is valid JSON) anywhere in the value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or not _is_utf8(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _build_call(
    request: HttpRequest,
    raw: str | None,
    files: dict[str, multipart.Part],
    *,
    session_required: bool,
    json_required: bool,
) -> ApiCall:
    args: dict[str, Any] = {}
    if raw is None:
        if json_required or session_required:
            raise ServiceError(responses.NO_JSON)
    else:
        args = parse_request_json(raw)
    api_session = None
    if session_required:
        if "session" not in args:
            raise ServiceError(responses.NO_SESSION)
        key = str(args["session"])
        api_session = _find_session(key)
        if api_session is None:
            raise ServiceError(responses.no_session_with_key(key))
    return ApiCall(
        args=args,
        session=api_session,
        viewer=_viewer(request, args, api_session),
        files=files,
        client_ip=client_ip(request),
    )


def _raw_json_and_files(request: HttpRequest) -> tuple[str | None, dict[str, multipart.Part]]:
    content_type = request.META.get("CONTENT_TYPE", "")
    if request.method == "POST" and content_type.lower().startswith("multipart/"):
        # Streamed to disk and capped while it arrives; parts stay on disk.
        with uploads.spool_body(request, settings.SKYSOLVE_MAX_UPLOAD_BYTES) as body:
            # A broken body raises MultipartError, a ServiceError.
            parts = multipart.parse_file(body, content_type, uploads.spool_file)
        files = {p.name: p for p in parts if p.filename is not None}
        for part in parts:
            if part.filename is not None and files[part.name] is not part:
                part.close()  # a repeated name: the last one counts
        fields = {p.name: p for p in parts if p.filename is None}
        json_part = fields.get("request-json") or files.get("request-json")
        raw = None
        if json_part is not None:
            data = (
                json_part.data
                if json_part.file is None
                else json_part.file.read(multipart.MAX_FIELD_BYTES)
            )
            raw = data.decode("utf-8", "replace")
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
            found = _find_session(str(key))
            if found is not None:
                return Viewer.of_session(found)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Viewer(user=user)
    return Viewer()


def _find_session(key: str) -> ApiSession | None:
    # Keys are 32 hex digits; PostgreSQL refuses NUL in a query parameter.
    if "\x00" in key or len(key) > 200:
        return None
    return find_session(key)
