"""`skysolve solve`: exit status, JSON shape, errors on stderr."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testfields.synthetic import FieldSpec, make_field, write_xyls
from tests.conftest import REPO_ROOT
from tests.gates import needs_binary

pytestmark = needs_binary("astrometry-engine")

# The console script's own entry point, which leaves without interpreter teardown.
CLI = [sys.executable, "-c", "from skysolve.cli import console; console()"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "solve", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_it_prints_nova_fields_and_exits_0_when_solved(tmp_path: Path) -> None:
    f = make_field(FieldSpec(ra=30.0, dec=45.0, pixscale=30.0, width=800, height=600), render=False)
    xyls = write_xyls(f, tmp_path / "stars.xyls")
    done = run(str(xyls), "--json", "--out", str(tmp_path / "out"), "--no-pictures")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    for key in ("solved", "calibration", "index", "hints", "files", "objects_in_field", "timings"):
        assert key in doc
    assert doc["solved"] is True
    assert set(doc["calibration"]) == {
        "ra", "dec", "radius", "pixscale", "orientation", "parity", "width_arcsec", "height_arcsec",
    }  # fmt: skip
    assert abs(doc["calibration"]["dec"] - 45.0) < 0.1
    assert Path(doc["files"]["wcs"]).exists()
    assert "solving" in done.stderr  # progress goes to stderr


def test_it_exits_1_when_nothing_matches(tmp_path: Path) -> None:
    stars = tmp_path / "random.txt"
    stars.write_text("\n".join(f"{(i * 37) % 500 + 1} {(i * 91) % 400 + 1}" for i in range(40)))
    done = run(
        str(stars), "--width", "500", "--height", "400", "--scale-units", "arcsecperpix",
        "--scale-low", "300", "--scale-high", "310", "--timeout", "20", "--json",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["solved"] is False


def test_it_exits_2_on_bad_input(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    done = run(str(junk))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "skysolve:" in done.stderr


def test_it_exits_2_on_bad_parameters(tmp_path: Path) -> None:
    done = run(str(tmp_path / "missing.fits"), "--dec", "95", "--ra", "10")
    assert done.returncode == 2 and "center_dec" in done.stderr
    done = run(str(tmp_path / "missing.fits"))
    assert done.returncode == 2 and "no such file" in done.stderr


def test_it_exits_2_when_no_index_covers_the_scale(tmp_path: Path) -> None:
    f = make_field(FieldSpec(ra=30.0, dec=45.0, pixscale=30.0, width=800, height=600), render=False)
    xyls = write_xyls(f, tmp_path / "stars.xyls")
    done = run(
        str(xyls), "--scale-units", "arcsecperpix", "--scale-low", "0.01", "--scale-high", "0.02"
    )
    assert done.returncode == 2 and "installed index files cover fields" in done.stderr


def test_it_writes_no_files_without_out(tmp_path: Path) -> None:
    f = make_field(FieldSpec(ra=30.0, dec=45.0, pixscale=30.0, width=800, height=600), render=False)
    xyls = write_xyls(f, tmp_path / "stars.xyls")
    before = sorted(tmp_path.iterdir())
    done = run(str(xyls), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["solved"] is True and doc["files"] == {}
    assert doc["calibration"]["dec"] == pytest.approx(45.0, abs=0.1)
    assert sorted(tmp_path.iterdir()) == before


def test_it_notes_a_missing_fastpath_database_on_stderr(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    db = tmp_path / "fp" / "default.t3db"
    env = {**os.environ, "SKYSOLVE_FASTPATH_DB": str(db)}
    missing = subprocess.run(
        [*CLI, "solve", str(junk)], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert f"no fast-path database at {db}" in missing.stderr
    db.parent.mkdir()
    db.write_bytes(b"db")
    db.with_name("default.t3db.stars.npz").write_bytes(b"stars")
    present = subprocess.run(
        [*CLI, "solve", str(junk)], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert present.returncode == 2 and "fast-path" not in present.stderr


def test_a_relative_out_dir_works_from_any_directory(tmp_path: Path) -> None:
    """astrometry.net runs in its own directory: ``--out out`` once made it look for
    ``out/work/.../engine.cfg`` there and fail."""
    spec = FieldSpec(ra=200.0, dec=-35.0, pixscale=30.0, width=800, height=600)
    f = make_field(spec, render=False)
    write_xyls(f, tmp_path / "stars.xyls")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "SKYSOLVE_FASTPATH_DB": str(tmp_path / "no-database.t3db")}
    done = subprocess.run(
        [*CLI, "solve", "../stars.xyls", "--out", "out", "--json", "--no-pictures"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["solver"] == "astrometry.net"
    # The astrometry.net path's answer is refitted and says how good it is.
    quality = doc["quality"]
    for key in ("matched_stars", "rms_px", "median_px", "rms_arcsec", "median_arcsec",
                "sip_order", "ra_error_arcsec", "dec_error_arcsec", "pixscale_error",
                "rotation_error_deg", "limiting_mag"):  # fmt: skip
        assert quality[key] is not None, key
    assert quality["refit"] is True and Path(doc["files"]["corr"]).is_file()
    wcs = Path(doc["files"]["wcs"])
    assert wcs.is_absolute() and wcs.is_file() and wcs.is_relative_to(elsewhere / "out")
