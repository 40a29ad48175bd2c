"""Hints learned from a user's earlier solves.

An observer sends the frames of one night, or the images of one archive or
batch, one after another: same camera, same lens, often the same part of the
sky.  What the first solve found (pixel scale, centre) is then the likeliest
answer for the next image of the same size, so it is tried first; the
pipeline falls back to the learned scale alone, then to a blind search, when
it is wrong.  Only jobs of the same owner are looked at, and only when the
request itself gave no scale and no position.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from skysolve.engine.params import LearnedHint, SolveParameters
from skysolve.errors import SolveError
from skysolve.submissions.models import Job

#: Earlier solves older than this are another night (or another setup).
LEARN_WINDOW = timedelta(hours=12)
#: How many earlier solves are offered (the pipeline takes the first of the image's size).
MAX_HINTS = 5
#: Relative half-width of the scale range around the earlier pixel scale: a
#: refocus or another filter changes it by far less.
SCALE_TOLERANCE = 0.15


def learned_hints_for(
    job: Job, *, now: datetime | None = None, window: timedelta = LEARN_WINDOW
) -> tuple[LearnedHint, ...]:
    """What the owner's earlier successful solves suggest for ``job``, best first.

    Solved images of the same submission (archive members, lists of a batch)
    come first, then the owner's other solves of the last ``window``, most
    recent first; one per image size (the pipeline uses the first of the
    image's own size).  Empty when the request gave a scale or a position, or
    turned hints off.
    """
    try:
        params = SolveParameters.from_mapping(job.submission.parameters)
    except SolveError:
        return ()
    if params.has_scale or params.has_position or not params.use_hints:
        return ()
    now = now or timezone.now()
    solved = Job.objects.filter(status=Job.SUCCESS, pixscale__isnull=False).exclude(pk=job.pk)
    submission_id = job.submission.pk
    siblings = solved.filter(user_image__submission_id=submission_id).order_by("-finished_at")
    earlier = (
        solved.filter(owner_key=job.owner_key, finished_at__gte=now - window)
        .exclude(user_image__submission_id=submission_id)
        .order_by("-finished_at")
    )
    known = None
    if params.image_width is not None and params.image_height is not None:
        known = (params.image_width, params.image_height)
    hints: list[LearnedHint] = []
    sizes: set[tuple[int, int]] = set()
    for candidate in [*siblings[:MAX_HINTS], *earlier[:MAX_HINTS]]:
        hint = _hint_from(candidate)
        if hint is None or (hint.image_width, hint.image_height) in sizes:
            continue
        if known is not None and (hint.image_width, hint.image_height) != known:
            continue  # a star list says its size: another size is another camera
        sizes.add((hint.image_width, hint.image_height))
        hints.append(hint)
        if len(hints) >= MAX_HINTS:
            break
    return tuple(hints)


def _hint_from(job: Job) -> LearnedHint | None:
    """The scale and centre ``job`` found, with its image size; None when the stored
    result lacks them (an old or foreign result is skipped, not trusted)."""
    result: Any = job.result or {}
    try:
        width, height = int(result["image_width"]), int(result["image_height"])
        pixscale = float(job.pixscale)  # type: ignore[arg-type]
        return LearnedHint(
            source=f"earlier solve of job {job.pk}",
            image_width=width,
            image_height=height,
            scale_lower=pixscale * (1.0 - SCALE_TOLERANCE),
            scale_upper=pixscale * (1.0 + SCALE_TOLERANCE),
            center_ra=None if job.ra is None else float(job.ra) % 360.0,
            center_dec=None if job.ra is None or job.dec is None else float(job.dec),
        )
    except (KeyError, TypeError, ValueError, SolveError):
        return None
