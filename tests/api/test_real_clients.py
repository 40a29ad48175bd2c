"""Real clients, unchanged, against a live `skysolve serve` with the real engine, on the
real sky images of ``../shared/images``:

* nova's reference ``client.py`` run by the system ``python3`` with Debian's
  ``python3-astrometry`` (image upload and ``--upload-xy``, every result file);
* the ``astrometry-net-client`` package and astroquery's ``AstrometryNet``;
* KStars/Ekos's online solver: StellarSolver (Debian's ``libstellarsolver``) driven by
  ``ssharness`` (built by ``make client-tools`` from ``../shared/tools/stellarsolver``),
  once solving and once with its job waiting in the queue for more than three minutes;
* request-for-request replays of NINA's current image and text-star-list solvers.

The three-minute wait is started as soon as this module starts (it is mostly idle
waiting) and checked by its last test, so the other tests run meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import threading
import time
import urllib.parse
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from astropy.io import fits

from tests.api.test_clients import (
    FAKE_DEC,
    FAKE_RA,
    json_of,
    point_astrometry_net_client,
)
from tests.conftest import REPO_ROOT
from tests.liveserver import LiveServer, start_server
from tests.waiting import poll

pytestmark = [pytest.mark.slow]


@dataclass(frozen=True)
class Reference:
    """``solve-field``'s answer for a shared image (``../shared/images/README.md``)."""

    name: str
    ra: float
    dec: float
    pixscale: float
    width_deg: float


APOD2 = Reference("apod2.jpg", 84.57723, -2.75567, 20.272, 4.5)
APOD4 = Reference("apod4.jpg", 187.18503, 56.71337, 169.70, 33.9)


def assert_matches(ref: Reference, ra: float, dec: float, pixscale: float | None = None) -> None:
    # 0.05 degrees is 9 pixels of apod2 and one of apod4: a wrong solve is off by far more.
    assert ra == pytest.approx(ref.ra, abs=0.05 / max(np.cos(np.radians(ref.dec)), 0.1))
    assert dec == pytest.approx(ref.dec, abs=0.05)
    if pixscale is not None:
        assert pixscale == pytest.approx(ref.pixscale, rel=0.01)


# -- what the clients need on this machine ---------------------------------------------


def _missing(reason: str, variable: str) -> None:
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason}; {variable}=1 forbids skipping")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def nova_client_py() -> Path:
    """nova's reference client.py.

    Debian packages the astrometry.net Python modules client.py imports
    (``python3-astrometry``) but not client.py itself, so it is read from
    ``SKYSOLVE_NOVA_CLIENT`` or ``../shared/tools/nova-client/client.py``.
    """
    configured = os.environ.get("SKYSOLVE_NOVA_CLIENT")
    path = (
        Path(configured)
        if configured
        else REPO_ROOT.parent / "shared" / "tools" / "nova-client" / "client.py"
    )
    if not path.is_file():
        # No package this machine can install carries the script, so CI cannot
        # require it; SKYSOLVE_REQUIRE_NOVA_CLIENT=1 does where it is provided.
        _missing(
            f"NOVA'S client.py NOT FOUND at {path}: set SKYSOLVE_NOVA_CLIENT to run it",
            "SKYSOLVE_REQUIRE_NOVA_CLIENT",
        )
    return path


