"""Plain result-file URLs (/wcs_file/N, /annotated_display/N, /joblog/N ...)."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from skysolve.api import responses
from skysolve.api.decorators import ApiCall, api_view
from skysolve.engine.products.kml import kmz_bytes
from skysolve.errors import BadInputError
from skysolve.submissions import services
from skysolve.submissions.jobfiles import job_dir
from skysolve.submissions.logs import shown_log
from skysolve.submissions.models import Job
from skysolve.submissions.transitions import PICTURES

#: URL name -> key of SolveResult.files.
RESULT_FILES: dict[str, str] = {
    "wcs_file": "wcs",
    "new_fits_file": "new_fits",
    "rdls_file": "rdls",
    "axy_file": "axy",
    "corr_file": "corr",
    "kml_file": "kml",
    "lens_file": "lens",
    "altaz_file": "altaz",
    "annotated_display": "annotated_display",
    "annotated_full": "annotated_full",
    "red_green_image_display": "red_green_display",
    "red_green_image_full": "red_green_full",
    "extraction_image_display": "extraction_display",
    "extraction_image_full": "extraction_full",
    "grid_display": "grid_display",
    "grid_full": "grid_full",
    "residuals_display": "residuals_display",
    "residuals_full": "residuals_full",
    "joblog": "log",
}

FITS_KEYS = {"wcs", "new_fits", "rdls", "axy", "corr", "altaz"}

#: The download names nova's views give (``Content-Disposition: attachment``);
#: the pictures and the log are shown in the browser, as on nova.
ATTACHMENT_NAMES: dict[str, str] = {
    "wcs": "wcs.fits",
    "new_fits": "new-image.fits",
    "rdls": "rdls.fits",
    "axy": "axy.fits",
    "corr": "corr.fits",
    "kml": "image.kmz",
    "lens": "lens.json",
    "altaz": "altaz.fits",
}

KMZ_TYPE = "application/vnd.google-earth.kmz"

#: Seconds between two looks at a job whose files are being made.
FILE_WAIT_STEP = 0.05


def stored_file(job: Job, key: str) -> Path | None:
    """The file of ``key`` inside the job's directory, never outside it."""
    if not job.result:
        return None
    recorded = job.result.get("files", {}).get(key)
    if not recorded:
        return None
    base = job_dir(job.id).resolve()
    path = Path(str(recorded))
    try:
        relative = path.resolve().relative_to(base)
    except ValueError:
        # The data directory moved since the solve; the file kept its name.
        relative = Path(path.name)
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


def content_type_of(key: str, path: Path) -> str:
    if key in FITS_KEYS:
        return "application/fits"
    if key == "log":
        return "text/plain; charset=utf-8"
    if key == "lens":
        return "application/json"
    with path.open("rb") as f:
        magic = f.read(8)
    if magic.startswith(b"\x89PNG"):
        return "image/png"
    if magic.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if magic.startswith(b"PK"):
        return "application/vnd.google-earth.kmz"
    if key == "kml":
        return "application/vnd.google-earth.kml+xml"
    return "application/octet-stream"


def _still_making_files(job: Job) -> bool:
    """A success whose worker is still drawing its pictures and writing its files."""
    return (
        job.status == Job.SUCCESS
        and job.stage == PICTURES
        and job.lease_expires is not None
        and job.lease_expires > timezone.now()
    )


@api_view(head=True)
def result_file(request: HttpRequest, call: ApiCall, job_id: str, kind: str) -> HttpResponseBase:
    job = services.get_job(int(job_id), call.viewer)
    key = RESULT_FILES[kind]
    path = stored_file(job, key)
    # The answer is recorded before the pictures are drawn: a client that asks
    # for one right after `success` (NINA did) waits for it rather than a 404.
    give_up = time.monotonic() + settings.SKYSOLVE_FILE_WAIT_SECONDS
    while path is None and _still_making_files(job) and time.monotonic() < give_up:
        time.sleep(FILE_WAIT_STEP)
        job = services.get_job(job.id, call.viewer)
        path = stored_file(job, key)
    if path is None and _still_making_files(job):
        return responses.error(
            f"the {kind} of job {job.id} is still being made; ask again shortly", status=404
        )
    if key == "log" and (path is not None or job.log):
        # Shown as people read it: what happened, not where the server keeps files.
        text = path.read_text(errors="replace") if path is not None else job.log
        return HttpResponse(shown_log(text), content_type="text/plain; charset=utf-8")
    if path is None:
        return responses.error(f"no {kind} for job {job.id}", status=404)
    if key == "kml":
        return _kmz(job, path)
    if key in ATTACHMENT_NAMES:
        response = FileResponse(path.open("rb"), content_type=content_type_of(key, path))
        response["Content-Disposition"] = f"attachment; filename={ATTACHMENT_NAMES[key]}"
        return response
    return FileResponse(
        path.open("rb"),
        content_type=content_type_of(key, path),
        filename=f"{kind}-{job.id}{path.suffix}",
        as_attachment=False,
    )


def _kmz(job: Job, kml: Path) -> HttpResponse:
    """The KML and the picture it places, zipped: its relative link resolves in the zip."""
    if kml.read_bytes()[:2] == b"PK":
        data = kml.read_bytes()  # already a KMZ
    else:
        picture = stored_file(job, "annotated_display")
        if picture is None:
            return responses.error(f"no picture to place on the sky for job {job.id}", status=404)
        try:
            data = kmz_bytes(kml, picture)
        except BadInputError as exc:
            return responses.error(f"no kml_file for job {job.id}: {exc}", status=404)
    response = HttpResponse(data, content_type=KMZ_TYPE)
    response["Content-Disposition"] = f"attachment; filename={ATTACHMENT_NAMES['kml']}"
    response["Content-Length"] = str(len(data))
    return response
