"""A running `skysolve serve` picks up index files fetched while it runs.

The 0.2 degree synthetic field, uploaded through the nova API with its scale
and position, fails at once with no_index (the job and its results page name
the fetch command); `skysolve index fetch` from a local mirror then installs
the tiles, and the same upload to the same, never restarted, service solves.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO_ROOT
from tests.indexfixtures import (
    FIELD_DEC,
    FIELD_RA,
    Behaviour,
    SyntheticSky,
    index_env,
    mirror_handler,
)
from tests.liveserver import CLI, LiveServer, start_server
from tests.localhttp import serve_http
from tests.waiting import finished_job


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    env = index_env(tmp_path / "indexes")
    monkeypatch.setenv("SKYSOLVE_INDEX_DIRS", env["SKYSOLVE_INDEX_DIRS"])
    yield from start_server(tmp_path, None)


def upload_and_wait(server: LiveServer, session: str, field: Path) -> tuple[int, str]:
    request_json = {
        "session": session, "publicly_visible": "y", "scale_units": "arcsecperpix",
        "scale_type": "ul", "scale_lower": 0.8, "scale_upper": 1.0,
        "center_ra": FIELD_RA - 0.2, "center_dec": FIELD_DEC + 0.1, "radius": 1.0,
    }  # fmt: skip
    with field.open("rb") as f:
        upload = requests.post(
            server.url + "/api/upload",
            data={"request-json": json.dumps(request_json)},
            files={"file": ("field.fits", f, "application/octet-stream")},
            timeout=60,
        ).json()
    assert upload["status"] == "success", upload
    return finished_job(
        lambda path: requests.get(server.url + path, timeout=10).json(), int(upload["subid"])
    )


def job_error(server: LiveServer, job_id: int) -> tuple[str, str]:
    with closing(sqlite3.connect(server.data_dir / "skysolve.sqlite3")) as db:
        row = db.execute(
            "SELECT error_code, error_message FROM submissions_job WHERE id = ?", (job_id,)
        ).fetchone()
    return str(row[0]), str(row[1])


def test_it_solves_after_a_fetch_without_a_restart(
    server: LiveServer, synthetic_sky: SyntheticSky, tmp_path: Path
) -> None:
    session = requests.post(
        server.url + "/api/login",
        data={"request-json": json.dumps({"apikey": server.apikey})},
        timeout=10,
    ).json()["session"]

    job_id, status = upload_and_wait(server, session, synthetic_sky.field)
    assert status == "failure"
    code, message = job_error(server, job_id)
    assert code == "no_index" and "a field 10.7' to 13.3' wide" in message
    command = message.split("Install index files for it with: ", 1)[1]
    page = requests.get(f"{server.url}/results/{job_id}", timeout=10).text
    assert f'<pre class="command" id="index-fix">{command}</pre>' in page

    env: dict[str, Any] = index_env(tmp_path / "indexes")
    with serve_http(mirror_handler(synthetic_sky.mirror, Behaviour())) as url:
        fetched = subprocess.run(
            [*CLI, *shlex.split(command)[1:], "--mirror", url], env=env, cwd=REPO_ROOT,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr

    job_id, status = upload_and_wait(server, session, synthetic_sky.field)
    assert status == "success", job_error(server, job_id)
    result = server.job_result(job_id)
    assert result["index"].startswith("index-520") and result["index"].endswith("-25.fits")
    calibration = requests.get(f"{server.url}/api/jobs/{job_id}/calibration", timeout=10).json()
    assert abs(calibration["ra"] - FIELD_RA) * 3600 < 2.0
    assert abs(calibration["dec"] - FIELD_DEC) * 3600 < 2.0

    # `skysolve index list` on this installation counts the job for that file.
    env["SKYSOLVE_DATA_DIR"] = str(server.data_dir)
    env.pop("DATABASE_URL", None)  # the service's own (SQLite) database, in every run
    listed = subprocess.run(
        [*CLI, "index", "list", "--json"], env=env, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    solved = {row["name"]: row["jobs_solved"] for row in json.loads(listed.stdout)["indexes"]}
    assert solved[result["index"]] == 1
    assert sum(solved.values()) == 1
    # ... and `recommend` without a size takes the recent jobs' field sizes (0.2 degrees).
    recommended = subprocess.run(
        [*CLI, "index", "recommend", "--json"], env=env, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    doc = json.loads(recommended.stdout)
    assert doc["for"].startswith("the 1 most recent solved jobs")
    scales = {row["scale"]: row for row in doc["scales"]}
    assert sorted(scales) == [0, 1, 2, 3, 4, 5]
    assert (scales[2]["installed"], scales[2]["files"]) == (1, 48)  # tile 25 of 48
