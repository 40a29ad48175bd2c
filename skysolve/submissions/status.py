"""What the status URLs read: one query per poll for a job, a submission or an image's tags.

Clients poll every second, so each reader is one ``values_list`` query by
id with the privacy columns, and notes the poll for SKYSOLVE_ABANDON_SECONDS.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from skysolve.community.models import TaggedUserImage
from skysolve.engine.results import CALIBRATION_FIELDS, nova_orientation
from skysolve.errors import NotFound
from skysolve.submissions.access import Viewer, may_read_ids, valid_id
from skysolve.submissions.models import Job, Submission
from skysolve.submissions.transitions import note_poll

#: Columns the status readers convert as the ORM would (the others come as they are).
_DATETIMES = {"last_polled", "processing_started", "processing_finished"}
_BOOLEANS = {"machine"}
_JSON = {"result", "result__image_format"}


def _datetime(value: Any) -> datetime | None:
    # SQLite gives text or a naive datetime (in UTC), PostgreSQL an aware one.
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    if settings.USE_TZ and value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return cast(datetime | None, value)


def _boolean(value: Any) -> Any:
    return bool(value) if value in (0, 1) else value  # SQLite's 0 and 1


def _json(value: Any) -> Any:
    # As JSONField reads it: both backends give the text (a JSON path on
    # SQLite gives a string value unquoted, which stays as it is).
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _converter(column: str) -> Callable[[Any], Any] | None:
    if column in _DATETIMES:
        return _datetime
    if column in _BOOLEANS:
        return _boolean
    if column in _JSON:
        return _json
    return None


class _QueryById:
    """A ``values_list`` query by one id, its SQL built once, run through a cursor.

    Clients poll the status URLs every second; building and compiling the
    ORM query cost several times the CPU PostgreSQL spends answering it.  The
    query is compiled once with a placeholder id (``Query.sql_with_params``),
    each call binds the id, runs the SQL through a cursor and converts the
    few columns that need it (:data:`_DATETIMES`, :data:`_BOOLEANS`,
    :data:`_JSON`) as the ORM would: no compiler internals.
    """

    _PLACEHOLDER = -1_234_567_890  # an id no row has; it marks the parameter to bind

    def __init__(self, build: Callable[[int], QuerySet[Any]], columns: tuple[str, ...]) -> None:
        self._build = build
        self._columns = columns
        self._converters = [(i, c) for i, name in enumerate(columns) if (c := _converter(name))]
        self._compiled: tuple[str, tuple[Any, ...], int] | None = None

    def rows(self, value: int) -> list[tuple[Any, ...]]:
        if self._compiled is None:
            self._compiled = self._compile()
        sql, params, index = self._compiled
        bound = list(params)
        bound[index] = value
        with connection.cursor() as cursor:
            cursor.execute(sql, bound)
            fetched = cursor.fetchall()
        if not self._converters:
            return [tuple(row) for row in fetched]
        out = []
        for row in fetched:
            values = list(row)
            for i, convert in self._converters:
                values[i] = convert(values[i])
            out.append(tuple(values))
        return out

    def _compile(self) -> tuple[str, tuple[Any, ...], int]:
        query = self._build(self._PLACEHOLDER).values_list(*self._columns).query
        sql, params = query.sql_with_params()
        if list(params).count(self._PLACEHOLDER) != 1:
            raise AssertionError(f"the id must be the query's one bound value: {sql}")
        return sql, tuple(params), list(params).index(self._PLACEHOLDER)


#: Who may read a job: its image's visibility and its submission's owner.
_JOB_PRIVACY = (
    "user_image__publicly_visible",
    "user_image__submission__user_id",
    "user_image__submission__anonymous_session",
)


def _job_query(fields: tuple[str, ...]) -> _QueryById:
    return _QueryById(
        lambda job_id: Job.objects.filter(pk=job_id), (*_JOB_PRIVACY, "last_polled", *fields)
    )


#: What the status URLs read of a job (fields of Job, or of its image).
JOB_STATUS = ("id", "status", "stage")
#: The input's format comes out of the stored result by a JSON path, not by
#: decoding the whole result: nova's orientation depends on it.
JOB_CALIBRATION = ("id", "status", "stage", *CALIBRATION_FIELDS, "result__image_format")
JOB_INFO = (*JOB_CALIBRATION, "result", "user_image_id", "user_image__original_filename")
_JOB_QUERIES = {fields: _job_query(fields) for fields in (JOB_STATUS, JOB_CALIBRATION, JOB_INFO)}


def read_job(job_id: int, viewer: Viewer, fields: tuple[str, ...]) -> dict[str, Any]:
    """:func:`get_job` for the status URLs: one query, only ``fields`` (one of the JOB_*)."""
    rows = _JOB_QUERIES[fields].rows(valid_id(job_id))
    if not rows:
        raise NotFound(f"no job with id {job_id}", kind="job", object_id=job_id)
    visible, user_id, anonymous_session, last_polled, *values = rows[0]
    if not may_read_ids(viewer, user_id, anonymous_session, public=visible == "y"):
        raise NotFound(f"no job with id {job_id}", kind="job", object_id=job_id)
    note_poll(Job, job_id, last_polled)
    return dict(zip(fields, values, strict=True))


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
    )


_SUBMISSION_STATUS = _QueryById(
    _submission_status_query,
    (
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
    ),
)


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
    rows = _SUBMISSION_STATUS.rows(valid_id(submission_id))
    if not rows:
        raise NotFound(
            f"no submission with id {submission_id}", kind="submission", object_id=submission_id
        )
    user_id, anonymous_session, visible, started, finished, error, last_polled = rows[0][:7]
    if not may_read_ids(viewer, user_id, anonymous_session, public=visible == "y"):
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


_TAG_TEXTS = _QueryById(
    lambda image_id: TaggedUserImage.objects.filter(user_image_id=image_id).order_by("id"),
    ("machine", "tag__text"),
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
