"""The nova.astrometry.net JSON API (see NOVA_API.md and /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from skysolve.accounts.ratelimit import submission_slots
from skysolve.api import responses
from skysolve.api.decorators import ApiCall, api_view
from skysolve.community.tags import image_tag_texts
from skysolve.submissions import services
from skysolve.submissions.models import Submission, nova_time


@api_view(json_required=True)
def login(request: HttpRequest, call: ApiCall) -> HttpResponse:
    apikey = call.args.get("apikey")
    if not apikey:
        return responses.error(responses.NEED_APIKEY)
    session = services.login(str(apikey))
    return responses.json_response(
        {
            "status": "success",
            "message": f"authenticated user: {services.session_display_name(session)}",
            "session": session.key,
        }
    )


def _submitted(submission: Submission) -> HttpResponse:
    return responses.json_response(
        {"status": "success", "subid": submission.id, "hash": submission.file_hash}
    )


@api_view(session=True)
def upload(request: HttpRequest, call: ApiCall) -> HttpResponse:
    part = call.files.get("file")
    if part is None:
        # nova looks for a star list before a file: client.py --upload-xy posts
        # x/y in request-json to /api/upload with no file part.
        if "x" in call.args or "y" in call.args:
            with submission_slots(call.viewer.user, call.client_ip):
                return _submitted(services.submit_xy(call.viewer, call.args))
        return responses.error('no "file" in the upload')
    with submission_slots(call.viewer.user, call.client_ip):
        if part.path is not None:
            submission = services.submit_upload_file(
                call.viewer, call.args, part.path, part.filename or ""
            )
        else:
            submission = services.submit_upload(
                call.viewer, call.args, part.data, part.filename or ""
            )
    return _submitted(submission)


@api_view(session=True)
def url_upload(request: HttpRequest, call: ApiCall) -> HttpResponse:
    url = call.args.get("url")
    if not url and "x" not in call.args and "y" not in call.args:
        return responses.error('need "url", or "x" and "y"')
    with submission_slots(call.viewer.user, call.client_ip):
        if url:
            return _submitted(services.submit_url(call.viewer, call.args, str(url)))
        return _submitted(services.submit_xy(call.viewer, call.args))


@api_view()
def submission_status(request: HttpRequest, call: ApiCall, submission_id: str) -> HttpResponse:
    status = services.submission_status(int(submission_id), call.viewer)
    data: dict[str, object] = {
        "user": status.user_id,
        "processing_started": nova_time(status.processing_started),
        "processing_finished": nova_time(status.processing_finished),
        "user_images": status.user_images,
        "images": status.user_images,
        "jobs": status.jobs,
        # No separate calibration table: a job has at most one calibration.
        "job_calibrations": [[job, job] for job in status.calibrated],
    }
    if status.error_message:
        data["error_message"] = status.error_message
    return responses.json_response(data)


@api_view()
def job_status(request: HttpRequest, call: ApiCall, job_id: str) -> HttpResponse:
    values = services.read_job(int(job_id), call.viewer, services.JOB_STATUS)
    return responses.json_response({"status": services.job_of_values(values).nova_status()})


def _no_calibration(job_id: int) -> HttpResponse:
    # nova's own shape and status for a job that exists but has no calibration
    # (yet, or never): HTTP 200 and an "error" key, not the usual error shape.
    return responses.json_response({"error": f"no calibration data available for job {job_id}"})


@api_view()
def calibration(request: HttpRequest, call: ApiCall, job_id: str) -> HttpResponse:
    values = services.read_job(int(job_id), call.viewer, services.JOB_CALIBRATION)
    data = services.nova_calibration(values)
    if data is None:
        return _no_calibration(values["id"])
    return responses.json_response(data)


def _short_calibration(values: dict[str, Any]) -> dict[str, float] | None:
    data = services.nova_calibration(values)
    if data is None:
        return None
    keys = ("ra", "dec", "radius", "pixscale", "orientation", "parity")
    return {k: data[k] for k in keys}


@api_view()
def info(request: HttpRequest, call: ApiCall, job_id: str) -> HttpResponse:
    values = services.read_job(int(job_id), call.viewer, services.JOB_INFO)
    job = services.job_of_values(values)
    all_tags, machine_tags = services.tag_texts(values["user_image_id"])
    data: dict[str, object] = {
        "status": job.nova_status(),
        "original_filename": values["user_image__original_filename"],
        "objects_in_field": job.objects_in_field(),
        "machine_tags": machine_tags,
        "tags": all_tags,
    }
    short = _short_calibration(values)
    if short is not None:
        data["calibration"] = short
        # skysolve's addition (nova has no such field): how good the calibration is.
        quality = job.quality()
        if quality is not None:
            data["quality"] = quality
    return responses.json_response(data)


@api_view()
def tags(request: HttpRequest, call: ApiCall, job_id: str) -> HttpResponse:
    """Every tag of the image, the solver's machine tags included, as nova lists them."""
    job = services.get_job(int(job_id), call.viewer)
    all_tags, _ = services.tag_texts(job.user_image_id)  # type: ignore[attr-defined]
    return responses.json_response({"tags": all_tags})


