"""The engine's configuration, read from one mapping of settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from skysolve.engine.config import (
    DEFAULT_INDEX_DIRS,
    DataPaths,
    EngineConfig,
    SshSettings,
    problems,
)
from skysolve.errors import ConfigurationError


def test_it_reads_the_defaults_from_an_empty_environment(tmp_path: Path) -> None:
    config = EngineConfig.from_environ({"SKYSOLVE_FASTPATH_DIR": str(tmp_path / "none")})
    assert config.index_dirs == DEFAULT_INDEX_DIRS
    assert config.engine_binary == "astrometry-engine"
    assert config.processes >= 1
    assert config.make_pictures is True
    assert config.allsky == "auto"
    assert config.fastpath_db is None
    assert config.ssh is None
    assert config.solvers is None


def test_it_reads_every_setting(tmp_path: Path) -> None:
    db = tmp_path / "db.t3db"
    db.write_bytes(b"")
    config = EngineConfig.from_environ(
        {
            "SKYSOLVE_INDEX_DIRS": f"{tmp_path}/a:{tmp_path}/b",
            "SKYSOLVE_INDEX_MIRRORS": "5200=http://10.0.0.1/5200/",
            "SKYSOLVE_ENGINE_BINARY": "/opt/engine",
            "SKYSOLVE_SOLVER_PROCESSES": "3",
            "SKYSOLVE_PICTURES": "no",
            "SKYSOLVE_FASTPATH_DB": str(db),
            "SKYSOLVE_ALLSKY": "Off",
            "SKYSOLVE_CACHE_DIR": str(tmp_path / "cache"),
            "SKYSOLVE_SSH_DESTINATION": "solver@sky",
            "SKYSOLVE_SSH_PORT": "2222",
            "SKYSOLVE_SSH_IDENTITY": "/keys/id",
            "SKYSOLVE_SSH_OPTIONS": "StrictHostKeyChecking=yes",
            "SKYSOLVE_SSH_COMMAND": "skysolve solve-server --max-input-mb 10",
            "SKYSOLVE_SSH_CONNECT_TIMEOUT": "0",
        }
    )
    assert config.index_dirs == (tmp_path / "a", tmp_path / "b")
    assert config.index_mirrors == "5200=http://10.0.0.1/5200/"
    assert config.engine_binary == "/opt/engine"
    assert config.processes == 3
    assert config.make_pictures is False
    assert config.fastpath_db == db.resolve()
    assert config.allsky == "off"
    assert config.paths.cache_dir == tmp_path / "cache"
    assert config.paths.profile_dir == tmp_path / "cache" / "allsky-profiles"
    assert config.ssh == SshSettings(
        destination="solver@sky",
        port=2222,
        identity=Path("/keys/id"),
        options=("StrictHostKeyChecking=yes",),
        command="skysolve solve-server --max-input-mb 10",
        connect_timeout=15.0,  # 0: the default
    )


def test_the_fast_path_falls_back_to_an_older_data_dir(tmp_path: Path) -> None:
    legacy = tmp_path / "data" / "fastpath" / "default.t3db"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"")
    paths = DataPaths.from_environ(
        {
            "SKYSOLVE_FASTPATH_DIR": str(tmp_path / "shared"),
            "SKYSOLVE_DATA_DIR": str(legacy.parents[1]),
        }
    )
    assert paths.build_db_path() == tmp_path / "shared" / "default.t3db"
    assert paths.default_db_path() == legacy


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SKYSOLVE_SOLVER_PROCESSES", "two", "SKYSOLVE_SOLVER_PROCESSES must be a whole number"),
        ("SKYSOLVE_ALLSKY", "sometimes", "SKYSOLVE_ALLSKY must be one of auto, first, off"),
        ("SKYSOLVE_SSH_PORT", "0", "SKYSOLVE_SSH_PORT must be a port number"),
        ("SKYSOLVE_SSH_CONNECT_TIMEOUT", "soon", "SKYSOLVE_SSH_CONNECT_TIMEOUT must be a number"),
        ("SKYSOLVE_SSH_OPTIONS", "BatchMode", "SKYSOLVE_SSH_OPTIONS items must be Key=Value"),
        ("SKYSOLVE_SSH_DESTINATION", "a b", "SKYSOLVE_SSH_DESTINATION must be user@host"),
    ],
)
def test_a_bad_value_is_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        EngineConfig.from_environ({variable: value})
    assert list(problems({variable: value})) == [variable]


def test_bad_index_mirrors_do_not_stop_a_solve() -> None:
    # They are parsed where used (skysolve index fetch) and checked by skysolve.E040.
    bad = {"SKYSOLVE_INDEX_MIRRORS": "5200:http://x/"}
    assert EngineConfig.from_environ(bad).index_mirrors == "5200:http://x/"


def test_problems_lists_every_bad_value() -> None:
    found = problems({"SKYSOLVE_ALLSKY": "x", "SKYSOLVE_SSH_PORT": "x"})
    assert set(found) == {"SKYSOLVE_ALLSKY", "SKYSOLVE_SSH_PORT"}
