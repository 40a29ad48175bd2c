"""/staff/indexes (the index files, staff only) and the no_index advice on a results page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from skysolve.submissions.models import Job
from tests.front.helpers import fail, make_user, solve, submit

pytestmark = pytest.mark.django_db

DEBIAN = "/usr/share/astrometry"


@pytest.fixture
def staff_client(monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv("SKYSOLVE_INDEX_DIRS", DEBIAN)
    client = Client()
    client.force_login(make_user("charlie", staff=True))
    return client


def solved_with(index: str, width_deg: float) -> Job:
    job = solve(submit(make_user(f"u{width_deg}".replace(".", "_"))))
    calibration = {"width_arcsec": width_deg * 3600, "height_arcsec": 1.0}
    job.result = {**job.result, "index": index, "calibration": calibration}
    job.save()
    return job


def test_it_lists_installed_files_with_the_jobs_they_solved(staff_client: Client) -> None:
    solved_with("index-tycho2-10.littleendian.fits", 8.0)
    solved_with("index-tycho2-10.littleendian.fits", 6.0)
    body = staff_client.get("/staff/indexes").content.decode()
    assert "index-tycho2-10.littleendian.fits</td><td>4100</td><td>10</td>" in body
    assert "<td>whole sky</td><td>20.5</td><td>2</td>" in body  # 20.5 MB, 2 jobs
    assert "13 files" in body
    assert "cover fields of about 22&#x27; to 180 deg" in body
    # Recent jobs of 6-8 degrees need scales 9-16 (36'-480'), all in Debian's 4100.
    assert "For fields of 6–8°" in body and "Everything recommended is installed" in body


def test_it_recommends_for_a_field_width_with_the_configured_mirror(
    staff_client: Client, settings: Any
) -> None:
    settings.SKYSOLVE_INDEX_MIRRORS = "5200=http://10.0.0.9/5200/"
    body = staff_client.get("/staff/indexes", {"fov_deg": "0.2"}).content.decode()
    assert (
        "skysolve index fetch --series 5200 --scales 0,1,2,3,4,5 --mirror http://10.0.0.9/5200/"
        in body
    )
    assert "<td>required</td><td>5200</td><td>1</td>" in body
    bad = staff_client.get("/staff/indexes", {"fov_deg": "lots"}).content.decode()
    assert "must be a number of degrees" in bad


def test_it_is_for_staff_only() -> None:
    client = Client()
    assert client.get("/staff/indexes")["Location"].startswith("/admin/login")
    client.force_login(make_user("bob"))
    assert client.get("/staff/indexes")["Location"].startswith("/admin/login")


def test_it_shows_the_command_that_fixes_a_no_index_failure() -> None:
    command = "skysolve index fetch --series 5200 --scales 0,1,2,3 --ra 157.6 --dec 0.3 --radius 1"
    job = fail(
        submit(make_user("alice")),
        "no installed index file can match a field 10.7' to 13.3' wide: ... "
        f"Install index files for it with: {command}",
    )
    job.error_code = "no_index"
    job.save()
    body = Client().get(f"/results/{job.id}").content.decode()
    assert f'<pre class="command" id="index-fix">{command}</pre>' in body
    assert "a field 10.7&#x27; to 13.3&#x27; wide" in body
