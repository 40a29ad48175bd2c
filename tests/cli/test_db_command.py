"""`skysolve db build` / `skysolve db info`: the fast path's database."""

from pathlib import Path

import numpy as np
import pytest

from skysolve.cli import main
from skysolve.engine.solving.fastpath.database import STARS_VERSION, stars_stamp, status
from tests.gates import INDEX_PACKAGE, require_file


def _installation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installation whose shared database directory is ``tmp_path / "shared"``
    and data directory ``tmp_path / "var"``, with no database named outright."""
    monkeypatch.delenv("SKYSOLVE_FASTPATH_DB", raising=False)
    monkeypatch.setenv("SKYSOLVE_FASTPATH_DIR", str(tmp_path / "shared"))
    monkeypatch.setenv("SKYSOLVE_DATA_DIR", str(tmp_path / "var"))


def test_it_builds_a_database_and_reports_time_size_and_fov_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "db" / "wide.t3db"
    assert main(["db", "build", "--output", str(out), "--min-fov", "50", "--max-fov", "60"]) == 0
    printed = capsys.readouterr().out
    assert "built in" in printed and "FOV 50-60 deg" in printed and " MB" in printed
    assert out.is_file() and out.with_name("wide.t3db.stars.npz").is_file()
    assert main(["db", "info", str(out)]) == 0
    assert "FOV 50-60 deg" in capsys.readouterr().out


def test_it_builds_in_the_shared_location_that_every_installation_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SKYSOLVE_FASTPATH_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SKYSOLVE_FASTPATH_DIR", raising=False)
    monkeypatch.setenv("SKYSOLVE_DATA_DIR", str(tmp_path / "var"))
    assert main(["db", "build", "--min-fov", "50", "--max-fov", "60"]) == 0
    built = tmp_path / "xdg" / "skysolve" / "fastpath" / "default.t3db"
    assert built.is_file() and not (tmp_path / "var" / "fastpath").exists()
    before = built.stat().st_mtime_ns
    assert main(["db", "build", "--if-missing"]) == 0
    assert built.stat().st_mtime_ns == before
    assert "not rebuilt" in capsys.readouterr().err
    # A second installation, run from another directory, uses the same database.
    monkeypatch.setenv("SKYSOLVE_DATA_DIR", str(tmp_path / "other-installation"))
    monkeypatch.chdir(tmp_path)
    assert main(["db", "info"]) == 0
    assert "FOV 50-60 deg" in capsys.readouterr().out
    from skysolve.engine.pipeline import EngineConfig

    assert EngineConfig.from_env().fastpath_db == built


def test_it_copies_a_database_from_an_old_data_directory_instead_of_rebuilding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "var" / "fastpath" / "default.t3db"
    assert main(["db", "build", "--output", str(old), "--min-fov", "50", "--max-fov", "60"]) == 0
    _installation(tmp_path, monkeypatch)
    assert main(["db", "build", "--if-missing"]) == 0
    assert "copied" in capsys.readouterr().err
    shared = tmp_path / "shared" / "default.t3db"
    assert shared.read_bytes() == old.read_bytes()
    assert shared.with_name("default.t3db.stars.npz").is_file()
    assert main(["db", "info"]) == 0
    assert str(tmp_path / "shared") in capsys.readouterr().out


def test_it_says_where_it_looked_when_there_is_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _installation(tmp_path, monkeypatch)
    assert main(["db", "info"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "shared" / "default.t3db") in err and "skysolve db build" in err


def test_it_builds_from_the_tycho2_stars_of_an_index_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = Path("/usr/share/astrometry/index-tycho2-17.littleendian.fits")
    require_file(index, INDEX_PACKAGE)
    out = tmp_path / "t2.t3db"
    args = ["db", "build", "--output", str(out), "--catalogue", "tycho2"]
    assert main([*args, "--index-file", str(index), "--min-fov", "50", "--max-fov", "60"]) == 0
    assert "tycho2:" in capsys.readouterr().out


def test_it_fails_cleanly_for_a_missing_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "info", str(tmp_path / "none.t3db")]) == 2
    assert "skysolve db build" in capsys.readouterr().err
    assert (
        main(["db", "build", "--output", str(tmp_path / "x"), "--min-fov", "9", "--max-fov", "3"])
        == 2
    )
    assert "min_fov" in capsys.readouterr().err


def test_it_reports_the_database_make_setup_built(capsys: pytest.CaptureFixture[str]) -> None:
    """`make setup` builds the checkout's database; a failed build must not pass CI quietly."""
    from skysolve.engine.solving.fastpath.database import build_db_path

    installed = build_db_path()  # the shared location, where `make setup` builds it
    require_file(installed, "the fast-path database `make setup` builds (skysolve db build)")
    assert main(["db", "info", str(installed)]) == 0
    out = capsys.readouterr().out
    # ... and rebuilt it when an older skysolve had made its stars.
    assert "FOV 4-70 deg" in out and "outdated" not in out


def _unstamp(db: Path, catalogue: str = "gaia") -> None:
    """Make a database's star file as skysolve wrote it before the stamp (version 1)."""
    stars = db.with_name(db.name + ".stars.npz")
    with np.load(stars) as npz:
        old = {name: npz[name] for name in ("ra", "dec", "mag")}
    np.savez(stars, **old, catalogue=np.array(catalogue))


def test_it_rebuilds_a_database_whose_stars_an_older_rule_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _installation(tmp_path, monkeypatch)
    built = tmp_path / "shared" / "default.t3db"
    build = ["db", "build", "--min-fov", "50", "--max-fov", "60", "--no-bands"]
    assert main(build) == 0
    _unstamp(built)
    assert status()["fastpath"] == "outdated"
    assert main(["db", "info"]) == 0
    out, err = capsys.readouterr()
    assert "outdated" in out and "older skysolve" in err
    assert main([*build, "--if-missing"]) == 0
    assert "rebuilding" in capsys.readouterr().err
    assert stars_stamp(built)[1:] == (STARS_VERSION, 2016.0)
    # Written beside the old files and renamed over them: nothing half-made left.
    assert not list(built.parent.glob("*.part"))
    assert status()["fastpath"] == "ok"
    # Rebuilt once: the current one stays.
    before = built.stat().st_mtime_ns
    assert main([*build, "--if-missing"]) == 0
    assert "not rebuilt" in capsys.readouterr().err and built.stat().st_mtime_ns == before
    assert main(["db", "info"]) == 0
    assert "at J2016.0" in capsys.readouterr().out


def test_it_keeps_an_unstamped_tycho2_database_and_rebuilds_an_old_legacy_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _installation(tmp_path, monkeypatch)
    small = ["--min-fov", "50", "--max-fov", "60", "--no-bands"]
    # Only the gaia stars' rule changed: an old Tycho-2 database is kept.
    tycho = tmp_path / "t2" / "default.t3db"
    assert main(["db", "build", "--output", str(tycho), *small]) == 0
    _unstamp(tycho, "tycho2:/usr/share/astrometry/index-tycho2-17.littleendian.fits")
    before = tycho.stat().st_mtime_ns
    assert main(["db", "build", "--output", str(tycho), *small, "--if-missing"]) == 0
    assert "not rebuilt" in capsys.readouterr().err and tycho.stat().st_mtime_ns == before
    # An outdated database under an old data directory is built anew, not copied.
    legacy = tmp_path / "var" / "fastpath" / "default.t3db"
    assert main(["db", "build", "--output", str(legacy), *small]) == 0
    _unstamp(legacy)
    capsys.readouterr()
    assert main(["db", "build", *small, "--if-missing"]) == 0
    assert "copied" not in capsys.readouterr().err
    assert stars_stamp(tmp_path / "shared" / "default.t3db")[1] == STARS_VERSION
