"""Requests and replies of the Celery mode survive the trip as JSON, without a shared disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SourceList
from skysolve.errors import BadInputError, NoMatchError, SolverFailedError
from skysolve.queue.transfer import (
    FORMAT,
    outgoing,
    pack_request,
    pack_result,
    unpack_request,
    unpack_result,
)
from tests.webfixtures import PNG_MAGIC, FakeSolver


def trip(data: dict[str, Any]) -> dict[str, Any]:
    """What Celery's JSON serializer does to a message."""
    back: dict[str, Any] = json.loads(json.dumps(data))
    return back


def sources() -> SourceList:
    return SourceList(
        x=np.array([10.0, 20.5]), y=np.array([5.0, 15.0]), flux=np.array([3.0, 2.0]),
        width=100, height=80,
    )  # fmt: skip


def test_it_sends_a_source_list_as_numbers(tmp_path: Path) -> None:
    params = SolveParameters(scale_lower=1.0, scale_upper=2.0, scale_units="arcsecperpix")
    request = trip(pack_request(7, sources(), params, max_file_bytes=0))
    assert request["job_id"] == 7 and "file" not in request
    source, back = unpack_request(request, tmp_path)
    assert isinstance(source, SourceList)
    assert list(source.x) == [10.0, 20.5] and (source.width, source.height) == (100, 80)
    assert back == params


def test_it_sends_a_small_file_as_bytes(tmp_path: Path) -> None:
    image = tmp_path / "m42.FITS"
    image.write_bytes(b"SIMPLE  = T" + bytes(range(256)))
    request = trip(pack_request(7, image, SolveParameters(), max_file_bytes=1000))
    work = tmp_path / "work"
    work.mkdir()
    source, _ = unpack_request(request, work)
    assert source == work / "input.fits"
    assert isinstance(source, Path) and source.read_bytes() == image.read_bytes()


def test_it_extracts_the_sources_of_a_large_image_first(tmp_path: Path) -> None:
    from testfields.synthetic import FieldSpec, make_field

    field = make_field(FieldSpec(ra=10.0, dec=20.0, pixscale=20.0, width=300, height=200, seed=1))
    assert field.image is not None
    from astropy.io import fits

    image = tmp_path / "big.fits"
    fits.PrimaryHDU(data=field.image).writeto(image)
    request = trip(pack_request(7, image, SolveParameters(), max_file_bytes=1000))
    assert "file" not in request
    assert request["sources"]["width"] == 300 and request["sources"]["count"] > 10


def hinted_fits(path: Path, *, width: int = 300, height: int = 200) -> Path:
    """A synthetic field's image with the pointing and the scale in its header."""
    from astropy.io import fits

    from testfields.synthetic import FieldSpec, make_field

    spec = FieldSpec(ra=84.0, dec=-5.0, pixscale=30.0, width=width, height=height, seed=3)
    field = make_field(spec)
    assert field.image is not None
    header = fits.Header()
    header["RA"], header["DEC"], header["PIXSCALE"] = 84.0, -5.0, 30.0
    fits.PrimaryHDU(data=field.image, header=header).writeto(path)
    return path


def test_it_sends_a_large_images_header_hints_with_its_sources(tmp_path: Path) -> None:
    image = hinted_fits(tmp_path / "big.fits")
    request = trip(pack_request(7, image, SolveParameters(), max_file_bytes=1000))
    assert "file" not in request and request["sources"]["width"] == 300
    _, params = unpack_request(request, tmp_path)
    hints = params.file_hints
    assert hints is not None
    assert (hints.center_ra, hints.center_dec) == (84.0, -5.0)
    assert hints.scale_lower is not None and hints.scale_upper is not None
    assert hints.scale_lower < 30.0 < hints.scale_upper
    assert hints.position_source == "RA/DEC keywords"
    # The user's own choices still travel as they were (the pictures are the sender's).
    assert params.replace(file_hints=None, pictures=True) == SolveParameters()


def test_it_sends_no_file_hints_when_the_user_turned_hints_off(tmp_path: Path) -> None:
    image = hinted_fits(tmp_path / "big.fits")
    params = SolveParameters(use_hints=False)
    request = trip(pack_request(7, image, params, max_file_bytes=1000))
    assert "file_hints" not in request["params"]


