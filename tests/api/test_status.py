from __future__ import annotations

import json

import pytest
from astropy.io import fits
from django.test import Client

from skysolve.submissions.models import Submission
from tests.api.helpers import call, session_for, solve_all, submit_xy
from tests.hardening.files import png_bytes
from tests.hardening.service import upload_ok
from tests.jobs import job_of
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def test_it_reports_a_submission_processed_once_its_job_exists(client: Client) -> None:
    # nova sets processing_finished when the jobs exist, before any solve;
    # KStars gives up on a submission whose processing_finished stays "None".
    subid = submit_xy(client, session_for("alice"))
    data = json.loads(client.get(f"/api/submissions/{subid}").content)
    assert data["processing_started"] != "None"
    assert data["processing_finished"] != "None"
    assert data["jobs"] == [job_of(subid).id]
    assert data["job_calibrations"] == []
    assert json.loads(client.get(f"/api/jobs/{job_of(subid).id}").content) == {
        "status": "processing"
    }


def test_it_reports_a_solved_submission(client: Client, fake_solver: FakeSolver) -> None:
    subid = submit_xy(client, session_for("alice"))
    solve_all(fake_solver)
    job = job_of(subid)
    for method in (client.get, client.post):
        for suffix in ("", "/"):
            response = method(f"/api/submissions/{subid}{suffix}")
            assert response.status_code == 200
            assert response["Content-Type"] == "text/plain"
            data = json.loads(response.content)
            assert data["jobs"] == [job.id]
            assert data["job_calibrations"] == [[job.id, job.id]]
            assert data["processing_finished"] != "None"
            owner = Submission.objects.get(pk=subid).user
            assert owner is not None and data["user"] == owner.pk
    assert json.loads(client.post(f"/api/jobs/{job.id}/").content) == {"status": "success"}
    cal = json.loads(client.get(f"/api/jobs/{job.id}/calibration").content)
    assert set(cal) == {
        "ra", "dec", "radius", "pixscale", "orientation", "parity", "width_arcsec", "height_arcsec"
    }  # fmt: skip
    assert cal["pixscale"] == pytest.approx(1.0907)
    info = json.loads(client.get(f"/api/jobs/{job.id}/info").content)
    assert info["status"] == "success"
    assert info["objects_in_field"] == ["M 66", "NGC 3628"]
    assert info["machine_tags"] == ["M 66", "NGC 3628"]
    assert set(info["calibration"]) == {"ra", "dec", "radius", "pixscale", "orientation", "parity"}
    # nova's /tags lists every tag of the image, the machine tags included.
    assert json.loads(client.get(f"/api/jobs/{job.id}/tags").content) == {
        "tags": ["M 66", "NGC 3628"]
    }
    assert json.loads(client.get(f"/api/jobs/{job.id}/machine_tags/").content) == {
        "tags": ["M 66", "NGC 3628"]
    }
    assert json.loads(client.get(f"/api/jobs/{job.id}/objects_in_field").content) == {
        "objects_in_field": ["M 66", "NGC 3628"]
    }
    ann = json.loads(client.get(f"/api/jobs/{job.id}/annotations").content)["annotations"]
    assert ann[0]["names"] == ["NGC 3628"] and ann[0]["radius"] == 35.0


def content_type(client: Client, path: str, *, post: bool = False) -> str:
    response = client.post(path) if post else client.get(path)
    # Reading to the end lets the test client close the file (and only the file).
    response.getvalue()
    return str(response["Content-Type"])


