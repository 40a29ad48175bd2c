"""End to end: `skysolve serve` (gunicorn + worker processes) driven by astroquery.

Uses the fake solver (SKYSOLVE_SOLVER) until the engine's pipeline lands; switch
SKYSOLVE_SOLVER to skysolve.engine.pipeline.solve to run the real engine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.io import fits

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)  # its own SQLite file, like a fresh installation
    env.update(
        SKYSOLVE_DATA_DIR=str(tmp_path / "var"),
        SKYSOLVE_SOLVER="tests.webfixtures.fake_solve",
        SKYSOLVE_WORKERS="2",
        PYTHONPATH=str(REPO_ROOT),
    )
    cli = [sys.executable, "-c", "import sys; from skysolve.cli import main; sys.exit(main())"]
    key = subprocess.run(
        [*cli, "apikey", "create", "alice"], env=env, cwd=REPO_ROOT, check=True,
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--web-processes", "1"],
        env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # wait for start-up, not a timed assertion
            try:
                requests.get(url + "/api/openapi.json", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        yield url, key
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def test_it_solves_through_astroquery(server: tuple[str, str], tmp_path: Path) -> None:
    from astroquery.astrometry_net import AstrometryNet

    url, key = server
    client = AstrometryNet()
    client.URL = url
    client.API_URL = url + "/api"
    client.api_key = key
    header = client.solve_from_source_list(
        [10.0, 50.0, 90.0, 30.0], [20.0, 60.0, 15.0, 70.0], 400, 300,
        solve_timeout=120, verbose=False,
    )  # fmt: skip
    assert header["CTYPE1"] == "RA---TAN"

    image = tmp_path / "field.fits"
    fits.PrimaryHDU(data=np.zeros((30, 40), dtype=np.float32)).writeto(image)
    header = client.solve_from_image(str(image), solve_timeout=120, verbose=False)
    assert header["CTYPE2"] == "DEC--TAN"
