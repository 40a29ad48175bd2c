"""Turning an API or web submission into a submission, its images and queued jobs.

Options are validated here (:func:`parse_options`); uploads are stored under
generated names; a star list (or a batch of them) becomes one image and job
per list.  URLs and archives become jobs in a worker's input preparation.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from skysolve.accounts.models import Profile
from skysolve.community.models import Album
from skysolve.engine.inputs.archives import archive_format
from skysolve.engine.params import NOT_FROM_REQUESTS, SolveParameters
from skysolve.errors import InvalidParameterError, ServiceError
from skysolve.submissions.access import Viewer
from skysolve.submissions.models import Job, Submission, UserImage
from skysolve.submissions.signals import announce_queued

#: Upload suffixes kept on stored files (the engine sniffs content, but a
#: familiar suffix helps people looking at the data directory).  Anything
#: else is stored without a suffix: the client's filename never builds a path.
SAFE_SUFFIXES = {
    ".fits", ".fit", ".fts", ".fz", ".gz", ".jpg", ".jpeg", ".png", ".tif", ".tiff",
    ".xyls", ".axy", ".txt", ".csv", ".dat", ".cr2", ".nef", ".dng",
    ".zip", ".tar", ".tgz", ".bz2", ".xz",
}  # fmt: skip


@dataclass(frozen=True)
class SubmissionOptions:
    """The non-solver options of a submission, validated."""

    parameters: SolveParameters
    allow_commercial_use: str
    allow_modifications: str
    publicly_visible: str
    album_title: str


def parse_options(args: Mapping[str, Any], user: User | None) -> SubmissionOptions:
    """Validate request-json options; raises ServiceError with a clear message."""
    try:
        # Learned hints are the queue's to give (from the owner's own solves),
        # and a file's hints the file's: ones sent by a client are dropped.
        parameters = SolveParameters.from_mapping(
            {k: v for k, v in args.items() if k not in NOT_FROM_REQUESTS}
        )
    except InvalidParameterError as exc:
        raise ServiceError(str(exc)) from None
    profile = Profile.for_user(user) if user is not None else None

    def choice(name: str, allowed: Sequence[str], default: str) -> str:
        raw = args.get(name)
        if raw is None or raw == "":
            return default
        value = str(raw).strip().lower()
        if value not in allowed:
            raise ServiceError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
        return value

    commercial = choice(
        "allow_commercial_use",
        ("d", "y", "n"),
        profile.default_allow_commercial_use if profile else "d",
    )
    modifications = choice(
        "allow_modifications",
        ("d", "y", "n", "sa"),
        profile.default_allow_modifications if profile else "d",
    )
    visible = choice(
        "publicly_visible", ("y", "n"), profile.default_publicly_visible if profile else "y"
    )
    album = args.get("album") or ""
    if not isinstance(album, str):
        raise ServiceError("album must be a string (the album title)")
    return SubmissionOptions(parameters, commercial, modifications, visible, album.strip()[:200])


def submit_upload(
    viewer: Viewer, args: Mapping[str, Any], data: bytes, filename: str
) -> Submission:
    options = parse_options(args, viewer.user)
    if not data:
        raise ServiceError("the uploaded file is empty")
    stored = store_upload(data, filename)
    return _create_upload(
        viewer, args, options, filename, stored, hashlib.sha1(data).hexdigest(), len(data)
    )


def submit_upload_file(
    viewer: Viewer, args: Mapping[str, Any], path: Path, filename: str
) -> Submission:
    """:func:`submit_upload` for a file already streamed to disk (under the data dir).

    It is hashed in chunks and moved, not copied, into the upload directory,
    so a large upload is never held in memory.
    """
    options = parse_options(args, viewer.user)
    size = path.stat().st_size
    if not size:
        raise ServiceError("the uploaded file is empty")
    digest = hashlib.sha1()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    relative = _upload_name(filename)
    target = Path(settings.SKYSOLVE_UPLOAD_DIR) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    path.replace(target)
    return _create_upload(viewer, args, options, filename, relative, digest.hexdigest(), size)


def _create_upload(
    viewer: Viewer,
    args: Mapping[str, Any],
    options: SubmissionOptions,
    filename: str,
    stored: str,
    file_hash: str,
    size: int,
) -> Submission:
    return _create(
        viewer,
        args,
        options,
        source=Submission.SOURCE_UPLOAD,
        original_filename=Path(filename).name[:255],
        disk_file=stored,
        file_hash=file_hash,
        file_size=size,
    )


def submit_url(viewer: Viewer, args: Mapping[str, Any], url: str) -> Submission:
    """Record a URL to fetch; a worker's input preparation fetches it, never the request thread."""
    from skysolve.submissions.fetch import check_url_syntax

    options = parse_options(args, viewer.user)
    try:
        check_url_syntax(url)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    name = url.rstrip("/").rsplit("/", 1)[-1][:255]
    return _create(
        viewer,
        args,
        options,
        source=Submission.SOURCE_URL,
        url=url,
        original_filename=name,
        file_hash=hashlib.sha1(url.encode()).hexdigest(),
    )


