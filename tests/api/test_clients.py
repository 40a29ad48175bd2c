"""Real clients against a live `skysolve serve`: the astrometry-net-client package, and
request-for-request replays of what NINA and KStars/Ekos (StellarSolver) send.

The fake solver (tests.webfixtures.fake_solve) keeps these light; one slow test runs
the KStars replay against the real engine with a synthetic star list.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from astropy.io import fits
from PIL import Image

from tests.liveserver import LiveServer, start_server
from tests.waiting import poll

FAKE_SOLVER = "tests.webfixtures.fake_solve"
# The fake solver's answer (tests.webfixtures.fake_wcs).
FAKE_RA, FAKE_DEC = 169.966, 13.221


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """`skysolve serve` with the fake solver."""
    yield from start_server(tmp_path, FAKE_SOLVER)


@pytest.fixture
def real_server(tmp_path: Path) -> Iterator[LiveServer]:
    """`skysolve serve` with the real engine."""
    yield from start_server(tmp_path, None)


def json_of(response: requests.Response) -> Any:
    """Every JSON answer is text/plain, as nova sends it and clients expect."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain"), response.headers
    return response.json()


def small_fits(path: Path) -> Path:
    rng = np.random.default_rng(1)
    data = rng.normal(100.0, 5.0, size=(48, 64)).astype(np.float32)
    for x, y in [(10, 12), (40, 30), (55, 8), (20, 40)]:
        data[y - 1 : y + 2, x - 1 : x + 2] += 500.0
    fits.PrimaryHDU(data=data).writeto(path)
    return path


def small_jpeg() -> bytes:
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 40, size=(48, 64), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(out, format="JPEG", quality=90)
    return out.getvalue()


def xyls_table(path: Path) -> Path:
    """A star table like the one StellarSolver writes before an online solve."""
    rng = np.random.default_rng(3)
    n = 40
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="X", format="E", array=rng.uniform(1, 800, n)),
            fits.Column(name="Y", format="E", array=rng.uniform(1, 600, n)),
            fits.Column(name="FLUX", format="E", array=np.sort(rng.uniform(100, 5000, n))[::-1]),
        ]
    )
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return path


# -- the astrometry-net-client package -------------------------------------------------


