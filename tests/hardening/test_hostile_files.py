"""Hostile single files through the service (issue #5): API upload, the real worker step
with the real engine, and a clear job failure with bounded memory.

The engine's own checks are tested in tests/engine/test_images.py; here the question is
what a user of the service sees, and that the worker survives.
"""

from __future__ import annotations

import re
import resource
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from django.test import Client

from skysolve.submissions.models import Job, Submission
from tests.api.helpers import call, session_for
from tests.hardening.files import (
    fits_bytes,
    fits_with_hdus,
    gzip_bomb,
    jpeg_bytes,
    png_bytes,
    png_declaring,
    tiff_bytes,
)
from tests.hardening.service import jobs_of, run_all, serving, upload, upload_ok
from tests.queuefixtures import worker

pytestmark = pytest.mark.django_db

MEMORY_BOUND = 200 * 1024**2


def _corrupt(data: bytes, keep: int) -> bytes:
    """The first ``keep`` bytes (magic and header intact), then deterministic garbage."""
    garbage = np.random.default_rng(5).integers(0, 256, len(data) - keep, dtype=np.uint8)
    return data[:keep] + garbage.tobytes()


def _big_fits() -> bytes:
    return fits_bytes(512, 512)


CASES: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # name: (file, error code, message pattern)
    "truncated.fits": (lambda: _big_fits()[:20_000], "corrupt_file", "FITS file is truncated"),
    "corrupt.fits": (
        lambda: b"SIMPLE  =                    T / garbage follows" + bytes(range(256)) * 40,
        "corrupt_file",
        "cannot read the FITS file",
    ),
    "truncated.jpg": (lambda: jpeg_bytes(512, 512)[:3000], "corrupt_file", "JPEG"),
    "corrupt.jpg": (lambda: _corrupt(jpeg_bytes(512, 512), 20), "corrupt_file", "JPEG"),
    "truncated.png": (lambda: png_bytes(512, 512)[:3000], "corrupt_file", "PNG"),
    "corrupt.png": (lambda: _corrupt(png_bytes(512, 512), 40), "corrupt_file", "PNG"),
    "truncated.tif": (lambda: tiff_bytes(512, 512)[:3000], "corrupt_file", "TIFF"),
    "corrupt.tif": (lambda: _corrupt(tiff_bytes(512, 512), 8), "corrupt_file", "TIFF"),
    "huge.png": (
        lambda: png_declaring(100_000, 100_000),
        "too_large",
        r"100000x100000 = 10000000000 pixels",
    ),
    "many-hdus.fits": (
        lambda: fits_with_hdus(10_000),
        "bad_input",
        "no image data in the first 1000 HDUs",
    ),
}


def _escapes(root: Path) -> list[Path]:
    """Files under the test's temporary directory but outside the data directory."""
    return [p for p in root.rglob("*") if p.is_file() and "var" not in p.relative_to(root).parts]


def run_worker_measured(data_dir: Path) -> tuple[int, int]:
    """Run the real worker on the queue; peak traced memory and peak RSS growth, bytes."""
    # Modules the engine imports on first use are not what is measured.
    import skysolve.engine.extraction
    import skysolve.engine.inputs.hints
    import skysolve.engine.inputs.images
    import skysolve.engine.inputs.starlists  # noqa: F401

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    try:
        run_all(worker(None))  # None: the configured solver, the real engine
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    return peak, rss_growth


@pytest.mark.parametrize("name", sorted(CASES))
def test_it_fails_the_job_of_a_hostile_file_clearly(
    client: Client, data_dir: Path, name: str
) -> None:
    make, code, pattern = CASES[name]
    subid = upload_ok(client, session_for("alice"), make(), name)
    peak, rss_growth = run_worker_measured(data_dir)
    [job] = jobs_of(subid)
    assert job.status == Job.FAILURE, (job.status, job.error_message)
    assert job.error_code == code, job.error_message
    assert re.search(pattern, job.error_message), job.error_message
    # The reason reaches the submission too (nova clients look there).
    assert Submission.objects.get(pk=subid).error_message == job.error_message
    assert peak < MEMORY_BOUND and rss_growth < MEMORY_BOUND
    assert _escapes(data_dir.parent) == []


def test_it_refuses_an_empty_upload(client: Client) -> None:
    answer = upload(client, session_for("alice"), b"", "empty.fits")
    assert answer["status"] == "error"
    assert "empty" in answer["errormessage"]
    assert not Submission.objects.exists()


def test_it_fails_the_job_of_an_empty_file_at_a_url(client: Client, settings: Any) -> None:
    settings.SKYSOLVE_URL_FETCH_ALLOW = ["127.0.0.1/32"]
    with serving(b"") as server_url:
        payload = {"session": session_for("alice"), "url": f"{server_url}/empty.fits"}
        answer = call(client, "/api/url_upload", payload)
        run_all(worker(None))
    [job] = jobs_of(int(answer["subid"]))
    assert (job.status, job.error_code) == (Job.FAILURE, "bad_input")
    assert job.error_message == "the URL gave an empty file"


@pytest.mark.slow
def test_it_stops_a_gzip_bomb_in_the_worker(client: Client, data_dir: Path) -> None:
    header = fits.PrimaryHDU(np.zeros((10, 10), dtype=np.uint8)).header.tostring().encode()
    bomb = gzip_bomb(int(2.1 * 1024**3), head=header)
    assert len(bomb) < 3_000_000
    subid = upload_ok(client, session_for("alice"), bomb, "bomb.fits.gz")
    peak, rss_growth = run_worker_measured(data_dir)
    [job] = jobs_of(subid)
    assert (job.status, job.error_code) == (Job.FAILURE, "too_large")
    assert "inflates to more than the limit" in job.error_message
    assert peak < MEMORY_BOUND and rss_growth < MEMORY_BOUND
    assert _escapes(data_dir.parent) == []
