"""What the API (and later the web site) does with submissions, sessions and jobs.

Functions here take plain values, never a request, so the API views, the web
site and the command line share one implementation of every rule.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from skysolve.accounts.models import ApiKey, ApiSession, Profile
from skysolve.community.models import Album, Tag, TaggedJob, TaggedUserImage
from skysolve.engine.inputs.archives import archive_format
from skysolve.engine.params import NOT_FROM_REQUESTS, SolveParameters
from skysolve.engine.results import CALIBRATION_FIELDS, nova_orientation
from skysolve.errors import InvalidParameterError
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


class ServiceError(Exception):
    """A request that cannot be honoured; the message is shown to the client."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotFound(ServiceError):
    """No such thing, or one the viewer may not see; ``kind``/``object_id`` name a looked-up id."""

    def __init__(self, message: str, *, kind: str = "", object_id: int | None = None) -> None:
        super().__init__(message, status=404)
        self.kind = kind
        self.object_id = object_id


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a user, an anonymous API session, or nobody."""

    user: User | None = None
    session_key: str = ""

    @property
    def is_staff(self) -> bool:
        return self.user is not None and self.user.is_staff

    @property
    def owner_key(self) -> str:
        if self.user is not None:
            return f"user:{self.user.pk}"
        return f"anon:{self.session_key}"

    @classmethod
    def of_session(cls, session: ApiSession) -> Viewer:
        return cls(user=session.user, session_key=session.key)


# -- API keys and sessions ---------------------------------------------------


def create_api_key(username: str, *, email: str = "", label: str = "") -> ApiKey:
    """Create the user when missing and give them a new API key."""
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        if created:
            user.set_unusable_password()
            user.save()
        Profile.for_user(user)
        return ApiKey.create_for(user, label=label)


def login(apikey: str) -> ApiSession:
    """Exchange an API key for a session (any key, anonymously, when allowed)."""
    key = ApiKey.objects.select_related("user").filter(key=apikey).first()
    if key is not None and key.user.is_active:
        ApiKey.objects.filter(pk=key.pk).update(last_used=timezone.now())
        return ApiSession.start(key.user, key)
    if settings.SKYSOLVE_ALLOW_ANY_APIKEY:
        return ApiSession.start(None)
    raise ServiceError("bad apikey")


def session_display_name(session: ApiSession) -> str:
    if session.user is None:
        return "anonymous"
    return session.user.email or session.user.username


def find_session(key: str) -> ApiSession | None:
    session = ApiSession.objects.select_related("user").filter(key=key).first()
    if session is None or session.is_expired:
        return None
    if session.user is not None and not session.user.is_active:
        return None
    return session


# -- submitting --------------------------------------------------------------


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


# -- reading -----------------------------------------------------------------


def owns(viewer: Viewer, submission: Submission) -> bool:
    return _owns(viewer, submission.user_id, submission.anonymous_session)  # type: ignore[attr-defined]


def _owns(viewer: Viewer, user_id: int | None, anonymous_session: str) -> bool:
    if user_id is not None:
        return viewer.user is not None and viewer.user.pk == user_id
    return bool(viewer.session_key) and viewer.session_key == anonymous_session


def may_read(viewer: Viewer, submission: Submission, *, public: bool, pages: bool = False) -> bool:
    """Whether ``viewer`` may read a submission (or one of its images, ``public`` or not).

    With ``pages`` (the web site's pages of it, the logs they show, and the
    original upload) a private one is its owner's and the staff's alone.  Without it (the
    API's job status and calibration, the result files nova serves by job id)
    nova lets whoever holds an id read it, which clients without a session
    (KStars) need; SKYSOLVE_PRIVATE_RESULTS=strict keeps those private too.
    """
    return _may_read(
        viewer,
        submission.user_id,  # type: ignore[attr-defined]
        submission.anonymous_session,
        public=public,
        pages=pages,
    )


def _may_read(
    viewer: Viewer,
    user_id: int | None,
    anonymous_session: str,
    *,
    public: bool,
    pages: bool = False,
) -> bool:
    if public or (not pages and settings.SKYSOLVE_PRIVATE_RESULTS != "strict"):
        return True
    return viewer.is_staff or _owns(viewer, user_id, anonymous_session)


#: Columns no reader of a submission's or job's status needs: the input star
#: lists (tens of KB of JSON each, decoded on every poll otherwise), the request
#: as sent and the engine log.  Reading one of them later costs its own query.
_INPUT_COLUMNS = ("star_list", "request_json")


def get_submission(submission_id: int, viewer: Viewer, *, pages: bool = False) -> Submission:
    """The submission if ``viewer`` may read it (``pages``: as :func:`may_read`), else NotFound."""
    submission = (
        Submission.objects.defer(*_INPUT_COLUMNS).filter(pk=_valid_id(submission_id)).first()
    )
    public = submission is not None and submission.is_public
    if submission is None or not may_read(viewer, submission, public=public, pages=pages):
        raise NotFound(
            f"no submission with id {submission_id}", kind="submission", object_id=submission_id
        )
    return submission


def get_job(job_id: int, viewer: Viewer, *, pages: bool = False) -> Job:
    """The job if ``viewer`` may read it (``pages``: as :func:`may_read`), else NotFound."""
    unread = ["log", "user_image__star_list"]
    unread += [f"user_image__submission__{name}" for name in _INPUT_COLUMNS]
    job = (
        Job.objects.select_related("user_image__submission")
        .defer(*unread)
        .filter(pk=_valid_id(job_id))
        .first()
    )
    public = job is not None and job.user_image.is_public
    if job is None or not may_read(viewer, job.submission, public=public, pages=pages):
        raise NotFound(f"no job with id {job_id}", kind="job", object_id=job_id)
    return job


class _PreparedQuery:
    """A query by one id of the default database, its SQL compiled once per thread.

    Clients poll the status URLs every second; building and compiling the
    ORM query cost more CPU than PostgreSQL spends answering it.  The
    queryset is compiled with a placeholder id, and each call only binds the
    id, runs the SQL and applies the fields' converters, as the ORM does.
    """

    _PLACEHOLDER = -1_234_567_890  # an id no row has; it marks the parameter to bind

    def __init__(self, build: Callable[[int], QuerySet[Any]]) -> None:
        self._build = build
        self._local = threading.local()

    def rows(self, value: int) -> list[tuple[Any, ...]]:
        compiled = getattr(self._local, "compiled", None)
        if compiled is None:
            compiled = self._local.compiled = self._compile()
        compiler, sql, params, index = compiled
        params = list(params)
        params[index] = value
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        return list(compiler.results_iter(results=[fetched], tuple_expected=True))

    def _compile(self) -> tuple[Any, str, tuple[Any, ...], int]:
        # The compiler belongs to this thread's connection (it holds the
        # converters), hence one per thread.
        compiler = self._build(self._PLACEHOLDER).query.get_compiler(using=DEFAULT_DB_ALIAS)
        sql, params = compiler.as_sql()
        if list(params).count(self._PLACEHOLDER) != 1:
            raise AssertionError(f"the id must be the query's one bound value: {sql}")
        return compiler, sql, tuple(params), list(params).index(self._PLACEHOLDER)


#: Who may read a job: its image's visibility and its submission's owner.
_JOB_PRIVACY = (
    "user_image__publicly_visible",
    "user_image__submission__user_id",
    "user_image__submission__anonymous_session",
)


def _job_query(fields: tuple[str, ...]) -> _PreparedQuery:
    def build(job_id: int) -> QuerySet[Any]:
        return Job.objects.filter(pk=job_id).values_list(*_JOB_PRIVACY, "last_polled", *fields)

    return _PreparedQuery(build)


#: What the status URLs read of a job (fields of Job, or of its image).
JOB_STATUS = ("id", "status", "stage")
#: The input's format comes out of the stored result by a JSON path, not by
#: decoding the whole result: nova's orientation depends on it.
JOB_CALIBRATION = ("id", "status", "stage", *CALIBRATION_FIELDS, "result__image_format")
JOB_INFO = (*JOB_CALIBRATION, "result", "user_image_id", "user_image__original_filename")
_JOB_QUERIES = {fields: _job_query(fields) for fields in (JOB_STATUS, JOB_CALIBRATION, JOB_INFO)}


def read_job(job_id: int, viewer: Viewer, fields: tuple[str, ...]) -> dict[str, Any]:
    """:func:`get_job` for the status URLs: one query, only ``fields`` (one of the JOB_*)."""
    rows = _JOB_QUERIES[fields].rows(_valid_id(job_id))
    if not rows:
        raise NotFound(f"no job with id {job_id}", kind="job", object_id=job_id)
    visible, user_id, anonymous_session, last_polled, *values = rows[0]
    if not _may_read(viewer, user_id, anonymous_session, public=visible == "y"):
        raise NotFound(f"no job with id {job_id}", kind="job", object_id=job_id)
    note_poll(Job, job_id, last_polled)
    return dict(zip(fields, values, strict=True))


def note_poll(model: type[Job] | type[Submission], pk: int, last_polled: datetime | None) -> None:
    """Remember that a client asked, for SKYSOLVE_ABANDON_SECONDS; off: nothing.

    The status query already read ``last_polled``, so a poll writes only when
    the stored time is older than a quarter of the limit: one UPDATE per job
    every few seconds at most, however often a client polls.
    """
    limit = settings.SKYSOLVE_ABANDON_SECONDS
    if not limit:
        return
    now = timezone.now()
    if last_polled is None or (now - last_polled).total_seconds() > limit / 4:
        model.objects.filter(pk=pk).update(last_polled=now)


def job_of_values(values: dict[str, Any]) -> Job:
    """A Job holding only the Job fields of :func:`read_job`'s answer (for its methods)."""
    # from_db takes the values in the model's field order.
    names = [f.attname for f in Job._meta.concrete_fields if f.attname in values]
    return Job.from_db(DEFAULT_DB_ALIAS, names, [values[name] for name in names])


def nova_calibration(values: dict[str, Any]) -> dict[str, float] | None:
    """:meth:`Job.nova_calibration` of :func:`read_job`'s JOB_CALIBRATION (or JOB_INFO) answer."""
    data = job_of_values(values).calibration_dict()
    if data is not None:
        data["orientation"] = nova_orientation(data["orientation"], values["result__image_format"])
    return data


def brightest(annotations: list[dict[str, Any]], nbright: int) -> list[dict[str, Any]]:
    """``annotations`` with only the ``nbright`` brightest named stars (all when 0).

    nova's ``?nbright=N`` (plotann's option): the bright-star entries are kept
    brightest first and cut at N; the other kinds are untouched.
    """
    if nbright <= 0:
        return annotations
    stars = [a for a in annotations if a.get("type") == "bright"]
    others = [a for a in annotations if a.get("type") != "bright"]
    stars.sort(key=lambda a: math.inf if a.get("vmag") is None else float(a["vmag"]))
    return others + stars[:nbright]


def _latest_job(column: str) -> Subquery:
    latest = Job.objects.filter(user_image=OuterRef("user_images__id"))
    return Subquery(latest.order_by("-queued_at", "-id").values(column)[:1])


def _submission_status_query(submission_id: int) -> QuerySet[Any]:
    return (
        Submission.objects.filter(pk=submission_id)
        .annotate(
            job_id=_latest_job("id"), job_status=_latest_job("status"), job_ra=_latest_job("ra")
        )
        .order_by("user_images__created", "user_images__id")
        .values_list(
            "user_id",
            "anonymous_session",
            "publicly_visible",
            "processing_started",
            "processing_finished",
            "error_message",
            "last_polled",
            "user_images__id",
            "job_id",
            "job_status",
            "job_ra",
        )
    )


_SUBMISSION_STATUS = _PreparedQuery(_submission_status_query)


@dataclass(frozen=True)
class SubmissionStatus:
    user_id: int | None
    processing_started: datetime | None
    processing_finished: datetime | None
    error_message: str
    #: The submission's images, oldest first, and the latest job of each.
    user_images: list[int]
    jobs: list[int | None]
    #: Jobs (of ``jobs``) that succeeded with a calibration.
    calibrated: list[int]


def submission_status(submission_id: int, viewer: Viewer) -> SubmissionStatus:
    """What /api/submissions/N shows, in one query (privacy as :func:`get_submission`)."""
    rows = _SUBMISSION_STATUS.rows(_valid_id(submission_id))
    if not rows:
        raise NotFound(
            f"no submission with id {submission_id}", kind="submission", object_id=submission_id
        )
    user_id, anonymous_session, visible, started, finished, error, last_polled = rows[0][:7]
    if not _may_read(viewer, user_id, anonymous_session, public=visible == "y"):
        raise NotFound(
            f"no submission with id {submission_id}", kind="submission", object_id=submission_id
        )
    note_poll(Submission, submission_id, last_polled)
    images = [row for row in rows if row[7] is not None]  # none: a left join found no image
    return SubmissionStatus(
        user_id=user_id,
        processing_started=started,
        processing_finished=finished,
        error_message=error,
        user_images=[row[7] for row in images],
        jobs=[row[8] for row in images],
        calibrated=[row[8] for row in images if row[9] == Job.SUCCESS and row[10] is not None],
    )


_TAG_TEXTS = _PreparedQuery(
    lambda user_image_id: (
        TaggedUserImage.objects.filter(user_image_id=user_image_id)
        .order_by("id")
        .values_list("machine", "tag__text")
    )
)


def tag_texts(user_image_id: int) -> tuple[list[str], list[str]]:
    """An image's (tags, machine tags) in the order they were added.

    The first is every tag, machine tags included, once each: nova's ``tags``.
    """
    every: dict[str, None] = {}
    machine: list[str] = []
    for is_machine, text in _TAG_TEXTS.rows(user_image_id):
        every[text] = None
        if is_machine:
            machine.append(text)
    return list(every), machine


def _valid_id(value: int) -> int:
    # Ids beyond a 32-bit integer would make PostgreSQL raise instead of find nothing.
    return value if 0 < value < 2**31 else 0


def jobs_of(viewer: Viewer) -> list[int]:
    """The viewer's own jobs, newest first (private ones included: they are theirs).

    Every job carries its submitter as ``owner_key`` ("user:<id>" or
    "anon:<session>", set when it is made), so one index holds a submitter's
    jobs in this order and the list is read from it alone.
    """
    return list(_own_jobs(viewer).values_list("id", flat=True))


def jobs_of_json(viewer: Viewer) -> str:
    """:func:`jobs_of` as the text of a JSON array (see :func:`_ids_json`)."""
    return _ids_json(_own_jobs(viewer))


def _own_jobs(viewer: Viewer) -> QuerySet[Job]:
    return Job.objects.filter(owner_key=viewer.owner_key).order_by("-queued_at", "-id")


def public_jobs_by_tag(query: str, *, exact: bool) -> list[int]:
    """Ids of public jobs whose image has a (user or machine) tag matching ``query``,
    newest first."""
    rows = _public_tagged_jobs(query, exact=exact).order_by("-queued_at", "-job_id")
    return list(rows.values_list("job_id", flat=True))


def public_jobs_by_tag_json(query: str, *, exact: bool) -> str:
    """:func:`public_jobs_by_tag` as the text of a JSON array (see :func:`_ids_json`)."""
    return _ids_json(_public_tagged_jobs(query, exact=exact), "job_id")


def _public_tagged_jobs(query: str, *, exact: bool) -> QuerySet[TaggedJob, dict[str, Any]]:
    tags = (
        Tag.objects.filter(text__iexact=query)
        if exact
        else Tag.objects.filter(text__icontains=query)
    )
    # TaggedJob keeps each tagged job with its visibility and order (see
    # tagcounts), so a tag's public jobs are one range of one index, already
    # in order: no image, submission or job is read, nothing is sorted.
    tag_ids = list(tags.values_list("id", flat=True)[:2])
    rows = TaggedJob.objects.filter(public=True)
    if len(tag_ids) < 2:
        return rows.filter(tag_id__in=tag_ids).values("job_id", "queued_at")
    # Several tags match: a job under two of them is listed once.
    return rows.filter(tag__in=tags).values("job_id", "queued_at").distinct()


def _ids_json(rows: QuerySet[Any], id_field: str = "id") -> str:
    """The ids of ``rows`` newest first (by ``queued_at``, then id) as the text of a JSON array.

    Exactly what ``json.dumps`` writes for the list of ids.  On PostgreSQL the
    database writes it (``array_to_string`` over the index-only scan), so a list of
    hundreds of thousands of ids is never turned into Python objects and back;
    elsewhere the ids are read and written here.
    """
    ordered = rows.order_by("-queued_at", f"-{id_field}")
    if connection.vendor != "postgresql":
        return json.dumps(list(ordered.values_list(id_field, flat=True)))
    try:
        sql, params = ordered.values(id_field, "queued_at").query.sql_with_params()
    except EmptyResultSet:  # nothing can match (no tag matched): no query at all
        return "[]"
    with connection.cursor() as cursor:
        # ARRAY(ordered subquery) keeps the order without the sort an ordered
        # aggregate does (PostgreSQL 15 sorts again: twice the time here).
        cursor.execute(
            "SELECT array_to_string(ARRAY(SELECT ids.id FROM"
            f" ({sql}) AS ids (id, queued_at) ORDER BY ids.queued_at DESC, ids.id DESC), ', ')",
            params,
        )
        row = cursor.fetchone()
    return f"[{row[0] or ''}]"


def submission_image_ids(submission: Submission) -> list[int]:
    return list(submission.user_images.order_by("created", "id").values_list("id", flat=True))


def add_machine_tags(user_image: UserImage, names: Sequence[str]) -> None:
    for name in names:
        tag, _ = Tag.objects.get_or_create(text=name[:200])
        TaggedUserImage.objects.get_or_create(user_image=user_image, tag=tag, machine=True)


def cancel_job(job: Job, viewer: Viewer) -> None:
    if not (viewer.is_staff or owns(viewer, job.submission)):
        raise ServiceError("only the owner of a job can cancel it", status=403)
    if job.is_finished:
        raise ServiceError(f"job {job.id} has already finished ({job.status})")
    request_cancel(job.id)


def request_cancel(job_id: int) -> None:
    """Cancel a queued job at once; ask the worker running it to stop."""
    now = timezone.now()
    cancelled = Job.objects.filter(id=job_id, status=Job.QUEUED).update(
        status=Job.CANCELLED,
        cancel_requested=True,
        finished_at=now,
        error_code="cancelled",
        error_message="cancelled by its owner",
    )
    if cancelled:
        job = Job.objects.select_related("user_image__submission").get(id=job_id)
        job.submission.update_processing_times()
    else:
        # Running: the worker's heartbeat sees the flag and stops the solve.
        Job.objects.filter(id=job_id, status=Job.RUNNING).update(cancel_requested=True)


def retry_job(job_id: int) -> bool:
    """Queue a failed or cancelled job again under its id; False if it is not finished so."""
    now = timezone.now()
    changed = Job.objects.filter(id=job_id, status__in=(Job.FAILURE, Job.CANCELLED)).update(
        status=Job.QUEUED,
        stage="",
        queued_at=now,
        started_at=None,
        finished_at=None,
        attempts=0,
        worker_id="",
        lease_expires=None,
        cancel_requested=False,
        error_code="",
        error_message="",
    )
    if not changed:
        return False
    # jobs_by_tag lists the job in its new place.
    TaggedJob.objects.filter(job_id=job_id).update(queued_at=now)
    # processing_finished stays: the job exists, which is all it says (as on nova).
    announce_queued([job_id])
    return True
