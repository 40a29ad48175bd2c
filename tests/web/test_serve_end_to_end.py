"""End to end: `skysolve serve` (gunicorn + worker processes) driven by astroquery,
with the real engine: a synthetic star list and ../shared/images/apod4.jpg.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

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


def test_it_solves_through_astroquery(
    server: tuple[str, str], tmp_path: Path, shared_images: Path
) -> None:
    from astroquery.astrometry_net import AstrometryNet

    from skysolve.engine.synthetic import FieldSpec, make_field

    url, key = server
    client = AstrometryNet()
    client.URL = url
    client.API_URL = url + "/api"
    client.api_key = key
    field = make_field(
        FieldSpec(ra=200.0, dec=-30.0, pixscale=30.0, width=800, height=600, seed=2),
        render=False,
    )
    header = client.solve_from_source_list(
        list(field.sources.x), list(field.sources.y), 800, 600,
        solve_timeout=120, verbose=False,
    )  # fmt: skip
    assert header["CTYPE1"].startswith("RA---TAN")
    assert abs(header["CRVAL2"] - -30.0) < 1.0

    header = client.solve_from_image(
        str(shared_images / "apod4.jpg"), solve_timeout=120, verbose=False
    )
    assert header["CTYPE2"].startswith("DEC--TAN")
    assert abs(header["CRVAL2"] - 56.7) < 10.0
