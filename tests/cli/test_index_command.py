"""`skysolve index ...`: a narrow field fails with no_index, the command it names
fetches the tiles from a (local) mirror, and the same field then solves."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

from tests.conftest import REPO_ROOT
from tests.indexfixtures import (
    FIELD_DEC,
    FIELD_PIXSCALE,
    FIELD_RA,
    TILE,
    Behaviour,
    SyntheticSky,
    index_env,
    mirror_handler,
)
from tests.localhttp import serve_http

CLI = [sys.executable, "-c", "from skysolve.cli import console; console()"]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def solve_args(sky: SyntheticSky) -> list[str]:
    return [
        "solve", str(sky.field), "--json", "--scale-units", "arcsecperpix",
        "--scale-low", "0.8", "--scale-high", "1.0",
        "--ra", str(FIELD_RA + 0.3), "--dec", str(FIELD_DEC - 0.2), "--radius", "1",
    ]  # fmt: skip


def test_it_fetches_what_no_index_asks_for_and_then_solves(
    synthetic_sky: SyntheticSky, tmp_path: Path
) -> None:
    indexes = tmp_path / "indexes"
    env = index_env(indexes)
    env["SKYSOLVE_DATA_DIR"] = str(tmp_path / "var")

    before = run(env, *solve_args(synthetic_sky))
    assert before.returncode == 2, before.stderr
    error = json.loads(before.stdout)["error"]
    assert error["code"] == "no_index"
    assert "a field 10.7' to 13.3' wide" in error["message"]
    assert "cover fields of about 22' to 180 deg" in error["message"]
    command = error["message"].split("Install index files for it with: ", 1)[1]
    args = shlex.split(command)
    assert args[:5] == ["skysolve", "index", "fetch", "--series", "5200"]
    assert "--ra" in args and "--radius" in args

    behaviour = Behaviour()
    with serve_http(mirror_handler(synthetic_sky.mirror, behaviour)) as url:
        fetched = run(env, *args[1:], "--mirror", url, "--json")
    assert fetched.returncode == 0, fetched.stderr
    installed = sorted(Path(p).name for p in json.loads(fetched.stdout)["installed"])
    assert installed == [f"index-520{s}-{TILE:02d}.fits" for s in (0, 1, 2, 3)]
    assert "MB/s" in fetched.stderr  # the progress bar

    after = run(env, *solve_args(synthetic_sky))
    assert after.returncode == 0, after.stderr
    doc = json.loads(after.stdout)
    assert doc["solved"] and doc["solver"] == "astrometry.net"
    assert doc["index"].startswith("index-520") and doc["index"].endswith("-25.fits")
    cal = doc["calibration"]
    assert abs(cal["ra"] - FIELD_RA) * 3600 < 2.0 and abs(cal["dec"] - FIELD_DEC) * 3600 < 2.0
    assert abs(cal["pixscale"] - FIELD_PIXSCALE) < 0.001

    listed = json.loads(run(env, "index", "list", "--json").stdout)
    mine = [row for row in listed["indexes"] if row["series"] == 5200]
    assert [(r["scale"], r["healpix"], r["nside"]) for r in mine] == [
        (s, TILE, 2) for s in (0, 1, 2, 3)
    ]
    assert all(r["bytes"] > 0 and r["quad_arcmin"][0] < r["quad_arcmin"][1] for r in mine)
    assert len(listed["indexes"]) == len(mine) + 13  # and Debian's Tycho-2 files

    assert run(env, "index", "verify").returncode == 0
    (indexes / "index-5209-25.fits").write_bytes(b"SIMPLE  =" + b" " * 3000)
    bad = run(env, "index", "verify")
    assert bad.returncode == 1 and "BAD" in bad.stdout and "index-5209-25.fits" in bad.stdout
    removed = run(env, "index", "remove", "index-5209-25.fits", "index-5200-25.fits")
    assert removed.returncode == 0, removed.stderr
    assert sorted(p.name for p in indexes.iterdir()) == installed[1:]


def test_it_recommends_for_a_camera_and_for_recent_jobs(tmp_path: Path) -> None:
    env = index_env(tmp_path / "indexes")
    env["SKYSOLVE_DATA_DIR"] = str(tmp_path / "var")
    done = run(
        env, "index", "recommend", "--focal-mm", "2000", "--pixel-um", "3.76",
        "--pixels", "4000", "3000", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    # 0.43 x 0.32 degrees: quads of 1.9' to 25.9'.
    assert [s["scale"] for s in doc["scales"]] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert {s["series"] for s in doc["scales"]} == {5200, 4100}
    assert doc["scales"][-1]["installed"] == 1  # index-4107 from Debian
    assert doc["fetch_commands"][0].startswith("skysolve index fetch --series 5200 --scales 0,")
    no_jobs = run(env, "index", "recommend")
    assert no_jobs.returncode == 2 and "no solved jobs" in no_jobs.stderr


def test_it_builds_index_files_from_a_csv_catalogue(
    synthetic_sky: SyntheticSky, tmp_path: Path
) -> None:
    table = fits.getdata(synthetic_sky.catalogue, 1)
    csv = tmp_path / "survey.csv"
    rows = np.column_stack([table["RA"], table["DEC"], table["MAG"]])
    csv.write_text("ra,dec,phot_g_mean_mag\n" + "\n".join(f"{a},{b},{c}" for a, b, c in rows))
    out = tmp_path / "custom"
    env = index_env(out)
    done = run(env, "index", "build", str(csv), "--scales", "4", "--id", "9100")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out / f"index-9104-{TILE:02d}.fits")]
    header = fits.getheader(out / f"index-9104-{TILE:02d}.fits", 0)
    assert header["INDEXID"] == 9104 and header["HEALPIX"] == TILE and header["HPNSIDE"] == 2
    assert sorted(p.name for p in out.iterdir()) == [f"index-9104-{TILE:02d}.fits"]
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    failed = run(env, "index", "build", str(bad), "--scales", "4")
    assert failed.returncode == 2 and "no RA column" in failed.stderr
