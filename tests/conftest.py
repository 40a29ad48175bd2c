"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_images() -> Path:
    """The directory of real sky images (``../shared/images`` by default).

    Set ``SKYSOLVE_TEST_IMAGES`` to use another directory.  When it is missing
    the test is skipped, unless ``SKYSOLVE_REQUIRE_IMAGES=1`` asks for a failure
    (CI sets it so a missing mount cannot pass silently).
    """
    configured = os.environ.get("SKYSOLVE_TEST_IMAGES")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "images"
    if not path.is_dir():
        reason = (
            f"shared test images not found at {path} "
            "(set SKYSOLVE_TEST_IMAGES to the directory holding apod2.jpg...)"
        )
        if os.environ.get("SKYSOLVE_REQUIRE_IMAGES") == "1":
            pytest.fail(reason + "; SKYSOLVE_REQUIRE_IMAGES=1 forbids skipping")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def synthetic_sky(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A synthetic star catalogue, its 5200-style index files (built once per
    session with build-astrometry-index) and a 0.2 degree field: see
    tests/indexfixtures.py."""
    from tests.indexfixtures import sky_fixture

    return sky_fixture(tmp_path_factory)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Binary, index-file and database marks skip, or fail under SKYSOLVE_REQUIRE_ENGINE=1.
    from tests.gates import check_marks

    check_marks(item)