@pytest.fixture(scope="session")
def system_python() -> str:
    """The system interpreter with Debian's python3-astrometry, as a user runs client.py."""
    python = "/usr/bin/python3"
    probe = subprocess.run(
        [python, "-c", "import astrometry.util.fits"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        _missing(
            "Debian's python3-astrometry is not importable by /usr/bin/python3 "
            f"({probe.stderr.strip()[-200:]})",
            "SKYSOLVE_REQUIRE_SERVICES",
        )
    return python


@pytest.fixture(scope="session")
def ssharness() -> Path:
    """The StellarSolver driver that ``make client-tools`` builds."""
    path = ssharness_path()
    if not os.access(path, os.X_OK):
        _missing(
            f"ssharness not found at {path} (make client-tools builds it)",
            "SKYSOLVE_REQUIRE_SERVICES",
        )
    return path


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One `skysolve serve` with the real engine for every client of this module."""
    yield from start_server(tmp_path_factory.mktemp("real-clients"), None)


def image_path(shared_images: Path, ref: Reference) -> Path:
    path = shared_images / ref.name
    assert path.is_file(), path
    return path


def brightest_stars(image: Path, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y (1-based, rows as stored) and flux of the ``count`` brightest stars."""
    from skysolve.engine.extraction import extract_sources
    from skysolve.engine.inputs.images import load_image

    sources = extract_sources(load_image(image).data, max_sources=count)
    return np.asarray(sources.x), np.asarray(sources.y), np.asarray(sources.flux)


def star_table(image: Path, out: Path, count: int = 200) -> Path:
    """An x,y FITS table like ``image2xy`` writes, from a real image."""
    x, y, flux = brightest_stars(image, count)
    columns = [
        fits.Column(name="X", format="D", array=x),
        fits.Column(name="Y", format="D", array=y),
        fits.Column(name="FLUX", format="D", array=flux),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(out)
    return out


# -- KStars: a job waiting in the queue for more than three minutes -------------------

#: StellarSolver gives up when processing_finished stays "None" for about 180 s.
KSTARS_PATIENCE = 180.0
QUEUE_WAIT_TEST = "test_it_keeps_a_kstars_job_that_waits_in_the_queue_over_three_minutes"


@dataclass
class QueueWait:
    """A StellarSolver run whose job waits behind a held one, started in the background."""

    ssharness: Path
    image: Path
    tmp: Path
    server: LiveServer | None = None
    blocker_job: int | None = None
    kstars_job: int | None = None
    output: str = ""
    returncode: int | None = None
    errors: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="kstars-queue-wait", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._scenario()
        except BaseException as error:  # reported by the test, not lost in a thread
            self.errors.append(repr(error))

    def _scenario(self) -> None:
        gate = self.tmp / "gate"
        gate.write_text("held")
        servers = start_server(
            self.tmp,
            "tests.api.gatedsolver.gated_fake_solve",
            # The held job must outlast the wait, not hit the 300 s default limit.
            env={"SKYSOLVE_FAKE_GATE": str(gate), "SKYSOLVE_JOB_TIMEOUT": "900"},
        )
        server = self.server = next(servers)
        try:
            self.blocker_job = self._hold_the_worker(server)
            log = (self.tmp / "ssharness.log").open("w")
            with log:
                process = subprocess.Popen(
                    [str(self.ssharness), str(self.image), "--solver", "online",
                     "--url", server.url, "--apikey", server.apikey,
                     "--basepath", str(self.tmp / "ss")],
                    stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
                try:
                    self.kstars_job, queued = self._wait_for_kstars_job(server, process)
                    # Hold the worker until the job has waited past StellarSolver's patience.
                    time.sleep(max(0.0, queued + KSTARS_PATIENCE + 10 - time.monotonic()))
                    gate.unlink()
                    self.returncode = process.wait(timeout=600)
                finally:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
            self.output = (self.tmp / "ssharness.log").read_text()
        finally:
            gate.unlink(missing_ok=True)
            servers.close()

    def _hold_the_worker(self, server: LiveServer) -> int:
        session = json_of(
            requests.post(
                server.url + "/api/login",
                data={"request-json": json.dumps({"apikey": server.apikey})},
            )
        )["session"]
        rng = np.random.default_rng(5)
        request = {
            "session": session,
            "x": rng.uniform(1, 400, 20).tolist(),
            "y": rng.uniform(1, 300, 20).tolist(),
        }
        upload = json_of(
            requests.post(
                server.url + "/api/url_upload", data={"request-json": json.dumps(request)}
            )
        )
        job = poll(
            lambda: jobs_table(server),
            lambda rows: any(row["started_at"] for row in rows),
            interval=0.2,
        )
        assert upload["status"] == "success"
        return int(job[0]["id"])

    def _wait_for_kstars_job(
        self, server: LiveServer, process: subprocess.Popen[bytes]
    ) -> tuple[int, float]:
        def kstars_rows() -> list[dict[str, Any]]:
            assert process.poll() is None, (self.tmp / "ssharness.log").read_text()
            return [row for row in jobs_table(server) if row["id"] != self.blocker_job]

        rows = poll(
            kstars_rows, what="StellarSolver's upload to make a job", interval=0.1, patience=120.0
        )  # a hang guard only
        return int(rows[0]["id"]), time.monotonic()


def jobs_table(server: LiveServer) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(server.data_dir / "skysolve.sqlite3")) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT id, status, queued_at, started_at FROM submissions_job ORDER BY queued_at"
        ).fetchall()
    return [dict(row) for row in rows]


def ssharness_path() -> Path:
    configured = os.environ.get("SKYSOLVE_SSHARNESS")
    return Path(configured) if configured else REPO_ROOT / ".venv" / "bin" / "ssharness"


def shared_images_path() -> Path:
    configured = os.environ.get("SKYSOLVE_TEST_IMAGES")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "images"


@pytest.fixture(scope="module", autouse=True)
def kstars_queue_wait(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QueueWait | None]:
    """Starts the three-minute queue wait when this module starts, if its test runs.

    What is missing (the harness, the images) is left to the test's own fixtures to
    report, so the other tests of the module are not skipped with it.
    """
    image = shared_images_path() / APOD4.name
    wanted = any(item.name == QUEUE_WAIT_TEST for item in request.session.items)
    if not (wanted and os.access(ssharness_path(), os.X_OK) and image.is_file()):
        yield None
        return
    wait = QueueWait(ssharness_path(), image, tmp_path_factory.mktemp("kstars-queue-wait"))
    wait.start()
    yield wait
    if wait.thread is not None:
        wait.thread.join(timeout=900)


def ssharness_result(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-3000:]
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


# -- nova's client.py ------------------------------------------------------------------


def run_client_py(
    python: str, client: Path, server: LiveServer, cwd: Path, *args: str, image: bool = True
) -> subprocess.CompletedProcess[str]:
    """client.py asking for every result file; ``new-image.fits`` only for an image,
    since a star list has no pixels to put the WCS into (nova's answer there is an
    error text, skysolve's a 404)."""
    files = ["--wcs", "wcs.fits", "--kmz", "field.kmz", "--corr", "corr.fits",
             "--annotate", "annotations.json"]  # fmt: skip
    if image:
        files += ["--newfits", "new-image.fits"]
    done = subprocess.run(
        [python, str(client), "--server", server.url + "/api/", "--apikey", server.apikey,
         "--private", *args, *files],
        cwd=cwd, capture_output=True, text=True, timeout=600,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )  # fmt: skip
    # client.py reports a failed request only as a file it writes, err.html.
    assert done.returncode == 0 and not (cwd / "err.html").exists(), done.stdout[-4000:]
    return done


def check_client_py_files(cwd: Path, ref: Reference) -> None:
    header = fits.getheader(cwd / "wcs.fits")
    assert header["CTYPE1"].startswith("RA---TAN")
    assert_matches(ref, *_centre(header))
    with fits.open(cwd / "corr.fits") as corr:
        table = corr[1].data
        assert len(table) >= 10
        assert {"field_x", "field_y", "index_ra", "index_dec"} <= {
            name.lower() for name in table.columns.names
        }
        # Each matched star sits where the WCS puts its catalogue position.
        ra, dec = _wcs(header).all_pix2world(table["field_x"], table["field_y"], 1)
        apart = _separation_deg(ra, dec, table["index_ra"], table["index_dec"]) * 3600
        assert np.median(apart) < 2 * ref.pixscale, apart
    if (cwd / "new-image.fits").exists():
        with fits.open(cwd / "new-image.fits") as new:
            assert new[0].data is not None and new[0].data.ndim >= 2
            assert new[0].header["CTYPE2"].startswith("DEC--TAN")
    kml = (cwd / "field.kmz").read_bytes()
    if zipfile.is_zipfile(cwd / "field.kmz"):
        with zipfile.ZipFile(cwd / "field.kmz") as kmz:
            kml = kmz.read(next(n for n in kmz.namelist() if n.endswith(".kml")))
    assert b"<kml" in kml and b"GroundOverlay" in kml
    annotations = json.loads((cwd / "annotations.json").read_text())["annotations"]
    assert annotations and all({"names", "pixelx", "pixely"} <= set(a) for a in annotations)


def job_id_of(output: str) -> int:
    """The job client.py waited for, from what it printed."""
    return int(re.findall(r"Selecting job id (\d+)", output)[-1])


def test_it_solves_an_image_through_nova_client_py(
    real_server: LiveServer,
    nova_client_py: Path,
    system_python: str,
    shared_images: Path,
    tmp_path: Path,
) -> None:
    image = image_path(shared_images, APOD4)
    done = run_client_py(
        system_python, nova_client_py, real_server, tmp_path,
        "--upload", str(image), "--scale-units", "degwidth",
        "--scale-lower", "25", "--scale-upper", "40",
    )  # fmt: skip
    assert (tmp_path / "new-image.fits").exists()
    check_client_py_files(tmp_path, APOD4)
    job = job_id_of(done.stdout)
    calibration = json_of(requests.get(f"{real_server.url}/api/jobs/{job}/calibration"))
    assert_matches(APOD4, calibration["ra"], calibration["dec"], calibration["pixscale"])


def test_it_solves_a_star_list_through_nova_client_py_upload_xy(
    real_server: LiveServer,
    nova_client_py: Path,
    system_python: str,
    shared_images: Path,
    tmp_path: Path,
) -> None:
    """``--upload-xy`` posts x/y in request-json with no file part and no image size."""
    table = star_table(image_path(shared_images, APOD2), tmp_path / "apod2.xy.fits")
    done = run_client_py(
        system_python, nova_client_py, real_server, tmp_path,
        "--upload-xy", str(table), "--scale-units", "arcsecperpix",
        "--scale-lower", "18", "--scale-upper", "22", image=False,
    )  # fmt: skip
    assert "'x': [" in done.stdout and "filename=" not in done.stdout
    check_client_py_files(tmp_path, APOD2)


def _wcs(header: fits.Header) -> Any:
    from astropy.wcs import WCS

    header = header.copy()
    header.remove("NAXIS", ignore_missing=True)  # 0 in a header-only wcs.fits; astropy warns
    return WCS(header)


def _centre(header: fits.Header) -> tuple[float, float]:
    """Sky position of the middle of the WCS's image (CRPIX need not be there)."""
    width, height = header["IMAGEW"], header["IMAGEH"]
    ra, dec = _wcs(header).all_pix2world([[(width + 1) / 2, (height + 1) / 2]], 1)[0]
    return float(ra), float(dec)


def _separation_deg(ra1: Any, dec1: Any, ra2: Any, dec2: Any) -> np.ndarray:
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    cos = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(ra1 - ra2)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


# -- astrometry-net-client and astroquery ----------------------------------------------


def test_it_solves_a_real_image_through_astrometry_net_client(
    real_server: LiveServer, shared_images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package (0.6) uploads images only: its SourcesUpload never sends x/y.

    It polls after 4, 8, 16... seconds, so the quick Big Dipper keeps this short.
    """
    from astrometry_net_client import Client

    point_astrometry_net_client(real_server.url, monkeypatch)
    client = Client(
        api_key=real_server.apikey, publicly_visible="n",
        scale_units="degwidth", scale_lower=25.0, scale_upper=40.0,
    )  # fmt: skip
    job = client.upload_file(str(image_path(shared_images, APOD4)))
    assert job.success()
    objects = job.info()["objects_in_field"]  # info() also fills in job.calibration
    assert any("Ursa Major" in name for name in objects), objects
    calibration = job.calibration
    assert_matches(APOD4, calibration["ra"], calibration["dec"], calibration["pixscale"])
    assert job.wcs_file()["CTYPE1"].startswith("RA---TAN")
    assert job.annotated_display()[:4] in (b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb", b"\x89PNG")


@pytest.fixture
def astroquery_client(real_server: LiveServer) -> Any:
    from astroquery.astrometry_net import AstrometryNet

    client = AstrometryNet()
    client.URL = real_server.url
    client.API_URL = real_server.url + "/api"
    client.api_key = real_server.apikey
    return client


def test_it_solves_a_real_image_upload_through_astroquery(
    astroquery_client: Any, shared_images: Path
) -> None:
    # Without photutils astroquery uploads the image itself (force_image_upload is
    # deprecated); with it, it would send its own star list instead.
    assert astroquery_client._no_source_detector
    header = astroquery_client.solve_from_image(
        str(image_path(shared_images, APOD2)),
        scale_units="arcsecperpix", scale_type="ul", scale_lower=18.0, scale_upper=22.0,
        solve_timeout=300, verbose=False,
    )  # fmt: skip
    assert_matches(APOD2, *_centre(header))


def test_it_solves_a_real_star_list_through_astroquery(
    astroquery_client: Any, shared_images: Path
) -> None:
    x, y, _ = brightest_stars(image_path(shared_images, APOD4), 100)
    header = astroquery_client.solve_from_source_list(
        list(x), list(y), 719, 507,
        scale_units="degwidth", scale_type="ul", scale_lower=25.0, scale_upper=40.0,
        solve_timeout=300, verbose=False,
    )  # fmt: skip
    assert_matches(APOD4, *_centre(header))


# -- NINA's current solvers, request for request --------------------------------------


def dotnet_url_encode(text: str) -> str:
    """``HttpUtility.UrlEncode``: form encoding with lower-case hex escapes."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote_plus(text))


def dotnet_multipart(request_json: str, file_name: str, data: bytes) -> tuple[bytes, str]:
    """``MultipartFormDataContent`` of .NET's HttpClient: a GUID boundary (quoted in the
    header), unquoted part names, ``filename*`` beside ``filename``, a charset on the
    string part."""
    boundary = str(uuid.uuid4())
    body = (
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Disposition: form-data; name=request-json\r\n\r\n"
        f"{request_json}\r\n"
        f"--{boundary}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Disposition: form-data; name=file; filename={file_name}; "
        f"filename*=utf-8''{file_name}\r\n\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f'multipart/form-data; boundary="{boundary}"'


def nina_solve(
    server: LiveServer, request_fields: dict[str, Any], file_name: str, data: bytes
) -> Any:
    """NINA's AstrometryPlateSolver / AstrometryTextSolver: log in at /api/login/ with a
    url-encoded body, upload, poll the submission and the job once a second with plain
    GETs, then read /calibration/ (trailing slashes as NINA writes them)."""
    http = requests.Session()
    http.headers["User-Agent"] = "N.I.N.A./3.2.0.9001 (x64)"
    apikey = json.dumps({"apikey": server.apikey}, separators=(",", ":"))
    body = "request-json=" + dotnet_url_encode(apikey)
    login = json_of(
        http.post(
            server.url + "/api/login/",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    assert login["status"] == "success", login
    request_json = json.dumps(
        {"publicly_visible": "n", "allow_modifications": "d", "session": login["session"],
         "allow_commercial_use": "d", **request_fields},
        separators=(",", ":"),
    )  # fmt: skip
    payload, content_type = dotnet_multipart(request_json, file_name, data)
    upload = json_of(
        http.post(server.url + "/api/upload", data=payload, headers={"Content-Type": content_type})
    )
    assert upload["status"] == "success", upload
    submission = poll(
        lambda: json_of(http.get(f"{server.url}/api/submissions/{upload['subid']}")),
        lambda s: s.get("status") == "failure" or any(s["jobs"]),
        interval=1.0,
    )
    assert submission.get("status") != "failure", submission
    job = next(j for j in submission["jobs"] if j)
    status = poll(
        lambda: json_of(http.get(f"{server.url}/api/jobs/{job}")),
        lambda s: s["status"] in ("success", "failure"),
        interval=1.0,
    )
    assert status["status"] == "success", server.job_result(int(job)).get("error")
    calibration = json_of(http.get(f"{server.url}/api/jobs/{job}/calibration/"))
    for key in ("parity", "orientation", "pixscale", "radius", "ra", "dec"):
        assert isinstance(calibration[key], int | float), (key, calibration)  # .NET doubles
    return calibration


def test_it_answers_ninas_image_solver(real_server: LiveServer, shared_images: Path) -> None:
    """NINA saves the frame as a 16-bit FITS under a random name and uploads that."""
    from skysolve.engine.inputs.images import load_image

    pixels = load_image(image_path(shared_images, APOD2)).data
    frame = np.clip(pixels * 256.0, 0, 65535).astype(np.uint16)[::-1]  # FITS rows bottom-up
    out = fits.HDUList([fits.PrimaryHDU(frame)])
    path = real_server.data_dir.parent / "nina-frame.fits"
    out.writeto(path, overwrite=True)
    calibration = nina_solve(real_server, {}, "kq0zjwm4.x1c.fits", path.read_bytes())
    assert_matches(APOD2, calibration["ra"], calibration["dec"], calibration["pixscale"])


def test_it_answers_ninas_text_star_list_solver(
    real_server: LiveServer, shared_images: Path
) -> None:
    """The brightest 200 stars as ``# X Y`` text named upload.xy, no image size, a scale
    hint in arcsec per pixel from the camera's pixel size and the focal length (+-20%)."""
    x, y, _ = brightest_stars(image_path(shared_images, APOD2), 200)
    # NINA's star positions are 0-based; F3 with the invariant culture.
    text = "# X Y\r\n" + "".join(f"{a - 1:.3f} {b - 1:.3f}\r\n" for a, b in zip(x, y, strict=True))
    scale = 20.272
    calibration = nina_solve(
        real_server,
        {"scale_units": "arcsecperpix", "scale_lower": scale * 0.8, "scale_upper": scale * 1.2},
        "upload.xy",
        text.encode(),
    )
    assert_matches(APOD2, calibration["ra"], calibration["dec"], calibration["pixscale"])


# -- KStars / Ekos: StellarSolver's online solver ----------------------------------------


def test_it_solves_through_stellarsolver(
    real_server: LiveServer, ssharness: Path, shared_images: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(ssharness), str(image_path(shared_images, APOD2)), "--solver", "online",
         "--url", real_server.url, "--apikey", real_server.apikey,
         "--scale-low", "3", "--scale-high", "6", "--scale-units", "degwidth",
         "--basepath", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    result = ssharness_result(done.stdout)
    assert done.returncode == 0 and result["solved"], done.stdout[-3000:]
    solution = result["solution"]
    assert_matches(APOD2, solution["ra"], solution["dec"], solution["pixscale"])
    assert result["has_wcs"]


def trust_store(tmp: Path, *certificates: Path) -> Path:
    """A certificate folder as OpenSSL and Qt read /etc/ssl/certs (hash-named links)."""
    store = tmp / "certs"
    store.mkdir(parents=True)
    for i, certificate in enumerate(certificates):
        (store / f"cert{i}.pem").write_bytes(certificate.read_bytes())
    subprocess.run(["openssl", "rehash", str(store)], check=True, capture_output=True)
    return store


def run_with_trust_store(store: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``store`` as the system's trust store, in a private mount
    namespace, so nothing outside the test sees it (Qt 5 reads only the system store)."""
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        _missing(
            f"cannot make a private mount namespace ({probe.stderr.strip()}): needs root",
            "SKYSOLVE_REQUIRE_SERVICES",
        )
    script = 'mount --bind "$0" /etc/ssl/certs && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(store), *argv],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_it_solves_through_stellarsolver_over_https_with_a_tls_cert_certificate(
    real_server: LiveServer, ssharness: Path, shared_images: Path, tmp_path: Path
) -> None:
    """KStars by IP address over https, as StellarSolver 2.5+ insists on: it works once
    ``skysolve tls-cert``'s certificate is in the trust store; an untrusted certificate
    and a trusted one with a common name only (the old nginx recipe) both fail."""
    from skysolve.cli import main as skysolve
    from tests.tlsproxy import tls_proxy

    good = tmp_path / "good"
    assert skysolve(["tls-cert", "--no-detect", "--ip", "127.0.0.1", "--out", str(good)]) == 0
    old = tmp_path / "old"
    old.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-subj", "/CN=skysolve.lan", "-keyout", str(old / "skysolve.key"),
         "-out", str(old / "skysolve.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    port = int(urllib.parse.urlsplit(real_server.url).port or 80)

    def kstars(url: str) -> list[str]:
        return [str(ssharness), str(image_path(shared_images, APOD4)), "--solver", "online",
                "--url", url, "--apikey", real_server.apikey, "--ssl-diagnostics",
                "--scale-low", "25", "--scale-high", "40", "--scale-units", "degwidth",
                "--basepath", str(tmp_path / "ss")]  # fmt: skip

    with tls_proxy(good / "skysolve.crt", good / "skysolve.key", port) as https_port:
        url = f"https://127.0.0.1:{https_port}"
        untrusted = subprocess.run(kstars(url), capture_output=True, text=True, timeout=600)
        assert "self-signed, and untrusted" in untrusted.stdout, untrusted.stdout[-2000:]
        assert not ssharness_result(untrusted.stdout)["solved"]
        store = trust_store(tmp_path / "trusted-good", good / "skysolve.crt")
        done = run_with_trust_store(store, kstars(url))
        result = ssharness_result(done.stdout)
        assert done.returncode == 0 and result["solved"], done.stdout[-3000:] + done.stderr
        assert_matches(APOD4, result["solution"]["ra"], result["solution"]["dec"])
    with tls_proxy(old / "skysolve.crt", old / "skysolve.key", port) as https_port:
        store = trust_store(tmp_path / "trusted-old", old / "skysolve.crt")
        refused = run_with_trust_store(store, kstars(f"https://127.0.0.1:{https_port}"))
        assert "did not match any of the valid hosts" in refused.stdout, refused.stdout[-2000:]
        assert not ssharness_result(refused.stdout)["solved"]


def test_it_keeps_a_kstars_job_that_waits_in_the_queue_over_three_minutes(
    kstars_queue_wait: QueueWait | None, ssharness: Path, shared_images: Path
) -> None:
    """StellarSolver polls the submission until processing_finished leaves "None" and
    gives up after about 180 s: nova sets it once the jobs exist, so a job waiting in
    the queue (here behind one the worker holds) is not lost."""
    wait = kstars_queue_wait
    assert wait is not None and wait.thread is not None
    wait.thread.join(timeout=900)
    assert not wait.errors, wait.errors
    assert wait.server is not None and wait.kstars_job is not None
    result = ssharness_result(wait.output)
    assert wait.returncode == 0 and result["solved"], wait.output[-3000:]
    assert result["solution"]["ra"] == pytest.approx(FAKE_RA, abs=1e-3)
    assert result["solution"]["dec"] == pytest.approx(FAKE_DEC, abs=1e-3)
    # The wait was real: the worker took the job more than three minutes after it came.
    row = next(r for r in jobs_table(wait.server) if r["id"] == wait.kstars_job)
    waited = datetime.fromisoformat(row["started_at"]) - datetime.fromisoformat(row["queued_at"])
    assert waited.total_seconds() > KSTARS_PATIENCE, waited
