"""`skysolve solve` imports what its solve needs and nothing more.

A fast-path answer is a one-second process (#17 item 4: StellarSolver's
command-line driver takes 0.7-1.4 s on the same images), and every module it
imports is paid again at each start.  No timing is asserted here: the
benchmark measures the time, these tests say which modules must stay out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import skysolve
from skysolve.cli import COMMAND_MODULES, build_parser
from skysolve.cli.solve import load_fast_path_early
from skysolve.engine.config import EngineConfig
from skysolve.engine.params import SolveParameters
from skysolve.engine.solving.fastpath import build_database, database
from testfields.synthetic import FieldSpec, make_field, write_fits, write_jpeg
from tests.gates import INDEX_DIR, needs_binary, needs_file

#: Packages no fast-path `skysolve solve` needs: the web layer's, and the
#: engine's slow-path or file-writing ones (astropy: 0.25 s; scipy.ndimage).
HEAVY_PACKAGES = ("django", "rest_framework", "celery", "scipy", "astropy", "matplotlib")
#: Pillow's readers of other formats than the JPEG being solved (40 ms together).
OTHER_PILLOW_PLUGINS = (
    "PIL.PngImagePlugin",
    "PIL.GifImagePlugin",
    "PIL.BmpImagePlugin",
    "PIL.TiffImagePlugin",
    "PIL.WebPImagePlugin",
)
#: The other sub-commands' modules (sockets, secrets, TLS, Django's settings...).
OTHER_COMMANDS = tuple(f"skysolve.cli.{name}" for name in COMMAND_MODULES if name != "solve")

REPORT = (
    "import json, sys\n"
    "from skysolve.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "print(json.dumps({'status': status, 'modules': sorted(sys.modules)}))\n"
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fast-path database for fields 20 to 30 degrees wide (about a second to build)."""
    path = tmp_path_factory.mktemp("fastpath") / "test.t3db"
    build_database(path, min_fov=20.0, max_fov=30.0)
    return path


def _solve_and_report(args: list[str], db: Path, cwd: Path) -> tuple[dict, dict]:
    """``skysolve`` run with ``args`` under :data:`REPORT`, from ``cwd``, with the
    test database: its JSON result and the report of what it imported."""
    # The code under test, whichever checkout's tests these are.
    code = str(Path(skysolve.__file__).resolve().parents[1])
    env = {**os.environ, "SKYSOLVE_FASTPATH_DB": str(db), "PYTHONPATH": code}
    done = subprocess.run(
        [sys.executable, "-c", REPORT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    *printed, last = done.stdout.rstrip("\n").split("\n")
    return json.loads("\n".join(printed)), json.loads(last)


def test_a_fast_path_solve_of_a_jpeg_imports_no_heavy_package_other_command_or_reader(
    db: Path, tmp_path: Path
) -> None:
    width, height = 800, 600
    spec = FieldSpec(
        ra=200.0, dec=40.0, pixscale=25.0 * 3600.0 / width, width=width, height=height,
        rotation=60.0, seed=5, fwhm=2.5, noise=8.0, sky=500.0,
    )  # fmt: skip
    image = write_jpeg(make_field(spec), tmp_path / "wide.jpg", quality=95)
    args = ["solve", str(image), "--json", "--no-pictures"]
    args += ["--scale-units", "degwidth", "--scale-low", "22", "--scale-high", "28"]
    result, report = _solve_and_report(args, db, tmp_path)
    assert result["solved"] and result["solver"] == "pattern-hash", result
    assert result["calibration"]["pixscale"] == pytest.approx(spec.pixscale, rel=1e-3)
    assert report["status"] == 0
    modules = set(report["modules"])
    assert "PIL.JpegImagePlugin" in modules  # the reader it did need
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY_PACKAGES) == []
    assert sorted(modules & set(OTHER_COMMANDS)) == []
    assert sorted(modules & set(OTHER_PILLOW_PLUGINS)) == []


def test_a_fast_path_solve_of_a_plain_fits_frame_imports_no_astropy(
    db: Path, tmp_path: Path
) -> None:
    """The FITS read, blind, with the database loaded at process start
    (the header gives no scale); astrometry.net's own reads are tested in
    tests/engine/test_fitscards.py."""
    width, height = 800, 600
    spec = FieldSpec(
        ra=120.0, dec=-30.0, pixscale=25.0 * 3600.0 / width, width=width, height=height,
        rotation=20.0, seed=9, fwhm=2.5, noise=8.0, sky=500.0,
    )  # fmt: skip
    image = write_fits(make_field(spec), tmp_path / "wide.fits")
    args = ["solve", str(image), "--json", "--no-pictures", "--no-hints"]
    result, report = _solve_and_report(args, db, tmp_path)
    assert result["solved"] and result["solver"] == "pattern-hash", result
    assert result["calibration"]["pixscale"] == pytest.approx(spec.pixscale, rel=1e-3)
    modules = set(report["modules"])
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY_PACKAGES) == []


