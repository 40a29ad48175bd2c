"""Hostile archives through the service (issues #4 and #5): API or web upload, the real
worker step, and what the submission and its jobs say afterwards.

Unsafe entries are named with a token of their own, so the tests can look for any file
they might have produced anywhere (the test's directory and the system's temporary one).
"""

from __future__ import annotations

import secrets
import tarfile
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from skysolve.submissions.archives import archive_root
from skysolve.submissions.models import Job, Submission, UserImage
from tests.api.helpers import session_for
from tests.front.helpers import form, make_user
from tests.hardening.files import (
    Entry,
    fits_bytes,
    jpeg_bytes,
    png_bytes,
    tar_bomb_gz,
    tar_bytes,
    zip_bomb,
    zip_bytes,
)
from tests.hardening.service import jobs_of, run_all, submission_status, upload_ok
from tests.queuefixtures import worker
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db

MEMORY_BOUND = 200 * 1024**2


@pytest.fixture
def token() -> str:
    return f"skysolve-escape-{secrets.token_hex(6)}"


def _written_anywhere(token: str, data_dir: Path) -> list[Path]:
    """Files whose name has ``token``: under the test's directory or the system's tmp."""
    found = [p for p in data_dir.parent.rglob(f"*{token}*")]
    system_tmp = Path(tempfile.gettempdir())
    found += list(system_tmp.glob(f"*{token}*")) + list(system_tmp.glob(f"*/*{token}*"))
    return found


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_it_skips_every_unsafe_entry_and_says_so(
    client: Client, data_dir: Path, token: str
) -> None:
    entries = [
        Entry(f"../{token}-up.png", png_bytes()),
        Entry(f"../../../{token}-far.png", png_bytes()),
        Entry(f"/tmp/{token}-abs.png", png_bytes()),
        Entry(f"{token}-sym.png", kind=tarfile.SYMTYPE, linkname="/etc/passwd"),
        Entry(f"{token}-hard.png", kind=tarfile.LNKTYPE, linkname="/etc/passwd"),
        Entry(f"{token}-dev", kind=tarfile.CHRTYPE),
        Entry(f"{token}-fifo", kind=tarfile.FIFOTYPE),
        Entry("good.png", png_bytes()),
    ]
    subid = upload_ok(
        client, session_for("alice"), tar_bytes(entries, compression="bz2"), "night.tar.bz2"
    )
    solver = FakeSolver()
    assert run_all(worker(solver)) == 1
    [job] = jobs_of(subid)
    assert job.status == Job.SUCCESS and job.user_image.original_filename == "good.png"
    message = submission_status(client, subid)["error_message"]
    assert message.startswith("1 image(s) taken from the tar.bz2 archive; 7 member(s) skipped: ")
    for reason in [
        f"../{token}-up.png: unsafe path",
        f"../../../{token}-far.png: unsafe path",
        f"/tmp/{token}-abs.png: unsafe path",
        f"{token}-sym.png: symbolic link (not followed)",
        f"{token}-hard.png: hard link (not followed)",
        f"{token}-dev: device file",
        f"{token}-fifo: FIFO",
    ]:
        assert reason in message
    assert _written_anywhere(token, data_dir) == []
    submission = Submission.objects.get(pk=subid)
    assert [p.name for p in _files(archive_root(submission))] == ["0000.png"]


def test_it_fails_an_archive_of_nothing_but_unsafe_entries(
    client: Client, data_dir: Path, token: str
) -> None:
    entries = [
        Entry(f"../{token}.png", png_bytes()),
        Entry(f"{token}-sym.png", kind=tarfile.SYMTYPE, linkname="../../etc/passwd"),
    ]
    subid = upload_ok(client, session_for("alice"), tar_bytes(entries), "evil.tar")
    solver = FakeSolver()
    run_all(worker(solver))
    [job] = jobs_of(subid)
    assert (job.status, job.error_code) == (Job.FAILURE, "bad_input")
    assert job.error_message.startswith("the tar archive holds no usable image: ")
    assert submission_status(client, subid)["error_message"] == job.error_message
    assert solver.calls == []
    assert _written_anywhere(token, data_dir) == []
    assert _files(archive_root(job.submission)) == []


def test_it_does_not_expand_nested_archives(client: Client, data_dir: Path) -> None:
    inner_tar = tar_bytes([Entry("deep.png", png_bytes())], compression="gz")
    inner_zip = zip_bytes([("deep.png", png_bytes())])
    data = zip_bytes([("a.tar.gz", inner_tar), ("b.zip", inner_zip), ("c.png", png_bytes())])
    subid = upload_ok(client, session_for("alice"), data, "nested.zip")
    run_all(worker(FakeSolver()))
    [job] = jobs_of(subid)
    assert job.status == Job.SUCCESS and job.user_image.original_filename == "c.png"
    message = Submission.objects.get(pk=subid).error_message
    assert "a.tar.gz: a tar.gz archive inside the archive (not expanded)" in message
    assert "b.zip: a zip archive inside the archive (not expanded)" in message


