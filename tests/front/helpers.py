"""Builders for web-site tests: people, submissions and finished jobs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from skysolve.submissions import services
from skysolve.submissions.jobfiles import job_dir
from skysolve.submissions.models import Job, Submission
from tests.jobs import job_of

PNG = b"\x89PNG\r\n\x1a\n" + b"fake picture"


def make_user(username: str, *, staff: bool = False) -> User:
    user = User.objects.create_user(username, f"{username}@example.org", "correct horse 42")
    user.is_staff = staff
    user.save()
    return user


def submit(
    user: User | None,
    *,
    public: bool = True,
    filename: str = "field.jpg",
    album: str = "",
    **options: Any,
) -> Submission:
    args: dict[str, Any] = {"publicly_visible": "y" if public else "n", **options}
    if album:
        args["album"] = album
    viewer = services.Viewer(user=user, session_key="" if user else "anon-session")
    return services.submit_upload(viewer, args, b"not really an image", filename)


def solve(
    submission: Submission,
    *,
    ra: float = 187.185,
    dec: float = 56.713,
    radius: float = 20.0,
    objects: Sequence[str] = ("Part of the constellation Ursa Major (UMa)",),
    pictures: Sequence[str] = ("annotated_display", "extraction_display", "grid_display"),
) -> Job:
    """Mark the submission's job solved at (ra, dec) with small result files on disk."""
    job = job_of(submission)
    out: Path = job_dir(job.id)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for key in (*pictures, "wcs", "log"):
        path = out / f"{key}.png"
        path.write_bytes(PNG)
        files[key] = str(path)
    job.status = Job.SUCCESS
    job.stage = "finished"
    job.finished_at = timezone.now()
    job.ra, job.dec, job.radius = ra, dec, radius
    job.pixscale, job.orientation, job.parity = 169.7, 65.47, 1.0
    job.width_arcsec, job.height_arcsec = 719 * 169.7, 507 * 169.7
    job.log = "\n".join(f"log line {i}" for i in range(50))
    job.result = {
        "solved": True,
        "files": files,
        "objects_in_field": list(objects),
        "annotations": [],
        "command": ["skysolve", "solve", "apod4.jpg", "--scale-units", "degwidth"],
    }
    job.save()
    services.add_machine_tags(job.user_image, list(objects))
    submission.update_processing_times()
    return job


def fail(submission: Submission, message: str = "no match found") -> Job:
    job = job_of(submission)
    job.status = Job.FAILURE
    job.stage = "finished"
    job.finished_at = timezone.now()
    job.error_message = message
    job.log = "tried hard"
    job.save()
    return job


def form(**overrides: Any) -> dict[str, Any]:
    """The upload form's fields as a browser sends them by default, with ``overrides``."""
    data: dict[str, Any] = {
        "scale_preset": "unknown",
        "scale_units": "degwidth",
        "scale_type": "ul",
        "parity": "2",
        "tweak_order": "2",
        "allow_commercial_use": "d",
        "allow_modifications": "d",
        "publicly_visible": "y",
    }
    data.update(overrides)
    return data
