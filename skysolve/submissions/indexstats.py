"""What the job records say about index files: how often each solved, and
which field sizes this installation sees (for ``skysolve index recommend``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

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


def overview(fov_deg: float | None = None, *, mirrors: str = "") -> dict[str, Any]:
    """What the staff page on index files shows: the installed files with the
    jobs each solved, the field sizes they cover, and a recommendation (for
    ``fov_deg``, else for the recent jobs' field sizes) with the commands that
    fetch what is missing from this installation's mirrors."""
    from skysolve.engine.indexes.fetch import parse_mirrors
    from skysolve.engine.indexes.files import describe_coverage, find_indexes, format_arcmin
    from skysolve.engine.indexes.installed import index_dirs_from_env
    from skysolve.engine.indexes.series import recommend
    from skysolve.errors import SolveError

    dirs = index_dirs_from_env()
    indexes = find_indexes(dirs, allow_empty=True)
    counts = solved_counts()
    rows = [
        {
            "name": ix.name,
            "directory": str(ix.path.parent),
            "series": ix.series,
            "scale": ix.scale_number,
            "quads": f"{format_arcmin(ix.scale_lower / 60)}–{format_arcmin(ix.scale_upper / 60)}",
            "tile": f"{ix.healpix} (nside {ix.nside})" if ix.tiled else "whole sky",
            "mb": ix.size_bytes / 1e6,
            "solved": counts.get(ix.name, 0),
        }
        for ix in indexes
    ]
    widths = [fov_deg] if fov_deg is not None else recent_field_widths()
    recommendation = None
    error = ""
    if widths:
        try:
            rec = recommend(min(widths), max(widths), installed=indexes)
            mirror_of = parse_mirrors(mirrors)
            commands = [
                f"{command} --mirror {mirror_of[int(command.split()[4])]}"
                for command in rec.commands()
            ]
            recommendation = {
                "fov": f"{min(widths):.3g}–{max(widths):.3g}°",
                "jobs": 0 if fov_deg is not None else len(widths),
                "items": [
                    {
                        "series": item.series,
                        "scale": item.scale,
                        "quads": f"{format_arcmin(item.quad_arcmin[0])}–"
                        f"{format_arcmin(item.quad_arcmin[1])}",
                        "required": item.required,
                        "files": len(item.files),
                        "installed": len(item.installed),
                        "mb": item.bytes / 1e6,
                        "exact": item.bytes_exact,
                    }
                    for item in rec.items
                ],
                "commands": commands,
            }
        except SolveError as exc:
            error = exc.message
    return {
        "dirs": [str(d) for d in dirs],
        "indexes": rows,
        "total_mb": sum(r["mb"] for r in rows),
        "coverage": describe_coverage(indexes),
        "recommendation": recommendation,
        "error": error,
    }
