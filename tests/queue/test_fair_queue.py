"""The fair queue's waiting submitters: any number of them, found without scanning the queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from skysolve.queue import waiting
from skysolve.queue.models import ServedOwner
from skysolve.submissions.models import Job, Submission, UserImage
from skysolve.submissions.services import retry_job
from tests.api.helpers import session_for, submit_xy
from tests.jobs import job_of
from tests.queuefixtures import worker
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def queue_of_many(owners: int, start: int = 1) -> list[int]:
    """One queued job each for ``owners`` anonymous submitters, oldest first (bulk: no signals)."""
    base = timezone.now() - timedelta(hours=1)
    ids = range(start, start + owners)
    Submission.objects.bulk_create(
        [Submission(id=i, source="xy", anonymous_session=f"s{i}") for i in ids]
    )
    UserImage.objects.bulk_create([UserImage(id=i, submission_id=i) for i in ids])
    Job.objects.bulk_create(
        [
            Job(
                id=i, user_image_id=i, owner_key=f"anon:s{i}", queued_at=base + timedelta(seconds=i)
            )
            for i in ids
        ]
    )
    return list(ids)


def test_it_serves_a_new_submitter_behind_a_thousand_others(client: Client) -> None:
    # A thousand submitters wait, each served a moment ago; the 1,001st arrives last.
    queue_of_many(1000)
    assert waiting.resync() == 1000
    ServedOwner.objects.update(last_served=timezone.now())
    newcomer = job_of(submit_xy(client, session_for("newcomer"))).id
    claimed = worker(FakeSolver()).claim()
    assert claimed is not None and claimed.id == newcomer


def test_a_claim_reads_the_same_rows_however_long_the_queue(client: Client) -> None:
    queue_of_many(3)
    w = worker(FakeSolver())
    assert w.claim() is not None  # the worker's first claim marks every submitter
    with CaptureQueriesContext(connection) as short:
        assert w.claim() is not None
    queue_of_many(500, start=100)
    waiting.resync()
    with CaptureQueriesContext(connection) as long:
        assert w.claim() is not None
    assert len(short.captured_queries) == len(long.captured_queries) == 5


def test_a_submitter_stops_waiting_when_served_and_waits_again_on_retry(client: Client) -> None:
    session = session_for("alice")
    job_id = job_of(submit_xy(client, session)).id
    owner = Job.objects.get(id=job_id).owner_key
    assert ServedOwner.objects.get(owner_key=owner).waiting
    w = worker(FakeSolver())
    assert w.run_once()
    assert w.claim() is None
    assert not ServedOwner.objects.get(owner_key=owner).waiting
    Job.objects.filter(id=job_id).update(status=Job.FAILURE)
    assert retry_job(job_id)
    assert ServedOwner.objects.get(owner_key=owner).waiting
    claimed = w.claim()
    assert claimed is not None and claimed.id == job_id


def test_jobs_queued_behind_its_back_are_found(client: Client) -> None:
    # Rows written without signals (by hand, by an old version) are found by the resync.
    [job_id] = queue_of_many(1)
    claimed = worker(FakeSolver()).claim()
    assert claimed is not None and claimed.id == job_id
