"""A real JPEG through a live `skysolve serve` and the real engine: nova's orientation,
the KMZ as Google Earth fetches it, and HEAD through gunicorn."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from skysolve.engine.products.kml import KML_NS
from tests.liveserver import LiveServer, start_server
from tests.waiting import finished_job

# ../shared/images/README.md: solve-field's wcsinfo angle at the centre of apod4.jpg's
# field is 58.46 (65.47 at its CRPIX); skysolve measures at the centre.
APOD4_T = 58.46


@pytest.fixture
def real_server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from start_server(tmp_path, None)


def _json(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _solve(server: LiveServer, image: Path) -> int:
    session = _json(
        requests.post(
            server.url + "/api/login",
            data={"request-json": json.dumps({"apikey": server.apikey})},
        )
    )["session"]
    with image.open("rb") as f:
        subid = _json(
            requests.post(
                server.url + "/api/upload",
                data={"request-json": json.dumps({"session": session})},
                files={"file": (image.name, f, "image/jpeg")},
            )
        )["subid"]
    job_id, status = finished_job(lambda path: _json(requests.get(server.url + path)), subid)
    assert status == "success"
    return job_id


def _angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.slow
def test_it_answers_a_real_jpeg_as_nova(real_server: LiveServer, shared_images: Path) -> None:
    job_id = _solve(real_server, shared_images / "apod4.jpg")
    url = real_server.url

    calibration = _json(requests.get(f"{url}/api/jobs/{job_id}/calibration"))
    # nova's rule for JPEG inputs: (180 - t) mod 360, about 121.5 here.
    assert _angle_diff(calibration["orientation"], 180.0 - APOD4_T) < 0.5
    info = _json(requests.get(f"{url}/api/jobs/{job_id}/info"))
    assert info["calibration"]["orientation"] == calibration["orientation"]
    # The final fit: hundreds of stars of the 33-degree field, a wide lens's distortion
    # (the fast path answers it now, and its refit takes its own 250-300 brightest).
    quality = info["quality"]
    assert quality["matched_stars"] > 200 and quality["rms_px"] < 0.5
    assert quality["sip_order"] >= 3
    # The pictures follow the answer: the file URL waits for them.
    assert requests.get(f"{url}/residuals_display/{job_id}").content[:4] == b"\x89PNG"
    page = requests.get(f"{url}/results/{job_id}").text
    assert "How good the fit is" in page and f"/residuals_display/{job_id}" in page
    assert set(info["machine_tags"]) <= set(info["tags"])
    bright = _json(requests.get(f"{url}/api/jobs/{job_id}/annotations?nbright=3"))
    assert len([a for a in bright["annotations"] if a["type"] == "bright"]) == 3

    kmz = requests.get(f"{url}/kml_file/{job_id}")
    assert kmz.status_code == 200
    assert kmz.headers["Content-Disposition"] == "attachment; filename=image.kmz"
    with zipfile.ZipFile(io.BytesIO(kmz.content)) as archive:
        names = archive.namelist()
        root = ET.fromstring(archive.read("doc.kml"))
        href = root.find(f".//{{{KML_NS}}}Icon/{{{KML_NS}}}href")
        assert href is not None and href.text in names
        assert archive.read(href.text)[:2] == b"\xff\xd8"  # the JPEG picture itself

    for path in ("new_fits_file", "wcs_file", "kml_file", "annotated_display"):
        get = requests.get(f"{url}/{path}/{job_id}")
        head = requests.head(f"{url}/{path}/{job_id}")
        assert head.status_code == get.status_code == 200
        assert head.content == b""
        assert int(head.headers["Content-Length"]) == len(get.content)
        assert head.headers.get("Content-Disposition") == get.headers.get("Content-Disposition")
    assert (
        requests.get(f"{url}/new_fits_file/{job_id}").headers["Content-Disposition"]
        == "attachment; filename=new-image.fits"
    )
