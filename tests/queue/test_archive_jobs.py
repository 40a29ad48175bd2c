"""A tar or zip submission: one job per image inside, fair, and expanded exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from skysolve.errors import CorruptFileError
from skysolve.queue.worker import Running, Worker
from skysolve.submissions.archives import archive_root
from skysolve.submissions.models import Job, Submission, UserImage
from tests.api.helpers import call, session_for, submit_xy
from tests.hardening.files import Entry, png_bytes, tar_bytes, zip_bytes
from tests.hardening.service import jobs_of, run_all, serving, submission_status, upload_ok
from tests.jobs import job_of
from tests.queuefixtures import Clock, worker
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db

NAMES = ["m42.png", "m31.png", "m45.png"]


def three_images() -> bytes:
    return zip_bytes([(name, png_bytes(seed=i)) for i, name in enumerate(NAMES)])


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the worker catches it, nothing is cleaned up."""


def test_it_makes_one_job_per_image_and_lists_them_all(client: Client) -> None:
    session = session_for("alice")
    subid = upload_ok(client, session, three_images(), "night.zip")
    assert len(jobs_of(subid)) == 1  # expanded by the worker, not in the request
    # Not processed until every image has its job (nova's processing_finished).
    assert submission_status(client, subid)["processing_finished"] == "None"
    solver = FakeSolver()
    assert run_all(worker(solver)) == 3
    jobs = jobs_of(subid)
    assert [j.user_image.original_filename for j in jobs] == NAMES
    assert [j.user_image.archive_member for j in jobs] == [0, 1, 2]
    assert all(j.status == Job.SUCCESS and j.ra is not None for j in jobs)
    # Each job solved its own image, read from a file skysolve named.
    solved = [Path(str(source)) for source, _ in solver.calls]
    assert [p.read_bytes() for p in solved] == [png_bytes(seed=i) for i in range(3)]
    assert all(p.name == f"{i:04d}.png" for i, p in enumerate(solved))
    status = submission_status(client, subid)
    assert status["jobs"] == [j.id for j in jobs]
    assert status["user_images"] == [j.user_image.id for j in jobs]
    assert status["job_calibrations"] == [[j.id, j.id] for j in jobs]
    assert "error_message" not in status
    assert status["processing_finished"] != "None"
    info = call(client, f"/api/jobs/{jobs[2].id}/info")
    assert info["original_filename"] == "m45.png" and info["status"] == "success"


def test_it_queues_the_images_of_an_archive_fairly(client: Client) -> None:
    alice, bob = session_for("alice"), session_for("bob")
    subid = upload_ok(client, alice, three_images(), "night.zip")
    bob_job = job_of(submit_xy(client, bob)).id
    w = worker(FakeSolver())
    order = []
    while (job := w.claim()) is not None:
        w.run_job(job)
        order.append(job.id)
        w.clock.advance(1)  # type: ignore[attr-defined]
    alice_jobs = [j.id for j in jobs_of(subid)]
    # The archive's other images wait behind bob's job, then go in archive order.
    assert order == [alice_jobs[0], bob_job, alice_jobs[1], alice_jobs[2]]
    alice_user = Submission.objects.get(pk=subid).user
    assert alice_user is not None
    assert {j.owner_key for j in jobs_of(subid)} == {f"user:{alice_user.pk}"}


def test_it_expands_an_archive_fetched_from_a_url(client: Client, settings: Any) -> None:
    body = tar_bytes([Entry(n, png_bytes(seed=i)) for i, n in enumerate(NAMES)], compression="xz")
    settings.SKYSOLVE_URL_FETCH_ALLOW = ["127.0.0.1/32"]
    with serving(body) as server_url:
        session = session_for("alice")
        url = f"{server_url}/n.tar.xz"
        answer = call(client, "/api/url_upload", {"session": session, "url": url})
        assert answer["status"] == "success", answer
        subid = int(answer["subid"])
        assert submission_status(client, subid)["processing_finished"] == "None"
        solver = FakeSolver()
        seen: list[dict[str, Any]] = []
        # Fetched and expanded: processed before the first image is solved.
        solver.hook = lambda cancel: seen.append(submission_status(client, subid))
        assert run_all(worker(solver)) == 3
    jobs = jobs_of(subid)
    assert seen[0]["processing_finished"] != "None"
    assert seen[0]["jobs"] == [j.id for j in jobs]
    assert [j.user_image.original_filename for j in jobs] == NAMES
    assert [j.status for j in jobs] == [Job.SUCCESS] * 3


class DiesWhileExpanding(Worker):
    """A worker killed in the middle of reading the archive (at its second member)."""

    archive_progress_interval = 0.0

    def _progress(self, running: Running, stage: str, message: str = "") -> None:
        if "archive member 2" in message:
            raise WorkerKilled
        super()._progress(running, stage, message)


def _archive_of(count: int) -> bytes:
    return tar_bytes([Entry(f"{i}.png", png_bytes(seed=i)) for i in range(count)])


