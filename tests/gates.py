"""Tests that need an installed binary, the index files or the fast-path database.

Each gate skips with a loud reason naming what is missing, unless
``SKYSOLVE_REQUIRE_ENGINE=1`` (set by ``.ci/run``) turns that into a failure, as
``SKYSOLVE_REQUIRE_SERVICES`` and ``SKYSOLVE_REQUIRE_IMAGES`` do for the
services and the images: a half-failed ``make setup`` must not pass CI with
the solve layer untested.

Use the marks (``@needs_binary("astrometry-engine")``, ``@needs_file(path,
"the Debian package ...")``, also as ``pytest.param(..., marks=...)``) or call
``require_binary`` / ``require_file`` inside a test; ``tests/conftest.py``
evaluates the marks before each test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

INDEX_DIR = Path("/usr/share/astrometry")
ENGINE_PACKAGE = "Debian package astrometry.net"
INDEX_PACKAGE = "Debian package astrometry-data-tycho2"


def _missing(reason: str) -> None:
    reason = f"*** {reason}: this test did not run ***"
    if os.environ.get("SKYSOLVE_REQUIRE_ENGINE") == "1":
        pytest.fail(reason + " (SKYSOLVE_REQUIRE_ENGINE=1 forbids skipping)")
    pytest.skip(reason)


def require_binary(name: str, provider: str = ENGINE_PACKAGE) -> None:
    """Skip (or fail under SKYSOLVE_REQUIRE_ENGINE=1) unless ``name`` is on PATH."""
    if shutil.which(name) is None:
        _missing(f"{name} is not installed ({provider})")


def require_file(path: Path, provider: str) -> None:
    """Skip (or fail under SKYSOLVE_REQUIRE_ENGINE=1) unless the file ``path`` exists."""
    if not path.is_file():
        _missing(f"{path} is missing ({provider})")


def needs_binary(name: str, provider: str = ENGINE_PACKAGE) -> pytest.MarkDecorator:
    return pytest.mark.requires_binary(name, provider)


def needs_file(path: Path, provider: str = INDEX_PACKAGE) -> pytest.MarkDecorator:
    return pytest.mark.requires_file(path, provider)


def check_marks(item: pytest.Item) -> None:
    """Apply the item's ``requires_binary`` / ``requires_file`` marks."""
    for mark in item.iter_markers("requires_binary"):
        require_binary(*mark.args)
    for mark in item.iter_markers("requires_file"):
        require_file(*mark.args)