def submit_xy(viewer: Viewer, args: Mapping[str, Any]) -> Submission:
    """A star list given as ``x``/``y`` (and optional ``flux``) lists in the JSON.

    A batch is the same keys holding lists of lists (``"x": [[...], [...]]``):
    one submission with one image and one job per star list, each solved on
    its own.  ``image_width``/``image_height`` apply to every list; without
    them each field is taken as just enclosing its stars.
    """
    options = parse_options(args, viewer.user)
    raw_x: Any = args.get("x")
    raw_y: Any = args.get("y")
    raw_flux: Any = args.get("flux")
    batch = isinstance(raw_x, list) and bool(raw_x) and isinstance(raw_x[0], list)
    if not batch:
        star_list = _star_list(options, raw_x, raw_y, raw_flux, label="")
        return _create(
            viewer,
            args,
            options,
            source=Submission.SOURCE_XY,
            star_list=star_list,
            file_hash=_star_list_hash([star_list]),
        )
    if not isinstance(raw_y, list) or len(raw_y) != len(raw_x):
        raise ServiceError("a batch needs as many y lists as x lists")
    if raw_flux is not None and (not isinstance(raw_flux, list) or len(raw_flux) != len(raw_x)):
        raise ServiceError("a batch needs as many flux lists as x lists")
    if len(raw_x) > settings.SKYSOLVE_MAX_XY_LISTS:
        raise ServiceError(f"too many star lists (at most {settings.SKYSOLVE_MAX_XY_LISTS})")
    lists = [
        _star_list(
            options,
            raw_x[i],
            raw_y[i],
            None if raw_flux is None else raw_flux[i],
            label=f"star list {i + 1}: ",
        )
        for i in range(len(raw_x))
    ]
    if sum(len(item["x"]) for item in lists) > settings.SKYSOLVE_MAX_XY_STARS:
        raise ServiceError(f"too many stars (at most {settings.SKYSOLVE_MAX_XY_STARS})")
    return _create(
        viewer,
        args,
        options,
        images=lists,
        source=Submission.SOURCE_XY,
        file_hash=_star_list_hash(lists),
    )


def _star_list(
    options: SubmissionOptions, raw_x: Any, raw_y: Any, raw_flux: Any, *, label: str
) -> dict[str, Any]:
    x = _float_list(raw_x, label + "x")
    y = _float_list(raw_y, label + "y")
    flux = None if raw_flux is None else _float_list(raw_flux, label + "flux")
    if len(x) != len(y) or (flux is not None and len(flux) != len(x)):
        raise ServiceError(f"{label}x, y (and flux) must have the same length")
    if not x:
        raise ServiceError(f"{label}the star list is empty")
    if len(x) > settings.SKYSOLVE_MAX_XY_STARS:
        raise ServiceError(f"too many stars (at most {settings.SKYSOLVE_MAX_XY_STARS})")
    params = options.parameters
    # Without a size the field is taken as just enclosing the stars.
    width = params.image_width or max(1, math.ceil(max(x)))
    height = params.image_height or max(1, math.ceil(max(y)))
    return {"x": x, "y": y, "flux": flux, "image_width": width, "image_height": height}


