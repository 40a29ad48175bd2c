"""A claimed job's input: what to solve and with which parameters, from one function."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from skysolve.engine.results import SourceList
from skysolve.errors import BadInputError, InvalidParameterError
from skysolve.submissions.models import Job, Submission
from skysolve.submissions.preparation import prepare
from tests.api.helpers import session_for, solve_all, submit_xy
from tests.jobs import job_of
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def test_it_gives_a_star_list_and_the_stored_parameters(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_LEARNED_HINTS = False
    subid = submit_xy(
        client, session_for("alice"), scale_lower=1, scale_upper=2, scale_units="arcsecperpix"
    )
    prepared = prepare(job_of(subid), worker_id="w")
    assert isinstance(prepared.source, SourceList)
    assert list(prepared.source.x) == [10.0, 20.5, 30.0]
    assert (prepared.source.width, prepared.source.height) == (100, 80)
    assert (prepared.params.scale_lower, prepared.params.scale_upper) == (1.0, 2.0)
    assert prepared.params.learned_hints == () and not prepared.expanded
    # Every job of a star-list submission exists: it is processed.
    assert Submission.objects.get(pk=subid).processing_finished is not None


def test_it_adds_the_learned_hints_of_the_owner(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_LEARNED_HINTS = True
    alice = session_for("alice")
    size = {"image_width": 400, "image_height": 300}
    submit_xy(client, alice, **size)
    solve_all(FakeSolver())
    waiting = job_of(submit_xy(client, alice, **size))
    hints = prepare(waiting, worker_id="w").params.learned_hints
    assert len(hints) == 1 and hints[0].scale_lower < 1.0907 < hints[0].scale_upper


def test_it_refuses_stored_parameters_that_are_no_longer_valid(client: Client) -> None:
    job = job_of(submit_xy(client, session_for("alice")))
    Submission.objects.filter(pk=job.submission.pk).update(parameters={"parity": 7})
    job = Job.objects.get(pk=job.pk)
    with pytest.raises(InvalidParameterError, match="parity"):
        prepare(job, worker_id="w")


def test_it_says_when_the_upload_is_gone(client: Client) -> None:
    job = job_of(submit_xy(client, session_for("alice")))
    Submission.objects.filter(pk=job.submission.pk).update(source=Submission.SOURCE_UPLOAD)
    job = Job.objects.get(pk=job.pk)
    with pytest.raises(BadInputError, match="uploaded file is missing"):
        prepare(job, worker_id="w")


def test_a_request_cannot_send_file_hints(client: Client) -> None:
    hints = {"center_ra": 10.0, "center_dec": 20.0, "sources": ["RA/DEC keywords"]}
    subid = submit_xy(client, session_for("alice"), file_hints=hints)
    assert "file_hints" not in Submission.objects.get(pk=subid).parameters
    assert prepare(job_of(subid), worker_id="w").params.file_hints is None
