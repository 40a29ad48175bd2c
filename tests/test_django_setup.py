"""Django is configured for the Django test packages only (tests/conftest.py).

The engine tests must run where Django is not wanted: a run of one of them
imports no Django at all, while collecting a web test package sets it up.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

# Runs pytest in a fresh interpreter, then reports whether Django was imported.
PROBE = """
import sys
import pytest
code = pytest.main([*sys.argv[1:], "-q", "-p", "no:cacheprovider"])
print("django imported:", "django" in sys.modules)
sys.exit(code)
"""


def django_imported(*args: str) -> bool:
    # As a person runs it: not inheriting the settings module that this run's
    # Django packages (collected before this file) put into the environment.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("django imported:")]
    return line == "django imported: True"


def test_an_engine_test_run_imports_no_django() -> None:
    assert not django_imported("tests/engine/test_camera.py")


def test_collecting_a_web_test_package_sets_django_up() -> None:
    assert django_imported("--collect-only", "tests/accounts")