@needs_binary("astrometry-engine")
@needs_file(INDEX_DIR / "index-tycho2-07.littleendian.fits")
@pytest.mark.parametrize("name", ["seestar_ngc7023_10s.fit", "seestar_ngc7023_20s.fit"])
def test_a_blind_solve_of_a_seestar_frame_imports_no_astropy(
    db: Path, tmp_path: Path, shared_images: Path, name: str
) -> None:
    """A narrow field astrometry.net answers: its header (a HIERARCH card, an
    earlier solve's PC/CDELT WCS), the index files' tables for the final fit
    and astrometry.net's answer are all read without astropy."""
    frame = shared_images / "corpus" / name
    args = ["solve", str(frame), "--json", "--no-pictures", "--no-hints"]
    result, report = _solve_and_report(args, db, tmp_path)
    assert result["solved"] and result["solver"] == "astrometry.net", result
    assert result["calibration"]["pixscale"] == pytest.approx(2.4, abs=0.05)
    modules = set(report["modules"])
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY_PACKAGES) == []


def _fits_frame(path: Path, cards: dict[str, object], *, in_extension: bool = False) -> Path:
    from astropy.io import fits

    data = np.zeros((20, 30), dtype=np.int16)
    hdu = fits.ImageHDU(data=data) if in_extension else fits.PrimaryHDU(data=data)
    for key, value in cards.items():
        hdu.header[key] = value
    hdus = [fits.PrimaryHDU(), hdu] if in_extension else [hdu]
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.mark.parametrize(
    ("cards", "in_extension", "starts"),
    [
        ({"OBJECT": "KIC 8462852", "EXPTIME": 120.4}, False, True),
        ({"FOCALLEN": 85.0, "XPIXSZ": 4.3}, False, False),  # optics: maybe too narrow
        ({"SECPIX": 10.0}, False, False),
        ({"OBJECT": "M 31"}, True, False),  # the image elsewhere: astropy's to read
    ],
)
def test_a_fits_frame_starts_the_load_early_when_its_header_gives_no_scale(
    db: Path, tmp_path: Path, cards: dict[str, object], in_extension: bool, starts: bool
) -> None:
    frame = _fits_frame(tmp_path / "frame.fits", cards, in_extension=in_extension)
    database._cache.clear()
    config = EngineConfig(fastpath_db=db)
    assert load_fast_path_early(frame, SolveParameters(use_hints=False), config) is starts
    deadline = time.monotonic() + 60
    while starts and not database.is_loaded(db) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert database.is_loaded(db) is starts
    database._cache.clear()


def test_the_early_load_is_a_read_started_before_the_fast_path_is_imported(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load that the early start begins takes the database file read by
    :mod:`skysolve.engine.solving.preload`, begun before any fast-path import."""
    from skysolve.engine.solving import preload

    image = tmp_path / "field.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    database._cache.clear()
    preload._reads.clear()
    taken: list[object] = []
    take = preload.take

    def recorded(path: Path, version: tuple[int, int]) -> object:
        taken.append(take(path, version))
        return taken[-1]

    monkeypatch.setattr(preload, "take", recorded)
    assert load_fast_path_early(
        image, SolveParameters(use_hints=False), EngineConfig(fastpath_db=db)
    )
    deadline = time.monotonic() + 60
    while not database.is_loaded(db) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(taken) == 1 and taken[0] is database.load_database(db).database
    database._cache.clear()


def command_names(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    assert isinstance(sub.choices, dict)
    return list(sub.choices)


def test_the_parser_of_one_command_has_that_command_alone() -> None:
    parser = build_parser("solve-server")
    assert command_names(parser) == ["solve-server"]
    assert build_parser("solve").parse_args(["solve", "x.jpg", "--json"]).json


@pytest.mark.parametrize("first", [None, "--help", "no-such-command", "solve_server"])
def test_anything_but_a_command_name_gets_every_command(first: str | None) -> None:
    names = set(command_names(build_parser(first)))
    assert {"solve", "serve", "worker", "solve-server", "tls-cert", "db", "index"} <= names
    assert len(names) == len(COMMAND_MODULES)


@pytest.mark.parametrize(
    ("request_", "starts"),
    [
        ({"use_hints": False}, True),  # blind, the file's hints unread: the whole database
        ({"use_hints": True}, False),  # the file may hint a scale: a band, maybe
        ({"use_hints": False, "scale_lower": 20.0, "scale_upper": 30.0}, False),
        ({"use_hints": False, "scale_type": "ev", "scale_est": 25.0}, False),
    ],
)
def test_a_blind_solve_without_file_hints_starts_loading_the_database_before_the_engine(
    db: Path, tmp_path: Path, request_: dict[str, object], starts: bool
) -> None:
    image = tmp_path / "field.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    database._cache.clear()  # as in a new process
    config = EngineConfig(fastpath_db=db)
    params = SolveParameters(**request_)  # type: ignore[arg-type]
    assert load_fast_path_early(image, params, config) is starts
    deadline = time.monotonic() + 60
    while starts and not database.is_loaded(db) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert database.is_loaded(db) is starts
    # Nothing to load without a database, with solvers of the caller's own, or
    # for a FITS file whose header cannot be read without astropy (it may
    # leave the fast path out).
    database._cache.clear()
    blind = SolveParameters(use_hints=False)
    assert not load_fast_path_early(image, blind, EngineConfig())
    assert not load_fast_path_early(image, blind, EngineConfig(fastpath_db=db, solvers=()))
    fits_file = tmp_path / "frame.fits"
    fits_file.write_bytes(b"SIMPLE  =                    T" + bytes(50))
    assert not load_fast_path_early(fits_file, blind, config)
    assert not load_fast_path_early(tmp_path / "missing.jpg", blind, config)
    assert not database.is_loaded(db)
