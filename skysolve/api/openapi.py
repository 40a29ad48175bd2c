"""The OpenAPI description of the API, served at /api/openapi.json.

Written by hand (it documents nova's quirks); a test checks that it lists
exactly the URL patterns the service routes.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from skysolve.api import responses

JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}
SUB_ID = {"name": "submission_id", "in": "path", "required": True, "schema": {"type": "integer"}}
REQUEST_JSON_BODY = {
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {"request-json": {"type": "string", "description": "a JSON object"}},
            }
        }
    }
}
UPLOAD_BODY = {
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "request-json": {"type": "string"},
                    "file": {"type": "string", "format": "binary"},
                },
            }
        },
        **REQUEST_JSON_BODY["content"],
    }
}


def _json(description: str, example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": {"type": "object"}}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {"text/plain": media}}


ERROR = _json("error", {"status": "error", "errormessage": 'no "session" in JSON.'})
TOO_LARGE = _json(
    "the body passed SKYSOLVE_MAX_UPLOAD_MB (reading stops there)",
    {"status": "error", "errormessage": "upload larger than 209715200 bytes (200 MB)"},
)
TOO_MANY = _json(
    "rate limit (per user and per address, per hour); Retry-After gives the seconds to wait",
    {
        "status": "error",
        "errormessage": "rate limit reached: at most 360 submissions per hour per user; "
        "try again in 12 min",
    },
)
GUESSING = _json(
    "this address looked up too many ids that do not exist (SKYSOLVE_ID_MISSES_PER_HOUR); "
    "every id lookup from it is refused until Retry-After seconds have passed",
    {
        "status": "error",
        "errormessage": "too many lookups of ids that do not exist: at most 100 per hour "
        "per address; try again in 42 min",
    },
)

NO_CALIBRATION = {"error": "no calibration data available for job 12345"}


def _op(
    summary: str,
    ok: dict[str, Any],
    *,
    body: Any = None,
    params: Any = None,
    errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": ok, "404": ERROR, **(errors or {})},
    }
    if body is not None:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    return op


def _get_post(summary: str, ok: dict[str, Any], params: Any = None) -> dict[str, Any]:
    ids = any(p in (JOB_ID, SUB_ID) for p in params or [])
    op = _op(summary, ok, params=params, errors={"429": GUESSING} if ids else None)
    return {"get": op, "post": op}


def _file(summary: str, media: str) -> dict[str, Any]:
    ok = {
        "description": summary,
        "content": {media: {"schema": {"type": "string", "format": "binary"}}},
    }
    operations = _get_post(summary, ok, [JOB_ID])
    head = _op(
        summary + " (headers only)",
        {"description": "the GET's headers"},
        params=[JOB_ID],
        errors={"429": GUESSING},
    )
    return {**operations, "head": head}


FILES: dict[str, tuple[str, str]] = {
    "wcs_file": ("WCS as a FITS header (attachment; filename=wcs.fits)", "application/fits"),
    "new_fits_file": (
        "image as FITS with the WCS (attachment; filename=new-image.fits)",
        "application/fits",
    ),
    "rdls_file": (
        "catalogue stars in the field, FITS table (attachment; filename=rdls.fits)",
        "application/fits",
    ),
    "axy_file": (
        "detected sources, FITS table (attachment; filename=axy.fits)",
        "application/fits",
    ),
    "corr_file": (
        "matched star pairs, FITS table (attachment; filename=corr.fits)",
        "application/fits",
    ),
    "kml_file": (
        "KMZ for Google Earth's sky mode: the KML and the picture it places (image.kmz)",
        "application/vnd.google-earth.kmz",
    ),
    "lens_file": (
        "all-sky frames: the lens model, matched stars and residuals (attachment; lens.json)",
        "application/json",
    ),
    "altaz_file": (
        "all-sky frames with a known time and site: every pixel's altitude and azimuth,"
        " a two-plane FITS cube (attachment; altaz.fits)",
        "application/fits",
    ),
    "annotated_display": ("annotated image, display size", "image/jpeg"),
    "annotated_full": ("annotated image, full size", "image/jpeg"),
    "red_green_image_display": ("sources vs catalogue, display size", "image/png"),
    "red_green_image_full": ("sources vs catalogue, full size", "image/png"),
    "extraction_image_display": ("detected sources, display size", "image/png"),
    "extraction_image_full": ("detected sources, full size", "image/png"),
    "grid_display": ("RA/Dec grid, display size", "image/png"),
    "grid_full": ("RA/Dec grid, full size", "image/png"),
    "residuals_display": ("fit residuals as arrows, display size", "image/png"),
    "residuals_full": ("fit residuals as arrows, full size", "image/png"),
    "joblog": ("solver log", "text/plain"),
}


def build() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/login": {
            "post": _op(
                "Exchange an API key for a session (lasts at least two weeks)",
                _json(
                    "session",
                    {"status": "success", "message": "authenticated user: alice", "session": "..."},
                ),
                body=REQUEST_JSON_BODY,
            )
        },
        "/api/upload": {
            "post": _op(
                "Submit an image or star-list file (session and options in request-json);"
                " with no file part, x/y lists in request-json submit a star list"
                " (client.py --upload-xy), as url_upload does; tweak_order forces the final"
                " fit's SIP order, without it the stars choose (nova: 2)",
                _json("submission", {"status": "success", "subid": 16714, "hash": "<sha1>"}),
                body=UPLOAD_BODY,
                errors={"413": TOO_LARGE, "429": TOO_MANY},
            )
        },
        "/api/url_upload": {
            "post": _op(
                "Submit a URL (fetched by the worker) or x/y lists with image_width/image_height;"
                " x/y (and flux) as lists of lists submit a batch: one job per star list",
                _json("submission", {"status": "success", "subid": 16714, "hash": "<sha1>"}),
                body=REQUEST_JSON_BODY,
                errors={"413": TOO_LARGE, "429": TOO_MANY},
            )
        },
        "/api/submissions/{submission_id}": _get_post(
            'Submission status; times are str(datetime) or "None"', _json("status"), [SUB_ID]
        ),
        "/api/jobs/{job_id}": _get_post(
            "Job status: processing, solving, success or failure", _json("status"), [JOB_ID]
        ),
        "/api/jobs/{job_id}/calibration": _get_post(
            "Calibration; orientation is nova's: the wcsinfo angle t, or (180 - t) mod 360 "
            'for JPEG/PNG/GIF inputs. Before a calibration exists: HTTP 200 {"error": ...}',
            _json("calibration, or nova's no-calibration answer", NO_CALIBRATION),
            [JOB_ID],
        ),
        "/api/jobs/{job_id}/info": _get_post(
            "Job summary (tags: every tag, machine tags included); once solved, skysolve "
            "adds quality: the final fit's matched stars, residuals, distortion order, "
            "uncertainties, limiting magnitude, star shapes and zero point, and the "
            "catalogue and epoch of the stars the WCS was fitted to (reference_catalogue, "
            "reference_epoch)",
            _json("info"),
            [JOB_ID],
        ),
        "/api/jobs/{job_id}/tags": _get_post(
            "Every tag of the image, machine tags included (as nova)", _json("tags"), [JOB_ID]
        ),
        "/api/jobs/{job_id}/machine_tags": _get_post("Machine tags", _json("tags"), [JOB_ID]),
        "/api/jobs/{job_id}/objects_in_field": _get_post("Objects", _json("objects"), [JOB_ID]),
        "/api/jobs/{job_id}/annotations": _get_post(
            "Annotations; nbright=N keeps the N brightest named stars. Before a calibration "
            'exists: HTTP 200 {"error": ...}',
            _json("annotations, or nova's no-calibration answer", NO_CALIBRATION),
            [
                JOB_ID,
                {
                    "name": "nbright",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "keep only this many bright stars, brightest first (0: all)",
                },
            ],
        ),
        "/api/jobs/{job_id}/cancel": {
            "post": _op(
                "skysolve extension: cancel a queued or running job (owner or staff; session)",
                _json("cancelled", {"status": "success"}),
                body=REQUEST_JSON_BODY,
                params=[JOB_ID],
                errors={"429": GUESSING},
            )
        },
        "/api/myjobs": {"post": _op("Your jobs (session)", _json("jobs"), body=REQUEST_JSON_BODY)},
        "/api/jobs_by_tag": _get_post(
            "Public jobs with a matching tag",
            _json("jobs", {"job_ids": []}),
            [
                {"name": "query", "in": "query", "required": True, "schema": {"type": "string"}},
                {
                    "name": "exact",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["yes", "no"]},
                },
            ],
        ),
        "/api/submission_images": {
            "post": _op(
                "User images of a submission (session, subid)",
                _json("images"),
                body=REQUEST_JSON_BODY,
                errors={"429": GUESSING},
            )
        },
        "/api/openapi.json": {"get": _op("This document", {"description": "OpenAPI 3.1"})},
    }
    for name, (summary, media) in FILES.items():
        paths[f"/{name}/{{job_id}}"] = _file(summary, media)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "skysolve (nova.astrometry.net-compatible API)",
            "version": "1",
            "description": (
                "Every path also works with a trailing slash; status and result "
                "URLs answer GET and POST. JSON is sent as text/plain. Errors are "
                '{"status": "error", "errormessage": "..."}. Unknown ids give 404.'
            ),
        },
        "paths": paths,
    }


@csrf_exempt  # an API URL: a POST must get the API's error, not the CSRF page
def openapi_json(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return responses.error(f"method {request.method} not allowed", status=405)
    return JsonResponse(build())