def _star_list_hash(lists: Sequence[Mapping[str, Any]]) -> str:
    canonical = repr(
        [(d["x"], d["y"], d["flux"], d["image_width"], d["image_height"]) for d in lists]
    )
    return hashlib.sha1(canonical.encode()).hexdigest()


def _float_list(raw: Any, name: str) -> list[float]:
    if not isinstance(raw, list):
        raise ServiceError(f"{name} must be a list of numbers")
    out: list[float] = []
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ServiceError(f"{name} must be a list of finite numbers")
        out.append(float(v))
    return out


def store_upload(data: bytes, filename: str) -> str:
    """Write an upload under a generated name; return its path relative to the upload dir."""
    relative = _upload_name(filename)
    target = Path(settings.SKYSOLVE_UPLOAD_DIR) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return relative


def _upload_name(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in SAFE_SUFFIXES:
        suffix = ""
    day = timezone.now().strftime("%Y%m%d")
    return f"{day}/{secrets.token_hex(16)}{suffix}"


def upload_path(submission: Submission) -> Path | None:
    if not submission.disk_file:
        return None
    return Path(settings.SKYSOLVE_UPLOAD_DIR) / submission.disk_file


def _create(
    viewer: Viewer,
    args: Mapping[str, Any],
    options: SubmissionOptions,
    *,
    images: Sequence[Mapping[str, Any]] | None = None,
    **fields: Any,
) -> Submission:
    """One submission with one image and job, or one per star list of a batch."""
    request_json = {
        k: v for k, v in args.items() if k not in ("session", "apikey", "x", "y", "flux")
    }
    with transaction.atomic():
        album = None
        if options.album_title and viewer.user is not None:
            album, _ = Album.objects.get_or_create(owner=viewer.user, title=options.album_title)
        submission = Submission.objects.create(
            user=viewer.user,
            anonymous_session="" if viewer.user is not None else viewer.session_key,
            parameters=options.parameters.to_dict(),
            request_json=request_json,
            allow_commercial_use=options.allow_commercial_use,
            allow_modifications=options.allow_modifications,
            publicly_visible=options.publicly_visible,
            album=album,
            **fields,
        )
        per_image: Sequence[Mapping[str, Any] | None] = list(images) if images else [None]
        job_ids: list[int] = []
        for number, star_list in enumerate(per_image, start=1):
            user_image = UserImage.objects.create(
                submission=submission,
                user=viewer.user,
                original_filename=(
                    submission.original_filename if images is None else f"star list {number}"
                ),
                publicly_visible=options.publicly_visible,
                star_list=None if star_list is None else dict(star_list),
            )
            if album is not None:
                album.user_images.add(user_image)
            job = Job.objects.create(user_image=user_image, owner_key=viewer.owner_key)
            job_ids.append(job.id)
        if _jobs_complete(submission):
            submission.jobs_created()
        transaction.on_commit(lambda: announce_queued(job_ids))
    return submission


def _jobs_complete(submission: Submission) -> bool:
    """Whether the jobs made at submission time are all the submission will have.

    A URL is fetched, and an archive expanded into one job per image, by the
    input preparation in a worker (:mod:`skysolve.submissions.preparation`),
    which marks those submissions processed.
    """
    if submission.source == Submission.SOURCE_XY:
        return True
    if submission.source == Submission.SOURCE_URL:
        return False
    path = upload_path(submission)
    return path is not None and archive_format(path) is None