def point_astrometry_net_client(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point astrometry-net-client at a skysolve at ``base``.

    The package has no base-URL setting: every URL is a class attribute built from
    ``config.BASE_URL`` at import time (the result files even hard-code
    ``http://nova.astrometry.net``), so a custom server means patching them.
    """
    from astrometry_net_client import Job, Session, Submission
    from astrometry_net_client.uploads import FileUpload

    monkeypatch.setattr(Session, "url", base + "/api/login")
    monkeypatch.setattr(FileUpload, "url", base + "/api/upload")
    monkeypatch.setattr(Submission, "url", base + "/api/submissions/{submission.id}")
    monkeypatch.setattr(Job, "url", base + "/api/jobs/{job.id}")
    for name, path in [
        ("wcs_file_url", "wcs_file"),
        ("fits_file_url", "new_fits_file"),
        ("rdls_file_url", "rdls_file"),
        ("axy_file_url", "axy_file"),
        ("corr_file_url", "corr_file"),
        ("annotated_display_url", "annotated_display"),
        ("red_green_image_display_url", "red_green_image_display"),
        ("extraction_image_display_url", "extraction_image_display"),
    ]:
        monkeypatch.setattr(Job, name, base + "/" + path + "/{job.id}")
    monkeypatch.delenv("ASTROMETRY_API_KEY", raising=False)


@pytest.fixture
def anc_at(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    """astrometry-net-client pointed at the live server."""
    point_astrometry_net_client(server.url, monkeypatch)
    return server


def test_it_solves_through_astrometry_net_client(anc_at: LiveServer, tmp_path: Path) -> None:
    from astrometry_net_client import Client

    image = small_fits(tmp_path / "small.fits")
    client = Client(api_key=anc_at.apikey, publicly_visible="n")
    assert client.session.logged_in and client.session.key

    job = client.upload_file(str(image))
    assert job.done() and job.success()

    info = job.info()
    assert info["original_filename"] == "small.fits"
    assert job.objects_in_field == ["M 66", "NGC 3628"]
    calibration = job.calibration
    assert calibration["ra"] == pytest.approx(FAKE_RA, abs=1e-6)
    assert calibration["dec"] == pytest.approx(FAKE_DEC, abs=1e-6)
    assert calibration["pixscale"] == pytest.approx(1.0907, rel=1e-6)
    assert calibration["parity"] in (1.0, -1.0)
    assert {"radius", "orientation"} <= set(calibration)

    header = job.wcs_file()
    assert header["CTYPE1"].startswith("RA---TAN")
    assert header["CRVAL2"] == pytest.approx(FAKE_DEC, abs=1e-6)
    assert job.annotated_display().startswith(b"\x89PNG")


def test_it_gives_the_wcs_header_through_calibrate_file_wcs(
    anc_at: LiveServer, tmp_path: Path
) -> None:
    from astrometry_net_client import Client

    image = small_fits(tmp_path / "small.fits")
    client = Client(api_key=anc_at.apikey)
    header = client.calibrate_file_wcs(str(image))
    assert header is not None
    assert header["CRVAL1"] == pytest.approx(FAKE_RA, abs=1e-6)


def test_it_makes_astrometry_net_client_log_in_again_after_a_bad_session(
    anc_at: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package logs in again only when the error is `no session with key "..."`.

    A URL upload, because the package's FileUpload retry re-sends the already read
    file object: the second request carries an empty file (a client bug; the server
    answers it with "the uploaded file is empty").
    """
    from astrometry_net_client import Session
    from astrometry_net_client.uploads import URLUpload

    monkeypatch.setattr(URLUpload, "url", anc_at.url + "/api/url_upload")
    session = Session(api_key=anc_at.apikey)
    session.login()
    session.key = "expired"  # as if the server had forgotten it
    # Never fetched from outside: the worker refuses non-public addresses.
    submission = URLUpload("http://127.0.0.1:9/image.fits", session=session).submit()
    assert session.key != "expired"
    assert submission.id > 0


# -- NINA ------------------------------------------------------------------------------


def nina_multipart(
    fields: dict[str, str], file_name: str, file_type: str, data: bytes
) -> tuple[bytes, str]:
    """The body of the classic .NET ``HttpUploadFile`` helper: a CRLF before the first
    boundary, form fields without a Content-Type, then the file part."""
    boundary = "---------------------------8dc4f3a1b2c3d4e"
    line = b"\r\n--" + boundary.encode() + b"\r\n"
    body = b""
    for name, value in fields.items():
        body += line + f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
    body += line
    body += (
        f'Content-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        f"Content-Type: {file_type}\r\n\r\n"
    ).encode()
    body += data + b"\r\n--" + boundary.encode() + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary}"


def test_it_answers_nina_request_for_request(server: LiveServer) -> None:
    """The upload of earlier NINA versions (the classic HttpWebRequest helper, a JPEG
    rendering); NINA's current image and star-list solvers, which post through
    HttpClient, are replayed in test_real_clients.py."""
    http = requests.Session()
    login = json_of(
        http.post(
            server.url + "/api/login",
            data={"request-json": json.dumps({"apikey": server.apikey})},
        )
    )
    assert login["status"] == "success"
    session = login["session"]

    # NINA sends no scale or position hints to astrometry.net, and a JPEG rendering.
    request_json = json.dumps(
        {
            "session": session,
            "publicly_visible": "n",
            "allow_commercial_use": "d",
            "allow_modifications": "d",
        }
    )
    body, content_type = nina_multipart(
        {"request-json": request_json}, "file.jpg", "image/jpeg", small_jpeg()
    )
    upload = json_of(
        http.post(server.url + "/api/upload", data=body, headers={"Content-Type": content_type})
    )
    assert upload["status"] == "success", upload
    subid = upload["subid"]

    # Polled once a second with plain GETs that carry no session.
    sub = poll(
        lambda: json_of(requests.get(f"{server.url}/api/submissions/{subid}")),
        lambda s: bool(s["jobs"]) and s["jobs"][0] is not None,
        interval=1.0,
    )
    job_id = sub["jobs"][0]
    status = poll(
        lambda: json_of(requests.get(f"{server.url}/api/jobs/{job_id}")),
        lambda s: s["status"] in ("success", "failure"),
        interval=1.0,
    )
    assert status == {"status": "success"}

    for path in (f"/api/jobs/{job_id}/calibration", f"/api/jobs/{job_id}/calibration/"):
        calibration = json_of(requests.get(server.url + path))
        for key in ("parity", "orientation", "pixscale", "radius", "ra", "dec"):
            value = calibration[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert calibration["ra"] == pytest.approx(FAKE_RA, abs=1e-6)
        assert calibration["parity"] in (1.0, -1.0)


# -- KStars / Ekos (StellarSolver's OnlineSolver) --------------------------------------


def kstars_login(server: LiveServer) -> str:
    # StellarSolver writes the form body itself: "request-json=" + compact JSON, not
    # percent-encoded, labelled application/x-www-form-urlencoded.
    body = "request-json=" + json.dumps({"apikey": server.apikey}, separators=(",", ":"))
    answer = json_of(
        requests.post(
            server.url + "/api/login",
            data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    assert answer["status"] == "success", answer
    return str(answer["session"])


def qt_multipart(request_json: bytes, file_name: str, data: bytes) -> tuple[bytes, str]:
    """A QHttpMultiPart body: quoted "boundary_.oOo._..." boundary, CRLF everywhere,
    Content-Type before Content-Disposition in each part."""
    boundary = b"boundary_.oOo._MTk2NDkzMzI2NQ==MTY4NjU4+/Nzg2"
    body = b"--" + boundary + b"\r\n"
    body += b"Content-Type: application/text/plain\r\n"
    body += b'Content-Disposition: form-data; name="request-json"\r\n\r\n'
    body += request_json + b"\r\n--" + boundary + b"\r\n"
    body += b"Content-Type: application/octet-stream\r\n"
    body += f'Content-Disposition: form-data; name="file"; filename="{file_name}"\r\n\r\n'.encode()
    body += data + b"\r\n--" + boundary + b"--\r\n"
    return body, f'multipart/form-data; boundary="{boundary.decode()}"'


@dataclass
class KStarsRun:
    job_id: int
    calibration: dict[str, Any]
    upload_to_success: float


def kstars_solve(
    server: LiveServer,
    xyls: Path,
    *,
    width: int,
    height: int,
    hints: dict[str, Any],
    interval: float,
) -> KStarsRun:
    """StellarSolver's OnlineSolver workflow, stage by stage."""
    session = kstars_login(server)
    upload_request: dict[str, Any] = {
        "publicly_visible": "n",
        "allow_modifications": "n",
        "session": session,
        "allow_commercial_use": "n",
        "image_width": width,
        "image_height": height,
        "scale_type": "ul",
        **hints,
        "crpix_center": True,
        "downsample_factor": 2,
        "parity": 2,
    }
    # The file name is that of the image StellarSolver extracted the stars from (a
    # full path), not of the .xyls it uploads: the server must look at the content.
    body, content_type = qt_multipart(
        json.dumps(upload_request, separators=(",", ":")).encode(),
        "/home/astro/Pictures/Light_M83_001.fits",
        xyls.read_bytes(),
    )
    upload = json_of(
        requests.post(server.url + "/api/upload", data=body, headers={"Content-Type": content_type})
    )
    uploaded = time.monotonic()
    assert upload["status"] == "success", upload
    subid = int(upload["subid"])

    def submission() -> Any:
        return json_of(requests.get(f"{server.url}/api/submissions/{subid}"))

    # JOB_PROCESSING_STAGE, then JOB_QUEUE_STAGE, then JOB_MONITORING_STAGE.
    poll(submission, lambda s: s["processing_finished"] not in ("None", ""), interval=interval)
    sub = poll(submission, lambda s: bool(s["jobs"]) and bool(s["jobs"][0]), interval=interval)
    job_id = int(sub["jobs"][0])
    status = poll(
        lambda: json_of(requests.get(f"{server.url}/api/jobs/{job_id}")),
        lambda s: s["status"] not in ("solving", "processing"),
        interval=interval,
    )
    upload_to_success = time.monotonic() - uploaded
    assert status["status"] == "success", server.job_result(job_id).get("error")

    calibration = json_of(requests.get(f"{server.url}/api/jobs/{job_id}/calibration"))
    for key in ("width_arcsec", "height_arcsec", "parity", "orientation", "ra", "dec", "pixscale"):
        assert isinstance(calibration[key], int | float), (key, calibration)

    joblog = requests.get(f"{server.url}/joblog/{job_id}")
    assert joblog.status_code == 200
    assert joblog.headers["Content-Type"].startswith("text/plain")
    assert joblog.text.strip()

    wcs = requests.get(f"{server.url}/wcs_file/{job_id}")
    assert wcs.status_code == 200
    header = fits.Header.fromstring(wcs.content)  # as astroquery reads it
    assert header["CTYPE1"].startswith("RA---TAN")
    assert header["CRVAL2"] == pytest.approx(calibration["dec"], abs=1.0)
    return KStarsRun(job_id, calibration, upload_to_success)


def test_it_answers_kstars_request_for_request(server: LiveServer, tmp_path: Path) -> None:
    run = kstars_solve(
        server,
        xyls_table(tmp_path / "stars.xyls"),
        width=800,
        height=600,
        hints={
            "scale_units": "degwidth",
            "scale_lower": 0.1,
            "scale_upper": 0.2,
            "center_ra": 170.0,
            "center_dec": 13.0,
            "radius": 15,
        },
        interval=0.5,
    )
    assert run.calibration["dec"] == pytest.approx(FAKE_DEC, abs=1e-6)
    assert run.calibration["parity"] in (1.0, -1.0)
    assert run.calibration["width_arcsec"] > 0 and run.calibration["height_arcsec"] > 0


@pytest.mark.slow
def test_it_solves_a_kstars_star_list_with_the_real_engine(
    real_server: LiveServer, tmp_path: Path
) -> None:
    from testfields.synthetic import FieldSpec, make_field, write_xyls

    field = make_field(
        FieldSpec(ra=200.0, dec=-30.0, pixscale=30.0, width=800, height=600, seed=2),
        render=False,
    )
    xyls = write_xyls(field, tmp_path / "stars.xyls")
    run = kstars_solve(
        real_server,
        xyls,
        width=800,
        height=600,
        hints={
            "scale_units": "degwidth",
            "scale_lower": 6,
            "scale_upper": 7,
            "center_ra": 200,
            "center_dec": -30,
            "radius": 5,
        },
        interval=0.05,
    )
    assert run.calibration["dec"] == pytest.approx(-30.0, abs=0.1)
    timings = real_server.job_result(run.job_id)["timings"]
    engine_total = timings["total"]
    # Measured, not asserted: the service's overhead is the difference.
    print(
        f"\nupload answer -> first poll seeing success: {run.upload_to_success:.3f} s; "
        f"engine timings['total']: {engine_total:.3f} s; all: {timings}"
    )
