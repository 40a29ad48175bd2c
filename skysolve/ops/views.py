from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from skysolve.ops import metrics as metrics_mod
from skysolve.ops.health import fastpath_status, worker_report

log = logging.getLogger(__name__)


def _database_down(exc: Exception) -> JsonResponse:
    log.warning("health check: database unavailable: %s", exc)
    connection.close()  # the next request starts from a fresh connection
    return JsonResponse({"status": "error", "database": "unavailable"}, status=503)


@require_GET
def health(request: HttpRequest) -> HttpResponse:
    """For load balancers: 200 when this web process can use the database, else 503.

    ``workers`` says whether jobs are being taken ("ok" or "degraded") but
    does not change the answer: without workers the site still takes
    submissions and serves results, and taking every web process out of
    rotation would not bring a worker back.  Monitors watch /health/workers.
    ``fastpath`` is "ok", "missing" (the pattern-hash database is absent: every
    image goes to astrometry.net, slower but right) or "outdated" (its stars were
    made by an older skysolve, 0.2" off: ``make setup`` rebuilds it), also without
    changing the code.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        workers = worker_report()["status"]
    except Exception as exc:
        return _database_down(exc)
    return JsonResponse(
        {"status": "ok", "database": "ok", "workers": workers, "fastpath": fastpath_status()}
    )


@require_GET
def workers(request: HttpRequest) -> HttpResponse:
    """For monitors: 200 when every kind of worker the queue mode needs is alive, else 503."""
    try:
        report = worker_report()
    except Exception as exc:
        return _database_down(exc)
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


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
