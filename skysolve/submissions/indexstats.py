"""What the job records say about index files: how often each solved, and
which field sizes this installation sees (for ``skysolve index recommend``)."""

from __future__ import annotations

from collections import Counter

from skysolve.submissions.models import Job

#: How many recent solved jobs describe "the field sizes of this installation".
RECENT_JOBS = 500


def solved_counts() -> dict[str, int]:
    """Successful jobs per index file name (the result's ``index``)."""
    names = Job.objects.filter(status=Job.SUCCESS).values_list("result__index", flat=True)
    return dict(Counter(str(n) for n in names if n))


def recent_field_widths(limit: int = RECENT_JOBS) -> list[float]:
    """Field widths (degrees; the larger side) of the most recent solved jobs."""
    rows = (
        Job.objects.filter(status=Job.SUCCESS)
        .order_by("-finished_at")
        .values_list("result__calibration__width_arcsec", "result__calibration__height_arcsec")[
            :limit
        ]
    )
    out = []
    for w, h in rows:
        try:
            size = max(float(w), float(h)) / 3600.0
        except (TypeError, ValueError):
            continue
        if size > 0:
            out.append(size)
    return out
