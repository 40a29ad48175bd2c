"""The status page: where a submission and its jobs are, and what was asked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from skysolve.engine.params import SolveParameters
from skysolve.front.astro import dec_dms, ra_hms
from skysolve.submissions import services as submissions
from skysolve.submissions.logs import shown_log
from skysolve.submissions.models import Job, Submission
from skysolve.submissions.transitions import PICTURES

#: How many lines of the solver log the status page shows.
LOG_TAIL_LINES = 30

STAGE_LABELS = {
    "": "waiting for a worker",
    "preparing": "reading the image",
    "extracting": "extracting sources",
    "solving": "solving",
    "annotating": "naming objects in the field",
    "finished": "finishing",
}

#: Jobs ahead in the queue counted for the status page (more shows as "more than").
QUEUE_AHEAD_SHOWN = 1000


def status_label(job: Job) -> str:
    if job.status == Job.QUEUED:
        # Counted up to a bound: a long queue is not read whole for every poll.
        earlier = Job.objects.filter(status=Job.QUEUED, queued_at__lt=job.queued_at)
        ahead = earlier.values("id")[:QUEUE_AHEAD_SHOWN].count()
        if ahead >= QUEUE_AHEAD_SHOWN:
            return f"queued (more than {QUEUE_AHEAD_SHOWN - 1} ahead)"
        return "queued" if ahead == 0 else f"queued ({ahead} ahead)"
    if job.status == Job.RUNNING:
        return STAGE_LABELS.get(job.stage, job.stage)
    if job.status == Job.SUCCESS:
        return "done: solved"
    if job.status == Job.CANCELLED:
        return "cancelled"
    return f"failed: {shown_log(job.error_message)}" if job.error_message else "failed"


def log_tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The end of a solver log as shown to people: file paths reduced to names."""
    return shown_log("\n".join(text.splitlines()[-lines:]))


SCALE_UNIT_TEXT = {
    "degwidth": "° image width",
    "arcminwidth": "′ image width",
    "arcsecperpix": "″ per pixel",
    "focalmm": "mm focal length (35 mm equivalent)",
}
PARITY_TEXT = {0: "positive", 1: "negative (flipped)", 2: "try both"}


def upload_settings(parameters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The solve settings a submission was made with, as (label, text) rows."""
    p = dict(parameters)
    units = SCALE_UNIT_TEXT.get(str(p.get("scale_units")), str(p.get("scale_units") or ""))
    if p.get("scale_type") == "ev" and p.get("scale_est") is not None:
        err = p.get("scale_err")
        scale = f"{p['scale_est']:g} {units} ± {err if err is not None else 20:g}%"
    elif p.get("scale_lower") is not None or p.get("scale_upper") is not None:
        lo, hi = p.get("scale_lower"), p.get("scale_upper")
        scale = f"{'…' if lo is None else f'{lo:g}'} to {'…' if hi is None else f'{hi:g}'} {units}"
    else:
        scale = "not given (blind)"
    if p.get("center_ra") is not None and p.get("center_dec") is not None:
        radius = p.get("radius")
        position = f"RA {ra_hms(p['center_ra'])}, Dec {dec_dms(p['center_dec'])}"
        position += f" within {radius:g}°" if radius is not None else ""
    else:
        position = "not given"
    extractor = "sextractor" if p.get("use_sextractor") else str(p.get("extractor") or "sep")
    downsample = p.get("downsample_factor")
    return [
        ("Scale", scale),
        ("Position", position),
        ("Parity", PARITY_TEXT.get(p.get("parity", 2), str(p.get("parity")))),
        ("Downsample", f"{downsample:g}×" if downsample else "automatic"),
        ("Tweak (SIP) order", _tweak_text(p.get("tweak_order"))),
        ("Source extractor", extractor),
    ]


def _tweak_text(order: Any) -> str:
    return "chosen by the fit" if order is None else str(order)


def detected_stars(job: Job) -> int | None:
    """How many sources the solve used, once it has said (None before)."""
    if not job.result or "n_sources" not in job.result:
        return None
    return int(job.result["n_sources"])


def stars_text(count: int | None) -> str:
    """``count`` sources as people should read it: at the engine's cap it is a cap, not a count."""
    if count is None:
        return ""
    cap = SolveParameters().max_sources
    if count >= cap:
        return f"the brightest {count} (the most the solver uses; the image holds more)"
    return str(count)


def submission_status(
    submission: Submission, viewer: submissions.Viewer | None = None
) -> dict[str, Any]:
    """What the status page polls: one entry per job, and whether all finished.

    With a viewer, jobs of images they may not read (an image its owner hid
    from a public batch, in strict mode) are left out.
    """
    jobs = (
        Job.objects.filter(user_image__submission=submission)
        .select_related("user_image")
        .order_by("queued_at", "id")
    )
    entries = []
    for job in jobs:
        public = job.user_image.is_public
        if viewer is not None and not submissions.may_read(
            viewer, submission, public=public, pages=True
        ):
            continue
        entries.append(
            {
                "id": job.id,
                "status": job.status,
                "stage": job.stage,
                "label": status_label(job),
                "log": log_tail(job.log),
                "error": shown_log(job.error_message),
                "results_url": f"/results/{job.id}",
                "stars": detected_stars(job),
                "stars_text": stars_text(detected_stars(job)),
                "pictures_pending": pictures_pending(job),
            }
        )
    return {
        "submission": submission.id,
        "settings": upload_settings(submission.parameters or {}),
        "finished": bool(entries) and all(e["status"] in Job.FINISHED for e in entries),
        "error": shown_log(submission.error_message),
        "jobs": entries,
    }


def pictures_pending(job: Job) -> bool:
    """A solved job whose worker is still drawing its pictures and writing its files.

    Once its lease has run out the worker is gone and they will not come.
    """
    return (
        job.status == Job.SUCCESS
        and job.stage == PICTURES
        and job.lease_expires is not None
        and job.lease_expires > timezone.now()
    )
