"""What the status URLs read: one query per poll for a job, a submission or an image's tags.

Clients poll every second, so each reader is one ``values_list`` query by
id with the privacy columns, and notes the poll for SKYSOLVE_ABANDON_SECONDS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import OuterRef, QuerySet, Subquery

from skysolve.engine.results import CALIBRATION_FIELDS, nova_orientation
from skysolve.errors import NotFound
from skysolve.submissions.access import Viewer, may_read_ids, valid_id
from skysolve.submissions.models import (
    Job,
    Submission,
    TaggedUserImage,
)
from skysolve.submissions.transitions import note_poll


class _QueryById:
    """A ``values_list`` query by one id: its rows, as tuples, in one query.

    It used to compile its SQL once per thread and apply the fields'
    converters through the ORM's compiler internals (``results_iter``), which
    a Django upgrade may change; the ORM's own path costs some CPU per status
    poll but only public API, with the same one query.
    """

    def __init__(self, build: Callable[[int], QuerySet[Any]]) -> None:
        self._build = build

    def rows(self, value: int) -> list[tuple[Any, ...]]:
        return list(self._build(value))


#: Who may read a job: its image's visibility and its submission's owner.
_JOB_PRIVACY = (
    "user_image__publicly_visible",
    "user_image__submission__user_id",
    "user_image__submission__anonymous_session",
)


def _job_query(fields: tuple[str, ...]) -> _QueryById:
    def build(job_id: int) -> QuerySet[Any]:
        return Job.objects.filter(pk=job_id).values_list(*_JOB_PRIVACY, "last_polled", *fields)

    return _QueryById(build)


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


_SUBMISSION_STATUS = _QueryById(_submission_status_query)


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
