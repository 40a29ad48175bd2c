"""The one JSON answer helper and the one error shape of the API.

nova sends JSON as ``text/plain`` and the astrometry-net-client package
refuses anything else.  Errors are ``{"status": "error", "errormessage": ...}``;
clients match some of those strings exactly, so they live here as constants.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse

NO_JSON = "no json"
NO_SESSION = 'no "session" in JSON.'
NEED_APIKEY = 'need "apikey"'
NOT_AUTHENTICATED = "user is not authenticated."


def no_session_with_key(key: str) -> str:
    return f'no session with key "{key}"'


def failed_to_parse(raw: str) -> str:
    return f'failed to parse JSON: "{raw}"'


def json_response(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(data), content_type="text/plain", status=status)


def json_text(body: str) -> HttpResponse:
    """An answer whose JSON is already written (a long list the database wrote as text)."""
    return HttpResponse(body, content_type="text/plain")


def error(message: str, status: int = 200) -> HttpResponse:
    """nova answers errors with HTTP 200; we keep that except for 4xx where clients don't care."""
    return json_response({"status": "error", "errormessage": message}, status=status)
