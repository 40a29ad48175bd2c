"""Lists of job ids: a viewer's own jobs and the public jobs under a tag, newest first."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet

from skysolve.community.models import Tag, TaggedJob
from skysolve.submissions.access import Viewer
from skysolve.submissions.models import Job, Submission


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