def test_it_survives_a_worker_killed_during_the_expansion(client: Client) -> None:
    subid = upload_ok(client, session_for("alice"), _archive_of(4), "night.tar")
    clock = Clock()
    doomed = DiesWhileExpanding(solver=FakeSolver(), clock=clock, heartbeat_thread=False)
    with pytest.raises(WorkerKilled):
        doomed.run_once()
    [job] = jobs_of(subid)
    assert job.status == Job.RUNNING and job.user_image.archive_member is None
    # What a SIGKILL leaves behind: files of an expansion nobody committed.
    stray = archive_root(job.submission) / "0123abcd" / "0000.png"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(png_bytes())
    clock.advance(61)
    survivor = worker(FakeSolver(), clock)
    assert run_all(survivor) == 4
    jobs = jobs_of(subid)
    assert jobs[0].id == job.id and jobs[0].attempts == 2
    assert [j.user_image.original_filename for j in jobs] == [f"{i}.png" for i in range(4)]
    assert [j.status for j in jobs] == [Job.SUCCESS] * 4
    assert not stray.exists()
    assert len(list(archive_root(job.submission).rglob("*.png"))) == 4


def test_it_does_not_expand_twice_when_the_worker_dies_after_the_expansion(client: Client) -> None:
    subid = upload_ok(client, session_for("alice"), _archive_of(3), "night.tar")
    clock = Clock()
    solver = FakeSolver()

    def die(cancel: threading.Event | None) -> None:
        raise WorkerKilled

    solver.hook = die
    with pytest.raises(WorkerKilled):
        worker(solver, clock).run_once()
    assert UserImage.objects.filter(submission_id=subid).count() == 3
    solver.hook = None
    clock.advance(61)
    assert run_all(worker(solver, clock)) == 3
    jobs = jobs_of(subid)
    assert len(jobs) == 3 and UserImage.objects.filter(submission_id=subid).count() == 3
    assert [j.status for j in jobs] == [Job.SUCCESS] * 3
    assert [j.attempts for j in jobs] == [2, 1, 1]
    first_solves = [Path(str(source)).name for source, _ in solver.calls]
    assert first_solves == ["0000.png", "0000.png", "0001.png", "0002.png"]


def test_it_drops_its_expansion_when_the_job_was_taken_away_meanwhile(client: Client) -> None:
    subid = upload_ok(client, session_for("alice"), _archive_of(3), "night.tar")
    clock = Clock()
    slow = worker(FakeSolver(), clock)
    job = slow.claim()
    assert job is not None
    # While it reads the archive, its lease runs out and another worker requeues the job.
    original: Callable[..., Any] = slow._progress

    def progress(running: Running, stage: str, message: str = "") -> None:
        clock.advance(61)
        worker(FakeSolver(), clock).requeue_expired()
        original(running, stage, message)

    slow._progress = progress  # type: ignore[method-assign]
    slow.run_job(job)
    assert UserImage.objects.filter(submission_id=subid).count() == 1
    assert Job.objects.get(id=job.id).status == Job.QUEUED
    assert list(archive_root(job.submission).rglob("*.png")) == []
    assert run_all(worker(FakeSolver(), clock)) == 3
    assert [j.status for j in jobs_of(subid)] == [Job.SUCCESS] * 3


def test_it_reports_skipped_members_and_keeps_member_failures_on_their_jobs(
    client: Client,
) -> None:
    data = tar_bytes(
        [
            Entry("good.png", png_bytes()),
            Entry("../evil.png", png_bytes()),
            Entry("broken.png", png_bytes()[:40]),
        ]
    )
    subid = upload_ok(client, session_for("alice"), data, "mixed.tar")
    solver = FakeSolver()

    # The fake solver reads nothing: make the broken image fail as the engine would.
    def fail_on_broken(cancel: threading.Event | None) -> None:
        source = solver.calls[-1][0]
        solver.error = (
            CorruptFileError("cannot read the PNG file")
            if str(source).endswith("0001.png")
            else None
        )

    solver.hook = fail_on_broken
    run_all(worker(solver))
    good, broken = jobs_of(subid)
    assert (good.status, broken.status) == (Job.SUCCESS, Job.FAILURE)
    assert (
        broken.error_code == "corrupt_file" and broken.user_image.original_filename == "broken.png"
    )
    message = Submission.objects.get(pk=subid).error_message
    assert message == (
        "2 image(s) taken from the tar archive; 1 member(s) skipped: "
        "../evil.png: unsafe path (absolute or with '..')"
    )
    assert submission_status(client, subid)["error_message"] == message


def test_it_fails_an_archive_without_images_clearly(client: Client) -> None:
    data = zip_bytes([("notes.txt", b"seeing 2 arcsec\n"), ("../x.png", png_bytes())])
    subid = upload_ok(client, session_for("alice"), data, "empty.zip")
    solver = FakeSolver()
    run_all(worker(solver))
    [job] = jobs_of(subid)
    assert job.status == Job.FAILURE and job.error_code == "bad_input"
    assert job.error_message.startswith(
        "the zip archive holds no usable image: notes.txt: not an image"
    )
    assert solver.calls == []
    status = submission_status(client, subid)
    assert status["jobs"] == [job.id] and status["job_calibrations"] == []
    assert "../x.png: unsafe path" in status["error_message"]
    assert status["processing_finished"] != "None"


def test_it_files_the_images_of_an_archive_in_the_album(client: Client) -> None:
    subid = upload_ok(client, session_for("alice"), three_images(), "n.zip", album="Orion")
    run_all(worker(FakeSolver()))
    submission = Submission.objects.get(pk=subid)
    assert submission.album is not None
    assert submission.album.user_images.count() == 3
