"""Hints learned from a user's earlier solves.

An observer sends the frames of one night, or the images of one archive or
batch, one after another: same camera, same lens, often the same part of the
sky.  What the first solve found (pixel scale, centre) is then the likeliest
answer for the next image of the same camera, so it is tried first; the
pipeline falls back to the learned scale alone, then to a blind search, when
it is wrong.  Only jobs of the same owner are looked at, and only when the
request itself gave no scale and no position.

A hint from another camera costs time (a wrong centre up to the pipeline's
learned share of the budget, 10 s), so an earlier solve is offered only when
its camera matches: the same image size, and where both files are FITS with
them, the same ``INSTRUME``, ``TELESCOP``, ``FOCALLEN`` and pixel size
(``XPIXSZ``, ``PIXSIZE`` or ``PIXSIZE1``, read as the image's own hints read
them).  The new image's size and header are read from its file before the solve (a few
kilobytes); a file that cannot be read is judged by what is known.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from skysolve.engine.inputs.camera import CAMERA_CARDS, cards_from_head, read_camera
from skysolve.engine.inputs.formats import read_head, sniff_format
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
#: Where both images name the camera, its optics or its pixel size
#: (:func:`~skysolve.engine.inputs.camera.read_camera`), they must agree: text
#: case-insensitively, numbers within NUMBER_TOLERANCE.
#: Relative difference of focal length or pixel size still taken as the same value
#: (rounding by the capture program); another reducer or binning is far more.
NUMBER_TOLERANCE = 0.02
#: Bytes read from the start of a FITS file for its headers (12 blocks).
_HEADER_BYTES = 2880 * 12
#: The cards that give the image size (``ZNAXIS*`` of a tile-compressed image).
_SIZE_CARDS = ("NAXIS", "NAXIS1", "NAXIS2", "ZNAXIS1", "ZNAXIS2")


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
    camera = _camera_of(job)
    if params.image_width is not None and params.image_height is not None:
        # A star list says its size: another size is another camera.
        camera.size = (params.image_width, params.image_height)
    hints: list[LearnedHint] = []
    sizes: set[tuple[int, int]] = set()
    for candidate in [*siblings[:MAX_HINTS], *earlier[:MAX_HINTS]]:
        hint = _hint_from(candidate)
        if hint is None or (hint.image_width, hint.image_height) in sizes:
            continue
        if camera.size is not None and (hint.image_width, hint.image_height) != camera.size:
            continue
        if camera.keywords and not _same_camera(camera.keywords, _camera_of(candidate).keywords):
            continue
        sizes.add((hint.image_width, hint.image_height))
        hints.append(hint)
        if len(hints) >= MAX_HINTS:
            break
    return tuple(hints)


@dataclass
class _Camera:
    """What a job's file says about the camera: its image size and identity."""

    size: tuple[int, int] | None = None
    keywords: dict[str, str | float] = field(default_factory=dict)


def _same_camera(ours: dict[str, str | float], theirs: dict[str, str | float]) -> bool:
    """Whether every camera keyword both images have agrees."""
    for key in ours.keys() & theirs.keys():
        a, b = ours[key], theirs[key]
        if isinstance(a, float) and isinstance(b, float):
            if not math.isclose(a, b, rel_tol=NUMBER_TOLERANCE):
                return False
        elif str(a).strip().casefold() != str(b).strip().casefold():
            return False
    return True


def _camera_of(job: Job) -> _Camera:
    """The camera of ``job``'s image file; empty when there is no file to read."""
    image = job.user_image
    relative = image.disk_file or image.submission.disk_file
    if not relative:
        return _Camera()
    path = Path(settings.SKYSOLVE_UPLOAD_DIR) / relative
    fmt = sniff_format(path)
    if fmt == "fits":
        return _fits_camera(read_head(path, _HEADER_BYTES) or b"")
    if fmt is None or fmt == "tiff":
        return _Camera()  # a multi-page TIFF's first page need not be the image
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Only the size is read: a huge picture is no bomb here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as picture:  # reads the header only
                return _Camera(size=picture.size)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return _Camera()


def _fits_camera(head: bytes) -> _Camera:
    """Image size and camera from the first bytes of a FITS file.

    The primary header, and when it has no image (a tile-compressed ``.fz``
    file) the first extension's; a truncated or damaged header gives what was
    read before the damage.  The cards are read by the engine's one camera
    reader, as the hints of the image itself are.
    """
    camera = _Camera()
    start = 0
    for _hdu in range(2):
        cards, end = cards_from_head(head, start, _SIZE_CARDS + CAMERA_CARDS)
        camera.keywords.update(read_camera(cards).identity())
        width = cards.get("ZNAXIS1", cards.get("NAXIS1"))
        height = cards.get("ZNAXIS2", cards.get("NAXIS2"))
        if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
            camera.size = (width, height)
            return camera
        if end is None:
            return camera
        start = -(-end // 2880) * 2880  # the next header starts on a block boundary
    return camera


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
