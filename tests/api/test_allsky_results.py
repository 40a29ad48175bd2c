"""A real all-sky frame through a live `skysolve serve` and the real engine: the nova
calibration at the centre, the lens model served at /lens_file/N, the web page's link."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from skysolve.engine.solving.fastpath.database import default_db_path
from tests.liveserver import LiveServer, start_server
from tests.waiting import finished_job

pytestmark = pytest.mark.skipif(
    not default_db_path().is_file(), reason="the fast-path database is not built"
)


@pytest.fixture
def real_server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from start_server(
        tmp_path, None, env={"SKYSOLVE_ALLSKY_PROFILES": str(tmp_path / "profiles")}
    )


def _json(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.slow
def test_it_answers_an_all_sky_frame_with_a_lens_model(
    real_server: LiveServer, shared_images: Path
) -> None:
    url = real_server.url
    session = _json(
        requests.post(
            url + "/api/login", data={"request-json": json.dumps({"apikey": real_server.apikey})}
        )
    )["session"]
    frame = shared_images / "corpus" / "asc_magic_2101.fits"
    with frame.open("rb") as f:
        subid = _json(
            requests.post(
                url + "/api/upload",
                data={"request-json": json.dumps({"session": session})},
                files={"file": (frame.name, f, "application/fits")},
            )
        )["subid"]
    job_id, status = finished_job(lambda path: _json(requests.get(url + path)), subid)
    assert status == "success"

    calibration = _json(requests.get(f"{url}/api/jobs/{job_id}/calibration"))
    # MAGIC's camera on La Palma (28.76 N) looks up: the frame's centre is near
    # the zenith, so its declination is near the site's latitude.
    assert abs(calibration["dec"] - 28.76) < 5.0
    assert 300.0 < calibration["pixscale"] < 1000.0  # arcsec per pixel at the centre
    lens = requests.get(f"{url}/lens_file/{job_id}")
    assert lens.status_code == 200
    assert lens.headers["Content-Type"] == "application/json"
    doc = lens.json()
    assert doc["lens_model"]["projection"] in ("equidistant", "equisolid", "stereographic")
    assert doc["matched_stars"] >= 100 and doc["rms_px_within_70_deg"] < 1.0
    assert abs(doc["site"]["latitude"] - 28.76) < 2.0
    objects = _json(requests.get(f"{url}/api/jobs/{job_id}/objects_in_field"))["objects_in_field"]
    # The summer triangle overhead; Canopus, far below La Palma's horizon, not named.
    named = " ".join(objects)
    assert "Vega" in named and "Altair" in named and "Deneb" in named
    assert "Canopus" not in named
    # The frame's header time puts the Moon (its glare is in the frame) and Jupiter on it.
    assert "The Moon" in objects and "The planet Jupiter" in objects
    assert not any("Carina" in o or "Crux" in o for o in objects)  # below the horizon
