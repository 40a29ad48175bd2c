"""Log lines name the job and its submission, so one grep follows a request."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from tests.api.helpers import session_for, solve_all, submit_xy
from tests.jobs import job_of
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_names_job_and_submission(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="skysolve.queue")
    subid = submit_xy(client, session_for("alice"))
    job_id = job_of(subid).id
    solve_all(FakeSolver(solved=False))
    named = [
        r.getMessage()
        for r in caplog.records
        if f"job {job_id} (submission {subid})" in r.getMessage()
    ]
    assert any(m.endswith("queued") for m in named)
    assert any("started by" in m for m in named)
    assert any("failure (no_match" in m for m in named)
