"""The fast-path database's file read before the engine's imports, then taken by the load."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skysolve.engine.solving import preload
from skysolve.engine.solving.fastpath import build_database, database, load_database
from tests.conftest import fresh_python


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fast-path database for fields 20 to 30 degrees wide (about a second to build)."""
    path = tmp_path_factory.mktemp("fastpath") / "test.t3db"
    build_database(path, min_fov=20.0, max_fov=30.0, bands=())
    return path


@pytest.fixture(autouse=True)
def new_process() -> None:
    """Nothing loaded or being read, as in a new process."""
    database._cache.clear()
    preload._reads.clear()


def test_the_load_takes_the_database_read_early_instead_of_reading_it_again(db: Path) -> None:
    assert preload.start(db)
    read = preload._reads[str(db.resolve())]
    assert not preload.start(db)  # one read per file
    loaded = load_database(db)
    assert read.database is not None and loaded.database is read.database
    assert not preload._reads  # taken once
    assert loaded.info.min_fov == pytest.approx(20.0)


def test_a_file_changed_after_the_read_started_is_read_again(db: Path) -> None:
    assert preload.start(db)
    read = preload._reads[str(db.resolve())]
    read.thread.join()
    st = db.stat()
    os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    loaded = load_database(db)
    assert read.database is not None and loaded.database is not read.database


def test_a_read_that_fails_leaves_the_load_to_say_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.t3db"
    broken.write_bytes(b"not a database")
    assert preload.start(broken)
    assert preload.take(broken, preload.file_version(broken)) is None
    assert not preload.start(tmp_path / "missing.t3db")
    assert preload.take(tmp_path / "missing.t3db", (0, 0)) is None


def test_starting_the_read_imports_neither_numpy_nor_the_engine() -> None:
    lines = fresh_python(
        "import sys\n"
        "from skysolve.engine.solving import preload\n"
        "print(sorted(m for m in sys.modules if m == 'numpy' or m.startswith('skysolve.engine.')))"
    )
    assert lines == ["['skysolve.engine.solving', 'skysolve.engine.solving.preload']"]
