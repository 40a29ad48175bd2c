"""The status readers' rows are exactly what the ORM's ``values_list`` gives.

They run precompiled SQL through a cursor and convert the typed columns
themselves (datetimes, booleans, JSON); this compares every reader with the
ORM's own answer for a solved, polled, tagged submission, on SQLite and (with
DATABASE_URL) on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from skysolve.community.models import TaggedUserImage
from skysolve.submissions import status
from skysolve.submissions.models import Job, Submission
from tests.front.helpers import make_user, solve, submit

pytestmark = pytest.mark.django_db


def orm_rows(query: status._QueryById, value: int) -> list[tuple[object, ...]]:
    return list(query._build(value).values_list(*query._columns))


def test_it_reads_what_the_orm_reads() -> None:
    owner = make_user("alice")
    submission = submit(owner, public=False)
    job = solve(submission, objects=["Whirlpool Galaxy", "NGC 5195"])
    polled = timezone.now() - timedelta(minutes=3)
    result = {**(job.result or {}), "image_format": "fits"}
    Job.objects.filter(pk=job.pk).update(last_polled=polled, result=result)
    Submission.objects.filter(pk=submission.pk).update(last_polled=polled)
    TaggedUserImage.objects.filter(user_image=job.user_image).update(machine=False)
    TaggedUserImage.objects.filter(user_image=job.user_image, tag__text="NGC 5195").update(
        machine=True
    )
    queries = [
        (status._SUBMISSION_STATUS, submission.pk),
        (status._TAG_TEXTS, job.user_image.pk),
        *((query, job.pk) for query in status._JOB_QUERIES.values()),
    ]
    for query, value in queries:
        rows = query.rows(value)
        assert rows, query._columns
        assert rows == orm_rows(query, value), query._columns
        assert [tuple(map(type, row)) for row in rows] == [
            tuple(map(type, row)) for row in orm_rows(query, value)
        ]
    info = dict(zip(status._JOB_PRIVACY + ("last_polled",) + status.JOB_INFO, rows[0], strict=True))
    assert info["last_polled"] == polled
    assert info["result__image_format"] == "fits"
    assert info["result"]["objects_in_field"] == ["Whirlpool Galaxy", "NGC 5195"]
    assert status.tag_texts(job.user_image.pk) == (["Whirlpool Galaxy", "NGC 5195"], ["NGC 5195"])


def test_it_reads_nothing_for_an_unknown_id() -> None:
    for query in (status._SUBMISSION_STATUS, status._TAG_TEXTS, *status._JOB_QUERIES.values()):
        assert query.rows(2**31 - 2) == []
