"""``skysolve index list|recommend|fetch|build|remove|verify``: the index files.

The engine solves with whatever index files sit in ``SKYSOLVE_INDEX_DIRS``;
these commands say what is there, what a field size needs, and put it there
(into the first of those directories, or ``--dir``).  A running service sees
new files at its next solve.  The work is done by
:mod:`skysolve.engine.indexes`; this module parses and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from skysolve.errors import SolveError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _scales(text: str) -> list[int]:
    """``0,1,2`` or ``0-4`` (or a mix) as a sorted list."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                out.update(range(int(a), int(b) + 1))
            elif part:
                out.add(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of scales like 0,1,2 or 0-4"
        ) from None
    if not out or min(out) < 0 or max(out) > 19:
        raise argparse.ArgumentTypeError("scales are 0-19")
    return sorted(out)


def _position_args(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--ra", type=float, help=f"{what}: centre RA (degrees)")
    parser.add_argument("--dec", type=float, help=f"{what}: centre Dec (degrees)")
    parser.add_argument("--radius", type=float, default=0.0, help="radius (degrees)")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("index", help="list, choose, fetch, build and check index files")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("list", help="installed index files and how many jobs each solved")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_list)

    p = actions.add_parser(
        "recommend",
        help="which series and scales a field size needs (quads of 10-100%% of the field)",
        description="Without a size option: the field sizes of this installation's recent jobs.",
    )
    p.add_argument("--fov-deg", type=float, help="field width, degrees")
    p.add_argument("--focal-mm", type=float, help="focal length (with --pixel-um and --pixels)")
    p.add_argument("--pixel-um", type=float, help="pixel size, micrometres")
    p.add_argument("--pixels", type=int, nargs=2, metavar=("W", "H"), help="sensor pixels")
    p.add_argument("--series", type=int, choices=(4100, 4200, 5200), help="prefer this series")
    _position_args(p, "only the tiles of this region")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_recommend)

    p = actions.add_parser("fetch", help="download index files from a mirror, verified")
    p.add_argument("--series", type=int, required=True, choices=(4100, 4200, 5200))
    p.add_argument("--scales", type=_scales, required=True, help="e.g. 0,1,2 or 0-4")
    _position_args(p, "only the healpix tiles covering this region")
    p.add_argument("--mirror", help="base URL of the series (default: SKYSOLVE_INDEX_MIRRORS)")
    p.add_argument("--dir", type=Path, help="where to put them (first SKYSOLVE_INDEX_DIRS)")
    p.add_argument("--force", action="store_true", help="download files already installed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_fetch)

    p = actions.add_parser(
        "build", help="build index files from your own star catalogue (build-astrometry-index)"
    )
    p.add_argument("catalogue", type=Path, help="FITS table or CSV with RA, Dec, magnitude")
    p.add_argument("--scales", type=_scales, required=True, help="e.g. 0-4")
    p.add_argument("--id", type=int, default=9000, help="index id base (default 9000)")
    p.add_argument("--nside", type=int, default=2, help="healpix tiling, 0 for one file (2)")
    p.add_argument("--dir", type=Path, help="where to put them (first SKYSOLVE_INDEX_DIRS)")
    p.set_defaults(func=run_build)

    p = actions.add_parser("remove", help="delete installed index files by name")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=run_remove)

    p = actions.add_parser("verify", help="check that every installed file is a whole index file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_verify)


def _dirs() -> tuple[Path, ...]:
    from skysolve.engine.indexes.installed import index_dirs_from_env

    return index_dirs_from_env()


def _job_records() -> Any:
    """The submissions layer's index statistics, or None when there is no database."""
    try:
        from skysolve.cli.manage import setup_django

        setup_django()
        from skysolve.submissions import indexstats

        indexstats.solved_counts()  # touches the table: fails here if there is none
        return indexstats
    except Exception as exc:  # any database trouble means "no records"
        print(f"skysolve: no job records ({exc.__class__.__name__}: {exc})", file=sys.stderr)
        return None


def run_list(args: argparse.Namespace) -> int:
    from skysolve.engine.indexes.files import find_indexes
    from skysolve.engine.indexes.installed import describe

    try:
        indexes = find_indexes(_dirs(), allow_empty=True)
    except SolveError as exc:
        print(f"skysolve: {exc}", file=sys.stderr)
        return EXIT_FAILED
    stats = _job_records()
    counts: dict[str, int] | None = stats.solved_counts() if stats is not None else None
    rows = [
        {
            "name": ix.name,
            "path": str(ix.path),
            "series": ix.series,
            "scale": ix.scale_number,
            "index_id": ix.index_id,
            "quad_arcmin": [ix.scale_lower / 60.0, ix.scale_upper / 60.0],
            "healpix": ix.healpix,
            "nside": ix.nside,
            "bytes": ix.size_bytes,
            "jobs_solved": None if counts is None else counts.get(ix.name, 0),
        }
        for ix in indexes
    ]
    if args.json:
        print(json.dumps({"dirs": [str(d) for d in _dirs()], "indexes": rows}, indent=2))
        return EXIT_OK
    if not indexes:
        print("no index files in " + ", ".join(str(d) for d in _dirs()))
        return EXIT_OK
    for ix, row in zip(indexes, rows, strict=True):
        solved = "" if row["jobs_solved"] is None else f", solved {row['jobs_solved']} jobs"
        print(f"{describe(ix)}, {ix.size_bytes / 1e6:.1f} MB{solved}  [{ix.path.parent}]")
    total = sum(ix.size_bytes for ix in indexes)
    print(f"{len(indexes)} files, {total / 1e6:.1f} MB")
    return EXIT_OK


def run_recommend(args: argparse.Namespace) -> int:
    from skysolve.engine.indexes.files import find_indexes, format_arcmin
    from skysolve.engine.indexes.series import field_of_camera, recommend

    if args.fov_deg is not None:
        low = high = args.fov_deg
        source = f"a {args.fov_deg:g} degree field"
    elif args.focal_mm is not None:
        if args.pixel_um is None or args.pixels is None:
            print("skysolve: --focal-mm needs --pixel-um and --pixels W H", file=sys.stderr)
            return EXIT_USAGE
        try:
            w, h = field_of_camera(
                focal_mm=args.focal_mm, pixel_um=args.pixel_um, pixels=tuple(args.pixels)
            )
        except SolveError as exc:
            print(f"skysolve: {exc}", file=sys.stderr)
            return EXIT_USAGE
        low, high = min(w, h), max(w, h)
        source = f"a {w:.3g} x {h:.3g} degree field"
    else:
        stats = _job_records()
        widths = stats.recent_field_widths() if stats is not None else []
        if not widths:
            print(
                "skysolve: no solved jobs to take field sizes from: give --fov-deg "
                "or --focal-mm with --pixel-um and --pixels",
                file=sys.stderr,
            )
            return EXIT_USAGE
        low, high = min(widths), max(widths)
        source = f"the {len(widths)} most recent solved jobs ({low:.3g}-{high:.3g} degrees)"
    center = (args.ra, args.dec) if args.ra is not None and args.dec is not None else None
    try:
        rec = recommend(
            low,
            high,
            installed=find_indexes(_dirs(), allow_empty=True),
            center=center,
            radius=args.radius if center is not None else None,
            series=args.series,
        )
    except SolveError as exc:
        print(f"skysolve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({"for": source, **rec.to_json()}, indent=2))
        return EXIT_OK
    print(f"for {source}: index quads of 10% to 100% of the field")
    for item in rec.items:
        q = f"{format_arcmin(item.quad_arcmin[0])}-{format_arcmin(item.quad_arcmin[1])}"
        mb = item.bytes / 1e6
        size = f"{'' if item.bytes_exact else '~'}{mb:,.{0 if mb >= 10 else 1}f} MB"
        tiles = f" ({len(item.files)} tiles, nside {item.nside})" if item.nside else ""
        print(
            f"  {'required   ' if item.required else 'recommended'} {item.series} scale "
            f"{item.scale:2d}: quads {q}, {len(item.files)} file(s){tiles}, {size}, "
            f"installed {len(item.installed)}/{len(item.files)}"
        )
    commands = rec.commands()
    if commands:
        print("to fetch what is missing:")
        for command in commands:
            print(f"  {command}")
    else:
        print("everything recommended is installed")
    return EXIT_OK


class _Bar:
    """A one-line progress bar on stderr (a line every few seconds when not a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.started: dict[str, tuple[float, int]] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if name not in self.started:
            self.started[name] = (now, done)
        finished = total is not None and done >= total
        if not finished and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        t0, d0 = self.started[name]
        rate = (done - d0) / max(now - t0, 1e-6) / 1e6
        if total:
            width = 30
            filled = int(width * done / total)
            text = (
                f"{name} [{'#' * filled}{'.' * (width - filled)}] "
                f"{done / 1e6:,.1f}/{total / 1e6:,.1f} MB {rate:,.0f} MB/s"
            )
        else:
            text = f"{name} {done / 1e6:,.1f} MB {rate:,.0f} MB/s"
        end = "\n" if finished or not self.tty else ""
        print(("\r" if self.tty else "") + text, end=end, file=sys.stderr, flush=True)


def run_fetch(args: argparse.Namespace) -> int:
    from skysolve.engine.indexes.fetch import fetch, mirrors_from_env
    from skysolve.engine.indexes.series import files_for

    center = (args.ra, args.dec) if args.ra is not None and args.dec is not None else None
    if (args.ra is None) != (args.dec is None):
        print("skysolve: give both --ra and --dec, or neither", file=sys.stderr)
        return EXIT_USAGE
    try:
        names = files_for(args.series, args.scales, center=center, radius=args.radius)
        mirror = args.mirror or mirrors_from_env()[args.series]
        dest = args.dir or _dirs()[0]
        print(f"skysolve: {len(names)} file(s) from {mirror} into {dest}", file=sys.stderr)
        from skysolve.engine.indexes.files import find_indexes

        report = fetch(
            names,
            mirror=mirror,
            dest=dest,
            progress=_Bar(),
            force=args.force,
            installed=find_indexes(_dirs(), allow_empty=True),
        )
    except SolveError as exc:
        print(f"skysolve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for problem in report.failed.values():
        print(f"skysolve: {problem}", file=sys.stderr)
    rate = report.bytes / max(report.seconds, 1e-6) / 1e6
    summary = {
        "installed": [str(p) for p in report.installed],
        "already_installed": report.skipped,
        "failed": report.failed,
        "bytes": report.bytes,
        "seconds": report.seconds,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"installed {len(report.installed)}, already there {len(report.skipped)}, "
            f"failed {len(report.failed)}; {report.bytes / 1e6:,.1f} MB in "
            f"{report.seconds:.1f} s ({rate:,.0f} MB/s)"
        )
    return EXIT_FAILED if report.failed else EXIT_OK


def run_build(args: argparse.Namespace) -> int:
    from skysolve.engine.indexes.build import build

    dest = args.dir or _dirs()[0]
    try:
        built = build(
            args.catalogue,
            dest,
            scales=args.scales,
            index_id=args.id,
            nside=args.nside,
            progress=lambda message: print(f"skysolve: {message}", file=sys.stderr, flush=True),
        )
    except SolveError as exc:
        print(f"skysolve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for path in built:
        print(path)
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    from skysolve.engine.indexes.installed import remove

    try:
        removed = remove(args.names, _dirs())
    except (SolveError, OSError) as exc:
        print(f"skysolve: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for path in removed:
        print(f"removed {path}")
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    from skysolve.engine.indexes.installed import describe, verify_file

    checks = []
    for directory in _dirs():
        if directory.is_dir():
            checks += [verify_file(p) for p in sorted(directory.glob("index-*.fits"))]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "path": str(c.path),
                        "ok": c.ok,
                        "problem": c.problem,
                        "hdus": c.hdus,
                        "description": describe(c.index) if c.index else None,
                    }
                    for c in checks
                ],
                indent=2,
            )
        )
    else:
        for c in checks:
            ok = c.ok and c.index is not None
            print(f"ok   {describe(c.index)}" if ok and c.index else f"BAD  {c.path}: {c.problem}")
        print(f"{sum(c.ok for c in checks)} of {len(checks)} files are whole index files")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED
