"""The binary, index-file and database gates skip loudly, or fail when CI requires them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gates import require_binary, require_file


def test_it_skips_a_missing_binary_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKYSOLVE_REQUIRE_ENGINE", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-solver-binary is not installed"):
        require_binary("no-such-solver-binary")
    monkeypatch.setenv("SKYSOLVE_REQUIRE_ENGINE", "1")
    with pytest.raises(pytest.fail.Exception, match="SKYSOLVE_REQUIRE_ENGINE=1 forbids"):
        require_binary("no-such-solver-binary")


def test_it_fails_on_a_missing_file_when_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYSOLVE_REQUIRE_ENGINE", "1")
    with pytest.raises(pytest.fail.Exception, match="index-x.fits is missing"):
        require_file(tmp_path / "index-x.fits", "the index package")
    (tmp_path / "index-x.fits").write_bytes(b"")
    require_file(tmp_path / "index-x.fits", "the index package")
    require_binary("sh")
