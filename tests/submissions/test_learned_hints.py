"""Which earlier solve gives a job its learned hints, and when none does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from skysolve.submissions.learned_hints import learned_hints_for
from skysolve.submissions.models import Job
from tests.api.helpers import call, job_of, session_for, solve_all, submit_xy
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db

# FakeSolver solves every image as 400x300 at 1.0907"/px, centred at (169.966, 13.221).
SIZE = {"image_width": 400, "image_height": 300}


def submit_batch(client: Client, session: str) -> dict:
    """Two star lists in one submission."""
    lists = {"x": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "y": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}
    data: dict = call(client, "/api/url_upload", {"session": session, **lists, **SIZE})
    assert data["status"] == "success", data
    return data


def solved_job(client: Client, session: str) -> Job:
    job = job_of(submit_xy(client, session, **SIZE))
    solve_all(FakeSolver())
    job.refresh_from_db()
    assert job.status == Job.SUCCESS
    return job


def test_it_offers_the_owners_latest_solve_of_the_same_size(client: Client) -> None:
    alice = session_for("alice")
    older = solved_job(client, alice)
    latest = solved_job(client, alice)
    Job.objects.filter(pk=older.pk).update(finished_at=timezone.now() - timedelta(hours=2))
    waiting = job_of(submit_xy(client, alice, **SIZE))
    hints = learned_hints_for(waiting)
    assert len(hints) == 1  # one per image size: the latest
    hint = hints[0]
    assert hint.source == f"earlier solve of job {latest.pk}"
    assert (hint.image_width, hint.image_height) == (400, 300)
    assert hint.scale_lower < 1.0907 < hint.scale_upper
    assert hint.scale_upper / hint.scale_lower < 1.5
    assert hint.center_ra == pytest.approx(169.966) and hint.center_dec == pytest.approx(13.221)


def test_it_prefers_a_solved_image_of_the_same_submission(client: Client) -> None:
    alice = session_for("alice")
    solved_job(client, alice)  # another submission, solved later than the sibling below
    data = submit_batch(client, alice)
    first, second = Job.objects.filter(user_image__submission_id=data["subid"]).order_by("pk")
    Job.objects.filter(pk=first.pk).update(
        status=Job.SUCCESS,
        pixscale=2.0,
        ra=10.0,
        dec=20.0,
        result=dict(SIZE),
        finished_at=timezone.now() - timedelta(hours=1),
    )
    hints = learned_hints_for(second)
    assert hints[0].source == f"earlier solve of job {first.pk}"
    assert hints[0].scale_lower < 2.0 < hints[0].scale_upper


def test_it_offers_nothing_for_another_size(client: Client) -> None:
    alice = session_for("alice")
    solved_job(client, alice)
    waiting = job_of(submit_xy(client, alice, image_width=800, image_height=600))
    assert learned_hints_for(waiting) == ()


def test_it_offers_nothing_from_another_owner(client: Client) -> None:
    solved_job(client, session_for("alice"))
    waiting = job_of(submit_xy(client, session_for("bob"), **SIZE))
    assert learned_hints_for(waiting) == ()


def test_it_offers_nothing_from_another_night(client: Client) -> None:
    alice = session_for("alice")
    old = solved_job(client, alice)
    Job.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(hours=13))
    waiting = job_of(submit_xy(client, alice, **SIZE))
    assert learned_hints_for(waiting) == ()
    assert learned_hints_for(waiting, window=timedelta(hours=14)) != ()


@pytest.mark.parametrize(
    "given",
    [
        {"scale_units": "arcsecperpix", "scale_lower": 1.0, "scale_upper": 1.2},
        {"center_ra": 170.0, "center_dec": 13.0, "radius": 2.0},
        {"use_hints": False},
    ],
)
def test_it_offers_nothing_when_the_user_gave_hints(client: Client, given: dict) -> None:
    alice = session_for("alice")
    solved_job(client, alice)
    waiting = job_of(submit_xy(client, alice, **SIZE, **given))
    assert learned_hints_for(waiting) == ()


def test_the_worker_gives_the_second_image_of_a_batch_the_first_ones_answer(
    client: Client, settings: object
) -> None:
    alice = session_for("alice")
    data = submit_batch(client, alice)
    solver = FakeSolver()
    solve_all(solver)
    first, second = Job.objects.filter(user_image__submission_id=data["subid"]).order_by(
        "finished_at"
    )
    (_, first_params), (_, second_params) = solver.calls
    assert first_params.learned_hints == ()
    hint = second_params.learned_hints[0]
    assert hint.source == f"earlier solve of job {first.pk}"
    assert hint.scale_lower < 1.0907 < hint.scale_upper
    assert (hint.center_ra, hint.center_dec) == (pytest.approx(169.966), pytest.approx(13.221))
    # The stored result says where the hint came from.
    assert second.result["hints"]["learned"]["source"] == f"earlier solve of job {first.pk}"
    assert "hints" not in first.result or not first.result["hints"]


def test_the_worker_learns_nothing_when_switched_off(client: Client, settings: object) -> None:
    settings.SKYSOLVE_LEARNED_HINTS = False  # type: ignore[attr-defined]
    alice = session_for("alice")
    solved_job(client, alice)
    submit_xy(client, alice, **SIZE)
    solver = FakeSolver()
    solve_all(solver)
    assert [params.learned_hints for _, params in solver.calls] == [()]


def test_a_request_cannot_bring_its_own_learned_hints(client: Client) -> None:
    forged = [{"source": "me", "scale_lower": 1, "scale_upper": 2, **SIZE}]
    job = job_of(submit_xy(client, session_for("alice"), learned_hints=forged, **SIZE))
    assert "learned_hints" not in job.submission.parameters