def test_it_keeps_a_large_image_for_its_pictures(tmp_path: Path) -> None:
    image = hinted_fits(tmp_path / "big.fits")
    small = outgoing(image, SolveParameters(), max_file_bytes=image.stat().st_size)
    assert small.source == image and small.image_kept is None
    large = outgoing(image, SolveParameters(), max_file_bytes=1000)
    assert isinstance(large.source, SourceList) and large.image_kept == image


def test_the_worker_draws_no_pictures_of_a_large_image(tmp_path: Path) -> None:
    """The web host draws them on the kept image; a worker's would be on a blank canvas."""
    image = hinted_fits(tmp_path / "big.fits")
    small = trip(pack_request(7, image, SolveParameters(), max_file_bytes=image.stat().st_size))
    assert "pictures" not in small["params"]
    assert unpack_request(small, tmp_path)[1].pictures
    large = trip(pack_request(7, image, SolveParameters(), max_file_bytes=1000))
    assert large["params"]["pictures"] is False
    assert not unpack_request(large, tmp_path)[1].pictures


def test_a_request_cannot_turn_the_pictures_off() -> None:
    from skysolve.engine.params import NOT_FROM_REQUESTS

    assert "pictures" in NOT_FROM_REQUESTS


@pytest.mark.slow
def test_the_worker_solves_a_large_image_with_its_header_hints(tmp_path: Path) -> None:
    """The worker's side: the source list comes with the file's hints, used first."""
    from skysolve.engine.pipeline import solve
    from skysolve.engine.solving.fastpath import default_db_path
    from tests.gates import require_file

    require_file(default_db_path(), "make setup (skysolve db build)")
    image = hinted_fits(tmp_path / "big.fits", width=800, height=600)
    request = trip(pack_request(7, image, SolveParameters(), max_file_bytes=1000))
    source, params = unpack_request(request, tmp_path)
    assert isinstance(source, SourceList)
    result = solve(source, params, tmp_path / "out")
    assert result.solved, result.log
    assert {"RA/DEC keywords", "PIXSCALE keyword"} <= set(result.hints["sources"]), result.hints
    assert "hints from the file" in result.log
    assert result.calibration is not None
    assert result.calibration.ra == pytest.approx(84.0, abs=0.1)
    # Solved, and no picture drawn on a blank canvas: the web host draws them.
    assert not any(
        name.startswith(("annotated", "red_green", "extraction", "grid")) for name in result.files
    ), sorted(result.files)


def test_it_never_builds_a_path_from_the_file_name(tmp_path: Path) -> None:
    request = {
        "format": FORMAT, "job_id": 1, "params": {},
        "file": {"name": "../../etc/x.;rm", "data": ""},
    }  # fmt: skip
    source, _ = unpack_request(request, tmp_path)
    assert source == tmp_path / "input"


def test_it_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown solve request format"):
        unpack_request({"format": 99}, tmp_path)
    with pytest.raises(SolverFailedError, match="unknown solve reply format"):
        unpack_result({"format": 99}, tmp_path)


def test_it_brings_back_the_result_and_its_files(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    result = FakeSolver()(sources(), SolveParameters(), remote)
    result.timings["total"] = 0.25
    reply = trip(pack_result(result))
    local = tmp_path / "jobs" / "7"
    back = unpack_result(reply, local)
    assert back.solved and back.calibration == result.calibration
    assert back.wcs_header is not None and result.wcs_header is not None
    assert back.wcs_header["CRVAL1"] == result.wcs_header["CRVAL1"]
    assert back.objects_in_field == ["M 66", "NGC 3628"]
    assert back.annotations == result.annotations
    assert back.timings["total"] == 0.25
    assert set(back.files) == set(result.files)
    for key, path in back.files.items():
        assert path.parent == local
        assert path.read_bytes() == result.files[key].read_bytes()
    assert not list(local.glob("*.part"))


def test_it_brings_back_an_unsolved_result(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    result = FakeSolver(solved=False)(sources(), SolveParameters(), remote)
    back = unpack_result(trip(pack_result(result)), tmp_path / "local")
    assert not back.solved and isinstance(back.failure, NoMatchError)


def test_it_sends_identical_files_once(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    result = FakeSolver()(sources(), SolveParameters(), remote)
    reply = pack_result(result)
    # The fake's two PNG pictures have the same bytes.
    copies = [k for k, v in reply["files"].items() if "same_as" in v]
    assert copies == ["red_green_display"]
    back = unpack_result(trip(reply), tmp_path / "local")
    assert back.files["red_green_display"].read_bytes() == PNG_MAGIC + b"fake"
