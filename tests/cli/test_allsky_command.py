"""`skysolve solve` on real all-sky frames of the shared corpus: the lens model, its files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.engine.allsky.model import LensModel
from skysolve.engine.solving.fastpath.database import default_db_path
from testfields.allsky import render_allsky
from tests.conftest import REPO_ROOT

CLI = [sys.executable, "-c", "from skysolve.cli import console; console()"]

pytestmark = pytest.mark.skipif(
    not default_db_path().is_file(), reason="the fast-path database is not built"
)


def run(*args: str, profiles: Path) -> subprocess.CompletedProcess[str]:
    # Each test its own camera profiles: a frame solved by another run starts from nothing.
    env = {**os.environ, "SKYSOLVE_ALLSKY_PROFILES": str(profiles)}
    return subprocess.run(
        [*CLI, "solve", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env
    )


def test_it_solves_a_clear_all_sky_frame_with_a_lens_model(
    tmp_path: Path, shared_images: Path
) -> None:
    frame = shared_images / "corpus" / "asc_iceact_starry.fits"
    out = str(tmp_path / "out")
    done = run(str(frame), "--json", "--out", out, "--no-pictures", profiles=tmp_path / "p")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["solved"] is True and doc["solver"] == "allsky-lens"
    lens = json.loads(Path(doc["files"]["lens"]).read_text())
    assert lens["matched_stars"] >= 100
    assert lens["rms_px_within_70_deg"] < 1.0
    # The lens search's own fit is the answer's quality: no tangent-plane refit of a fisheye.
    quality = doc["quality"]
    assert quality["matched_stars"] == lens["matched_stars"]
    # Measured on lens.json's listed residuals (4 decimals), its rms_px before them.
    assert quality["rms_px"] == pytest.approx(lens["rms_px"], abs=2e-4)
    assert (quality["reference_catalogue"], quality["reference_epoch"]) == ("Gaia DR3", 2016.0)
    assert quality["lens_projection"] == lens["lens_model"]["projection"]
    assert fits.getheader(doc["files"]["wcs"])["FITNSTAR"] == lens["matched_stars"]
    # IceAct stands at the South Pole and looks up: the sky below its axis at
    # the header's time is there.
    assert lens["site"]["latitude"] < -88.0
    assert doc["calibration"]["dec"] < -80.0
    # The FITS WCS astropy reads puts the matched stars where the model does.
    header = fits.getheader(doc["files"]["wcs"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's notes on the SIP header
        wcs = WCS(header)
    stars = [s for s in lens["stars"] if s["off_axis_deg"] < 70.0]
    x, y = wcs.all_world2pix([s["ra"] for s in stars], [s["dec"] for s in stars], 0)
    for s, xi, yi in zip(stars, x, y, strict=True):
        assert abs(xi - (s["x"] - s["dx"])) < 0.05 and abs(yi - (s["y"] - s["dy"])) < 0.05


def test_it_says_an_overcast_all_sky_frame_has_too_few_stars(tmp_path: Path) -> None:
    # An all-sky camera's frame under cloud: the lit circle, no stars.  (The
    # corpus's "cloudy" IceAct frame is not one: 116 stars shine through, and
    # it solves, to the same lens as the clear frame.)
    model = LensModel("equidistant", 319.5, 239.5, 0.0, -89.0, 0.0, 190.0)
    frame = tmp_path / "overcast.fits"
    fits.PrimaryHDU(render_allsky(model, 640, 480, faintest=-5.0, sky=3000.0)).writeto(frame)
    done = run(str(frame), "--json", "--timeout", "60", profiles=tmp_path / "p")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["solved"] is False
    assert doc["error"]["code"] == "no_stars"
    assert "too few stars" in doc["error"]["message"]
    # Answered by the all-sky search, not after the ordinary solvers' time limit.
    assert "solve:astrometry.net" not in doc["timings"]
