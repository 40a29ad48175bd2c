"""Fixtures shared by every test layer, and Django for the packages that need it.

The web, API and queue packages (:data:`DJANGO_PACKAGES`) get Django configured
(``tests/djangosetup.py``) when pytest starts collecting them, and every test in
them runs with :func:`tests.webfixtures.data_dir`.  Nothing else configures or
imports Django, so the engine, CLI and remote tests run without it (checked by
``tests/test_django_setup.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"


def fresh_python(script: str) -> list[str]:
    """The lines ``script`` prints when this Python runs it in a new process on
    this checkout's code: nothing imported before it, as in a worker's first solve."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[:-1]


#: The test packages that run against Django (settings, models, the test client).
DJANGO_PACKAGES = frozenset(
    {"accounts", "api", "front", "hardening", "ops", "queue", "submissions", "web"}
)

# The fixtures data_dir and fake_solver (the module imports no Django).
pytest_plugins = ("tests.webfixtures",)


def in_django_package(path: Path) -> bool:
    """Whether ``path`` is in one of :data:`DJANGO_PACKAGES`."""
    parts = path.relative_to(TESTS_DIR).parts if path.is_relative_to(TESTS_DIR) else ()
    return len(parts) > 1 and parts[0] in DJANGO_PACKAGES


def pytest_collectstart(collector: pytest.Collector) -> None:
    # Before a Django package's test module is imported: configure Django, and
    # give every test in it its own data directory.  (On modules: pytest 9.2 does
    # not call this hook of tests/conftest.py for the sub-package nodes.)
    if isinstance(collector, pytest.Module) and in_django_package(collector.path):
        import tests.djangosetup  # noqa: F401

        collector.add_marker(pytest.mark.usefixtures("data_dir"))


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


@pytest.fixture(autouse=True)
def own_camera_profiles(tmp_path_factory: pytest.TempPathFactory, monkeypatch: Any) -> None:
    """Every test keeps camera profiles (the all-sky lens models, the wide lenses
    the fast path remembers) in a folder of its own: a solve in one test must
    not start the next one's from its camera's lens, nor write to the user's cache."""
    if "SKYSOLVE_ALLSKY_PROFILES" not in os.environ:
        monkeypatch.setenv("SKYSOLVE_ALLSKY_PROFILES", str(tmp_path_factory.mktemp("profiles")))