@pytest.mark.parametrize(
    ("name", "make"),
    [("bomb.zip", lambda: zip_bomb(40)), ("bomb.tar.gz", lambda: tar_bomb_gz(3 * 1024**3))],
)
def test_it_stops_archive_bombs_before_inflating_them(
    client: Client, data_dir: Path, name: str, make: Any
) -> None:
    data = make()
    assert len(data) < 5_000_000  # and more than 2 GB inside
    subid = upload_ok(client, session_for("alice"), data, name)
    tracemalloc.start()
    try:
        run_all(worker(FakeSolver()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [job] = jobs_of(subid)
    assert (job.status, job.error_code) == (Job.FAILURE, "too_large")
    assert "more than the limit of 2147483648 bytes (uncompressed)" in job.error_message
    assert peak < MEMORY_BOUND
    assert _files(archive_root(job.submission)) == []


def test_it_stops_at_the_configured_byte_cap_while_extracting(
    client: Client, settings: Any
) -> None:
    settings.SKYSOLVE_ARCHIVE_MAX_BYTES = 1_500_000
    members = [Entry(f"{i}.fits", fits_bytes(512, 512)) for i in range(3)]  # 1 MB each
    subid = upload_ok(client, session_for("alice"), tar_bytes(members), "big.tar")
    run_all(worker(FakeSolver()))
    [job] = jobs_of(subid)
    assert (job.status, job.error_code) == (Job.FAILURE, "too_large")
    assert "more than the limit of 1500000 bytes" in job.error_message
    assert _files(archive_root(job.submission)) == []


def test_it_caps_the_members_of_an_archive(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_ARCHIVE_MAX_MEMBERS = 3
    data = zip_bytes([(f"{i}.png", png_bytes(seed=i)) for i in range(4)])
    subid = upload_ok(client, session_for("alice"), data, "many.zip")
    run_all(worker(FakeSolver()))
    [job] = jobs_of(subid)
    assert (job.status, job.error_code) == (Job.FAILURE, "too_large")
    assert job.error_message == "the zip archive has more than the limit of 3 members"


def test_it_reports_a_zip_that_lies_about_its_sizes(client: Client) -> None:
    subid = upload_ok(client, session_for("alice"), zip_bomb(2, declared_size=1000), "liar.zip")
    run_all(worker(FakeSolver()))
    [job] = jobs_of(subid)
    assert (job.status, job.error_code) == (Job.FAILURE, "corrupt_file")
    assert "the zip archive is damaged or truncated" in job.error_message


def test_it_tells_archives_from_images_by_content(client: Client) -> None:
    session = session_for("alice")
    archive = upload_ok(client, session, zip_bytes([("a.png", png_bytes())]), "image.fits")
    image = upload_ok(client, session, png_bytes(), "images.zip")
    solver = FakeSolver()
    run_all(worker(solver))
    [from_archive] = jobs_of(archive)
    [plain] = jobs_of(image)
    assert from_archive.user_image.archive_member == 0
    assert plain.user_image.archive_member is None and plain.user_image.disk_file == ""
    assert {Path(str(source)).read_bytes() for source, _ in solver.calls} == {png_bytes()}


def test_it_solves_each_image_of_an_archive_with_the_real_engine(client: Client) -> None:
    """Damaged members fail on their own jobs; the submission still reads as the archive."""
    data = zip_bytes(
        [("cut.png", png_bytes(512, 512)[:2000]), ("cut.jpg", jpeg_bytes(512, 512)[:2000])]
    )
    subid = upload_ok(client, session_for("alice"), data, "damaged.zip")
    run_all(worker(None))  # the configured solver: the real engine
    jobs = jobs_of(subid)
    assert [(j.status, j.error_code) for j in jobs] == [(Job.FAILURE, "corrupt_file")] * 2
    assert "PNG" in jobs[0].error_message and "JPEG" in jobs[1].error_message
    status = submission_status(client, subid)
    assert status["jobs"] == [j.id for j in jobs]
    assert "error_message" not in status
    assert status["processing_finished"] != "None"


def test_it_expands_an_archive_sent_through_the_upload_form(client: Client) -> None:
    client.force_login(make_user("alice"))
    data = tar_bytes([Entry(f"{i}.png", png_bytes(seed=i)) for i in range(3)], compression="gz")
    response = client.post("/upload", form(images=SimpleUploadedFile("night.tar.gz", data)))
    assert response.status_code == 302, response.content[:2000]
    submission = Submission.objects.get()
    assert run_all(worker(FakeSolver())) == 3
    assert [j.status for j in jobs_of(submission.pk)] == [Job.SUCCESS] * 3
    page = client.get(f"/status/{submission.pk}").content.decode()
    for job in jobs_of(submission.pk):
        assert f'data-job="{job.id}"' in page
    assert UserImage.objects.filter(submission=submission).count() == 3


def test_it_checks_the_archive_caps_at_start_up(settings: Any) -> None:
    settings.SKYSOLVE_ARCHIVE_MAX_MEMBERS = 0
    assert "skysolve.E030" in [m.id for m in run_checks()]
    settings.SKYSOLVE_ARCHIVE_MAX_MEMBERS = 1000
    assert "skysolve.E030" not in [m.id for m in run_checks()]
