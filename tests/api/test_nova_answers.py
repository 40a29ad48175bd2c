"""Answers that follow nova's code where it differs from the obvious: orientation of
JPEG-like inputs and ``?nbright=N`` on /annotations."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from skysolve.submissions.models import Job
from tests.api.helpers import session_for, solve_all, submit_xy
from tests.jobs import job_of
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db


def _get(client: Client, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def _solved(client: Client, fake_solver: FakeSolver, **result: Any) -> Job:
    job = job_of(submit_xy(client, session_for("alice")))
    solve_all(fake_solver)
    job.refresh_from_db()
    Job.objects.filter(pk=job.pk).update(result={**job.result, **result}, orientation=58.5)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize(
    ("image_format", "reported"),
    [("jpeg", 121.5), ("png", 121.5), ("gif", 121.5), ("fits", 58.5), ("tiff", 58.5), (None, 58.5)],
)
def test_it_reports_novas_orientation(
    client: Client, fake_solver: FakeSolver, image_format: str | None, reported: float
) -> None:
    job = _solved(client, fake_solver, image_format=image_format)
    calibration = _get(client, f"/api/jobs/{job.id}/calibration")
    assert calibration["orientation"] == pytest.approx(reported)
    info = _get(client, f"/api/jobs/{job.id}/info")
    assert info["calibration"]["orientation"] == pytest.approx(reported)
    assert job.nova_calibration() == calibration


def test_it_keeps_the_orientation_of_results_without_a_format(
    client: Client, fake_solver: FakeSolver
) -> None:
    """Results stored before the format was recorded: the wcsinfo angle, as before."""
    job = _solved(client, fake_solver)
    result = dict(job.result)
    del result["image_format"]
    Job.objects.filter(pk=job.pk).update(result=result)
    assert _get(client, f"/api/jobs/{job.id}/calibration")["orientation"] == pytest.approx(58.5)


def _star(name: str, vmag: float) -> dict[str, Any]:
    return {"type": "bright", "names": [name], "pixelx": vmag, "pixely": 1.0, "radius": 0.0,
            "vmag": vmag}  # fmt: skip


STARS = [_star("Alioth", 1.8), _star("Mizar", 2.2), _star("Dubhe", 1.8), _star("Alcor", 4.0)]
GALAXY = {"type": "ngc", "names": ["NGC 3628"], "pixelx": 5.0, "pixely": 6.0, "radius": 35.0}


def test_it_keeps_the_nbright_brightest_stars(client: Client, fake_solver: FakeSolver) -> None:
    job = _solved(client, fake_solver, annotations=[GALAXY, *STARS])
    path = f"/api/jobs/{job.id}/annotations"
    assert _get(client, path)["annotations"] == [GALAXY, *STARS]
    assert _get(client, path + "?nbright=0")["annotations"] == [GALAXY, *STARS]
    two = _get(client, path + "?nbright=2")["annotations"]
    assert [a["names"] for a in two] == [["NGC 3628"], ["Alioth"], ["Dubhe"]]
    many = _get(client, path + "/?nbright=10")["annotations"]
    assert [a["names"][0] for a in many] == ["NGC 3628", "Alioth", "Dubhe", "Mizar", "Alcor"]


@pytest.mark.parametrize(
    ("value", "message"),
    [("two", '"nbright" must be a whole number'), ("-1", '"nbright" must not be negative')],
)
def test_it_refuses_a_bad_nbright(
    client: Client, fake_solver: FakeSolver, value: str, message: str
) -> None:
    job = _solved(client, fake_solver)
    data = _get(client, f"/api/jobs/{job.id}/annotations?nbright={value}")
    assert data["status"] == "error"
    assert data["errormessage"].startswith(message)


QUALITY = {"matched_stars": 212, "rms_px": 0.21, "rms_arcsec": 4.1, "sip_order": 3}


def test_it_adds_the_fit_quality_to_the_job_info(client: Client, fake_solver: FakeSolver) -> None:
    """skysolve's addition: nova's fields unchanged, ``quality`` beside them."""
    job = _solved(client, fake_solver, quality=QUALITY)
    info = _get(client, f"/api/jobs/{job.id}/info")
    assert info["quality"] == QUALITY
    assert set(info["calibration"]) == {"ra", "dec", "radius", "pixscale", "orientation", "parity"}
    # /calibration stays exactly nova's.
    assert "quality" not in _get(client, f"/api/jobs/{job.id}/calibration")
    Job.objects.filter(pk=job.pk).update(status=Job.FAILURE)
    assert "quality" not in _get(client, f"/api/jobs/{job.id}/info")