@api_view()
def machine_tags(request: HttpRequest, call: ApiCall, job_id: str) -> HttpResponse:
    job = services.get_job(int(job_id), call.viewer)
    return responses.json_response({"tags": image_tag_texts(job.user_image, machine=True)})


@api_view()
def objects_in_field(request: HttpRequest, call: ApiCall, job_id: str) -> HttpResponse:
    job = services.get_job(int(job_id), call.viewer)
    return responses.json_response({"objects_in_field": job.objects_in_field()})


@api_view()
def annotation_list(request: HttpRequest, call: ApiCall, job_id: str) -> HttpResponse:
    """The annotations; ``?nbright=N`` keeps only the N brightest named stars (nova's option)."""
    nbright = _nbright(request.GET.get("nbright"))
    job = services.get_job(int(job_id), call.viewer)
    if not job.has_calibration:
        return _no_calibration(job.id)
    return responses.json_response({"annotations": services.brightest(job.annotations(), nbright)})


def _nbright(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise services.ServiceError(f'"nbright" must be a whole number, not {raw[:40]!r}') from None
    if value < 0:
        raise services.ServiceError(f'"nbright" must not be negative, not {value}')
    return value


@api_view(session=True)
def cancel(request: HttpRequest, call: ApiCall, job_id: str) -> HttpResponse:
    """Extension: stop a queued or running job (owner or staff only)."""
    job = services.get_job(int(job_id), call.viewer)
    services.cancel_job(job, call.viewer)
    return responses.json_response({"status": "success"})


@api_view(session=True)
def myjobs(request: HttpRequest, call: ApiCall) -> HttpResponse:
    # The list is written as text by the database (hundreds of thousands of
    # ids for a busy user); the body is what json_response would write.
    jobs = services.jobs_of_json(call.viewer)
    return responses.json_text('{"status": "success", "jobs": ' + jobs + "}")


@api_view()
def jobs_by_tag(request: HttpRequest, call: ApiCall) -> HttpResponse:
    query = call.args.get("query", request.GET.get("query", request.POST.get("query", "")))
    exact = call.args.get("exact", request.GET.get("exact", request.POST.get("exact", "")))
    if not query:
        return responses.error('need "query"')
    if "\x00" in str(query):
        return responses.error('"query" must not contain NUL characters')
    exact_match = str(exact).lower() in ("yes", "y", "true", "1")
    jobs = services.public_jobs_by_tag_json(str(query), exact=exact_match)
    return responses.json_text('{"job_ids": ' + jobs + "}")


@api_view(session=True, ids=True)
def submission_images(request: HttpRequest, call: ApiCall) -> HttpResponse:
    raw = call.args.get("subid")
    try:
        subid = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return responses.error('need "subid"')
    submission = services.get_submission(subid, call.viewer)
    return responses.json_response(
        {"status": "success", "image_ids": services.submission_image_ids(submission)}
    )


@api_view()
def unknown(request: HttpRequest, call: ApiCall) -> HttpResponse:
    """Any other URL under /api/ or a result-file URL with a bad id: 404, nova's error shape."""
    return responses.error(f"no such API URL: {request.path[:200]}", status=404)
