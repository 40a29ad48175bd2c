from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from skysolve.ops import metrics as metrics_mod

log = logging.getLogger(__name__)


@require_GET
def health(request: HttpRequest) -> HttpResponse:
    """200 when this web process can use the database, else 503 (take it out of rotation)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        log.warning("health check: database unavailable: %s", exc)
        connection.close()  # the next request starts from a fresh connection
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.SKYSOLVE_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return HttpResponse("metrics need the bearer token\n", status=401)
    return HttpResponse(
        metrics_mod.render(), content_type="text/plain; version=0.0.4; charset=utf-8"
    )
