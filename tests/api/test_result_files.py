"""Result-file URLs as nova serves them: download names, HEAD, and a self-contained KMZ."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from django.test import Client

from skysolve.engine.products.kml import KML_NS, write_kml
from skysolve.submissions.models import Job
from tests.api.helpers import session_for, solve_all, submit_xy
from tests.jobs import job_of
from tests.webfixtures import FakeSolver, fake_wcs

pytestmark = pytest.mark.django_db


def _solved(client: Client, fake_solver: FakeSolver) -> Job:
    job = job_of(submit_xy(client, session_for("alice")))
    solve_all(fake_solver)
    job.refresh_from_db()
    return job


def _add_file(job: Job, key: str, name: str, data: bytes) -> Path:
    """Record one more result file beside the fake solver's."""
    wcs_path = Path(job.result["files"]["wcs"])
    path = wcs_path.parent / name
    path.write_bytes(data)
    files = {**job.result["files"], key: str(path)}
    Job.objects.filter(pk=job.pk).update(result={**job.result, "files": files})
    job.refresh_from_db()
    return path


@pytest.mark.parametrize(
    ("url", "key", "name"),
    [
        ("wcs_file", "wcs", "wcs.fits"),
        ("new_fits_file", "new_fits", "new-image.fits"),
        ("rdls_file", "rdls", "rdls.fits"),
        ("axy_file", "axy", "axy.fits"),
        ("corr_file", "corr", "corr.fits"),
        ("altaz_file", "altaz", "altaz.fits"),
    ],
)
def test_it_names_the_fits_downloads_as_nova(
    client: Client, fake_solver: FakeSolver, url: str, key: str, name: str
) -> None:
    job = _solved(client, fake_solver)
    if key not in job.result["files"]:
        _add_file(job, key, f"{key}.fits", b"SIMPLE  =                    T" + b" " * 2850)
    response = client.get(f"/{url}/{job.id}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fits"
    assert response["Content-Disposition"] == f"attachment; filename={name}"
    response.getvalue()


def test_it_shows_pictures_in_the_browser(client: Client, fake_solver: FakeSolver) -> None:
    job = _solved(client, fake_solver)
    response = client.get(f"/annotated_display/{job.id}")
    assert response["Content-Disposition"].startswith("inline")
    response.getvalue()


def test_it_answers_head_with_the_gets_headers_and_no_body(
    client: Client, fake_solver: FakeSolver
) -> None:
    job = _solved(client, fake_solver)
    for url in ("wcs_file", "new_fits_file", "annotated_full", "joblog"):
        get = client.get(f"/{url}/{job.id}")
        body = get.getvalue()
        head = client.head(f"/{url}/{job.id}/")
        assert head.status_code == 200
        assert head.content == b""
        assert int(head["Content-Length"]) == len(body) > 0
        for name in ("Content-Type", "Content-Disposition"):
            assert head.get(name) == get.get(name), name
    missing = client.head(f"/grid_full/{job.id}")
    assert missing.status_code == 404 and missing.content == b""
    assert client.head(f"/wcs_file/{job.id + 1}").status_code == 404
    # Only the file URLs take HEAD; the JSON URLs stay GET and POST as on nova.
    assert client.head(f"/api/jobs/{job.id}").status_code == 405


def test_it_serves_a_kmz_with_the_picture_inside(client: Client, fake_solver: FakeSolver) -> None:
    job = _solved(client, fake_solver)
    picture = Path(job.result["files"]["annotated_display"])
    kml = write_kml(
        fake_wcs(), 400, 300, image_name="annotated_display.jpg", out_path=picture.parent / "f.kml"
    )
    _add_file(job, "kml", kml.name, kml.read_bytes())
    response = client.get(f"/kml_file/{job.id}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.google-earth.kmz"
    assert response["Content-Disposition"] == "attachment; filename=image.kmz"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist()[0] == "doc.kml"
        assert archive.read(picture.name) == picture.read_bytes()
        root = ET.fromstring(archive.read("doc.kml"))
    href = root.find(f".//{{{KML_NS}}}Icon/{{{KML_NS}}}href")
    assert href is not None and href.text == picture.name
    head = client.head(f"/kml_file/{job.id}")
    assert int(head["Content-Length"]) == len(response.content) and head.content == b""


def test_it_says_when_there_is_no_picture_to_place(client: Client, fake_solver: FakeSolver) -> None:
    job = _solved(client, fake_solver)
    kml = write_kml(
        fake_wcs(),
        400,
        300,
        image_name="x.jpg",
        out_path=Path(job.result["files"]["wcs"]).parent / "f.kml",
    )
    _add_file(job, "kml", kml.name, kml.read_bytes())
    files = {k: v for k, v in job.result["files"].items() if k != "annotated_display"}
    Job.objects.filter(pk=job.pk).update(result={**job.result, "files": files})
    response = client.get(f"/kml_file/{job.id}")
    assert response.status_code == 404
    assert json.loads(response.content)["errormessage"] == (
        f"no picture to place on the sky for job {job.id}"
    )