def test_it_serves_result_files(client: Client, fake_solver: FakeSolver) -> None:
    subid = submit_xy(client, session_for("alice"))
    solve_all(fake_solver)
    job = job_of(subid)
    response = client.get(f"/wcs_file/{job.id}")
    assert response["Content-Type"] == "application/fits"
    header = fits.Header.fromstring(response.getvalue().decode("ascii"))
    assert header["CTYPE1"] == "RA---TAN"
    assert content_type(client, f"/new_fits_file/{job.id}/", post=True) == "application/fits"
    assert content_type(client, f"/annotated_display/{job.id}") == "image/png"
    assert content_type(client, f"/annotated_full/{job.id}") == "image/jpeg"
    assert content_type(client, f"/red_green_image_display/{job.id}") == "image/png"
    assert content_type(client, f"/joblog/{job.id}").startswith("text/plain")
    missing = client.get(f"/grid_full/{job.id}")
    assert missing.status_code == 404
    assert json.loads(missing.content)["status"] == "error"


def test_it_reports_a_failed_job(client: Client) -> None:
    subid = submit_xy(client, session_for("alice"))
    solve_all(FakeSolver(solved=False))
    job = job_of(subid)
    assert json.loads(client.get(f"/api/jobs/{job.id}").content) == {"status": "failure"}
    # nova answers a job without a calibration with HTTP 200 and its own "error" shape.
    for path in (f"/api/jobs/{job.id}/calibration", f"/api/jobs/{job.id}/annotations/"):
        response = client.get(path)
        assert response.status_code == 200
        assert json.loads(response.content) == {
            "error": f"no calibration data available for job {job.id}"
        }
    assert "calibration" not in json.loads(client.get(f"/api/jobs/{job.id}/info").content)


def test_it_answers_before_the_calibration_exists_as_nova(client: Client) -> None:
    job = job_of(submit_xy(client, session_for("alice")))
    for path in ("calibration", "annotations"):
        response = client.post(f"/api/jobs/{job.id}/{path}")
        assert response.status_code == 200
        assert json.loads(response.content) == {
            "error": f"no calibration data available for job {job.id}"
        }


@pytest.mark.parametrize(
    "path",
    ["/api/submissions/123", "/api/jobs/123", "/api/jobs/123/info", "/wcs_file/123",
     "/api/jobs/99999999999", "/joblog/123/"],
)  # fmt: skip
def test_it_answers_unknown_ids_with_a_json_404(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert json.loads(response.content)["status"] == "error"


def test_it_lists_my_jobs_only(client: Client) -> None:
    alice, bob = session_for("alice"), session_for("bob")
    mine = job_of(submit_xy(client, alice, publicly_visible="n")).id
    job_of(submit_xy(client, bob))
    assert call(client, "/api/myjobs", {"session": alice}) == {"status": "success", "jobs": [mine]}


def test_it_finds_public_jobs_by_tag(client: Client, fake_solver: FakeSolver) -> None:
    alice = session_for("alice")
    public = job_of(submit_xy(client, alice)).id
    job_of(submit_xy(client, alice, publicly_visible="n"))
    solve_all(fake_solver)
    assert json.loads(client.get("/api/jobs_by_tag?query=ngc").content) == {"job_ids": [public]}
    exact = json.loads(client.get("/api/jobs_by_tag/?query=ngc&exact=yes").content)
    assert exact == {"job_ids": []}
    exact = json.loads(client.get("/api/jobs_by_tag?query=m 66&exact=yes").content)
    assert exact == {"job_ids": [public]}


def test_it_lists_submission_images(client: Client) -> None:
    alice = session_for("alice")
    subid = submit_xy(client, alice)
    data = call(client, "/api/submission_images", {"session": alice, "subid": subid})
    assert data["status"] == "success"
    assert data["image_ids"] == [job_of(subid).user_image.id]


def test_it_reports_an_uploaded_image_processed_before_it_is_solved(client: Client) -> None:
    subid = upload_ok(client, session_for("alice"), png_bytes(seed=1), "m42.png")
    data = json.loads(client.get(f"/api/submissions/{subid}").content)
    assert data["processing_finished"] != "None"
    assert json.loads(client.get(f"/api/jobs/{data['jobs'][0]}").content) == {
        "status": "processing"
    }
