"""NINA's text star list, request for request: a ``# X Y`` list of the brightest stars
uploaded as ``upload.xy`` with a scale hint in arcsecperpix and no image size.

nova takes the size of such a list from the sources' extent; so does skysolve.  One
test replays the upload with the fake solver and checks what reaches the solver; the
other solves a synthetic field's 50 and 200 brightest stars with the real engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SourceList
from skysolve.submissions.models import Job
from testfields.synthetic import FieldSpec, make_field
from tests.api.helpers import solve_all
from tests.webfixtures import FakeSolver

pytestmark = pytest.mark.django_db

WIDTH, HEIGHT, PIXSCALE = 800, 600, 30.0


def nina_text_list(x: np.ndarray, y: np.ndarray) -> bytes:
    """What NINA writes: a ``# X Y`` header line, then one ``x y`` pair a line."""
    lines = ["# X Y", *(f"{a:.2f} {b:.2f}" for a, b in zip(x, y, strict=True))]
    return ("\n".join(lines) + "\n").encode()


def nina_login(client: Client) -> str:
    from skysolve.submissions.services import create_api_key

    key = create_api_key("nina-user").key
    answer = json.loads(
        client.post("/api/login", {"request-json": json.dumps({"apikey": key})}).content
    )
    assert answer["status"] == "success", answer
    return str(answer["session"])


def nina_upload(client: Client, session: str, data: bytes, *, pixscale: float) -> int:
    """POST /api/upload as NINA does: request-json and the list as file ``upload.xy``."""
    request_json = {
        "session": session,
        "publicly_visible": "n",
        "allow_commercial_use": "n",
        "allow_modifications": "n",
        "scale_units": "arcsecperpix",
        "scale_type": "ul",
        "scale_lower": round(pixscale * 0.9, 3),
        "scale_upper": round(pixscale * 1.1, 3),
    }
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        "/api/upload",
        {
            "request-json": json.dumps(request_json),
            "file": SimpleUploadedFile("upload.xy", data, "application/octet-stream"),
        },
    )
    answer = json.loads(response.content)
    assert answer["status"] == "success", answer
    return int(answer["subid"])


def nina_poll(client: Client, subid: int) -> tuple[int, dict[str, Any]]:
    """The calls NINA makes after the upload: submission, job, calibration."""
    submission = json.loads(client.get(f"/api/submissions/{subid}").content)
    job_id = submission["jobs"][0]
    assert json.loads(client.get(f"/api/jobs/{job_id}").content)["status"] in (
        "success",
        "failure",
    )
    return job_id, json.loads(client.get(f"/api/jobs/{job_id}/calibration").content)


def brightest(field_sources: SourceList, n: int) -> tuple[np.ndarray, np.ndarray]:
    stars = field_sources.sorted_by_flux().head(n)
    return np.asarray(stars.x), np.asarray(stars.y)


def test_it_takes_the_size_of_a_text_list_from_its_stars(
    client: Client, fake_solver: FakeSolver
) -> None:
    x = np.array([12.5, 640.25, 301.0, 88.0, 799.5])
    y = np.array([7.0, 33.5, 590.75, 412.0, 250.0])
    subid = nina_upload(client, nina_login(client), nina_text_list(x, y), pixscale=PIXSCALE)
    solve_all(fake_solver)
    job_id, calibration = nina_poll(client, subid)
    assert "ra" in calibration
    (source, params), *_ = fake_solver.calls
    # The solver gets the stored list and the hint; no size was given and none invented.
    assert isinstance(source, Path)
    assert source.read_bytes() == nina_text_list(x, y)
    assert (params.image_width, params.image_height) == (None, None)
    assert params == SolveParameters.from_mapping(
        {"scale_units": "arcsecperpix", "scale_type": "ul", "scale_lower": 27, "scale_upper": 33}
    )
    assert Job.objects.get(pk=job_id).user_image.original_filename == "upload.xy"


@pytest.mark.slow
@pytest.mark.parametrize("count", [50, 200])
def test_it_solves_ninas_brightest_stars_with_the_real_engine(client: Client, count: int) -> None:
    from skysolve.engine.pipeline import solve

    field = make_field(
        FieldSpec(ra=84.0, dec=-5.0, pixscale=PIXSCALE, width=WIDTH, height=HEIGHT, seed=7),
        render=False,
    )
    x, y = brightest(field.sources, count)
    subid = nina_upload(client, nina_login(client), nina_text_list(x, y), pixscale=PIXSCALE)
    solve_all(solve)
    job_id, calibration = nina_poll(client, subid)
    assert "error" not in calibration, Job.objects.get(pk=job_id).log[-2000:]
    truth = field.truth
    assert calibration["pixscale"] == pytest.approx(truth.pixscale, rel=0.01)
    assert calibration["dec"] == pytest.approx(truth.dec, abs=0.1)
    assert calibration["ra"] == pytest.approx(truth.ra, abs=0.1)
    # A star list is not JPEG-like: nova reports the wcsinfo angle itself.
    assert calibration["orientation"] == pytest.approx(truth.orientation, abs=0.5)
    # The size came from the stars' extent: no larger than the field plus a margin.
    result = Job.objects.get(pk=job_id).result
    assert np.ceil(x.max()) <= result["image_width"] <= WIDTH + 20
    assert np.ceil(y.max()) <= result["image_height"] <= HEIGHT + 20


def test_it_takes_the_size_of_an_xy_list_from_its_stars(client: Client) -> None:
    """x/y in request-json without image_width/image_height: the stars' extent, as nova."""
    from skysolve.submissions.models import Submission

    session = nina_login(client)
    payload = {"session": session, "x": [3.0, 640.2, 17.0], "y": [590.5, 2.0, 44.0]}
    answer = json.loads(
        client.post("/api/url_upload", {"request-json": json.dumps(payload)}).content
    )
    assert answer["status"] == "success", answer
    star_list = Submission.objects.get(pk=answer["subid"]).star_list
    assert (star_list["image_width"], star_list["image_height"]) == (641, 591)
