"""Real-image benchmark: ``skysolve solve`` against ``solve-field`` on the shared corpus.

Every image of the corpus (``SKYSOLVE_CORPUS``, default
``$SKYSOLVE_TEST_IMAGES/corpus`` = ``../shared/images/corpus``; ``manifest.json``
gives each file's provenance and ``solve-field``'s answer) is solved, in one
run, by ``solve-field`` and by ``skysolve solve`` twice: with the fast-path
database and without it (``SKYSOLVE_FASTPATH_DB`` pointing at no file: the
astrometry.net path alone).  Each case runs blind (no hints at all: skysolve
gets ``--no-hints`` so it does not read the file's header either) and hinted
(scale +-10 % and position from the manifest's reference solution, the same
options to both tools).  Both tools use the same index files (skysolve's
``SKYSOLVE_INDEX_DIRS``, which default to Debian's, as ``solve-field``'s) and
the same limit (``--limit`` seconds: ``--cpulimit`` for solve-field, ``--timeout``
for skysolve); the three runs of a case follow each other, so machine load
hits them alike.

A solution is *right* when its centre is within ``--right-px`` pixels (at the
reference scale) of the reference and its scale within 1 %.  The reference is
``solve-field``'s answer in the manifest where it is known to be right, else the
file's own WCS header.  The shared images ``apod*.jpg`` (the issue's examples)
join as category ``shared`` with ``--shared``.

Per category and mode it prints: cases, solved by each (right/wrong), solved by
only one of them, median and worst time, the median of the per-image time
ratio skysolve/solve-field (over images either solved), and the centre
distance between the two tools' solutions.

    .venv/bin/python bench/real_bench.py                          # everything (long)
    .venv/bin/python bench/real_bench.py --solved-only --limit 60 # what solve-field solves
    .venv/bin/python bench/real_bench.py --only cedar --modes blind --json part1.json
    .venv/bin/python bench/real_bench.py --merge part1.json part2.json   # one table
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from astropy.io import fits

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_load  # noqa: E402
from engine_bench import REFERENCE, timed  # noqa: E402

from skysolve.engine.results import Calibration, wcs_from_header  # noqa: E402
from skysolve.engine.solving.fastpath import default_db_path  # noqa: E402

SHARED_IMAGES = Path(os.environ.get("SKYSOLVE_TEST_IMAGES", REPO.parent / "shared" / "images"))
CORPUS = Path(os.environ.get("SKYSOLVE_CORPUS", SHARED_IMAGES / "corpus"))
#: The three ways each case is solved.
TOOLS = ("solve-field", "skysolve", "skysolve-no-fastpath")
#: Largest scale error of a right solution, against solve-field's in the same run.
RIGHT_SCALE = 0.01
#: ... against the manifest's figure, which solve-field measured its own way (at
#: the reference pixel, not the image centre: 1.1 % apart on a 25-degree field).
MANIFEST_SCALE = 0.02


@dataclass
class Case:
    name: str  # image name + mode
    image: str
    path: str
    category: str
    mode: str  # blind | hinted
    hints: dict[str, float]
    #: ra, dec (centre, deg), pixscale (arcsec/px); None: no known answer.
    reference: dict[str, float] | None


@dataclass
class Run:
    tool: str
    case: str
    solved: bool
    seconds: float
    ra: float | None = None
    dec: float | None = None
    pixscale: float | None = None
    solver: str = ""
    error: str = ""


def reference_of(entry: dict[str, Any]) -> dict[str, float] | None:
    sf = entry.get("solve_field") or {}
    if sf.get("solved") and sf.get("solved_right"):
        return {"ra": sf["ra"], "dec": sf["dec"], "pixscale": sf["scale_arcsec_px"]}
    header = entry.get("header_wcs") or {}
    if header.get("ra") is not None and header.get("scale_arcsec_px"):
        return {"ra": header["ra"], "dec": header["dec"], "pixscale": header["scale_arcsec_px"]}
    return None


def hints_of(reference: dict[str, float], width: int, height: int) -> dict[str, float]:
    """Scale +-10 % and the position, with a search radius of the field's size."""
    field_deg = reference["pixscale"] * max(width, height) / 3600.0
    return {
        "scale_low": reference["pixscale"] * 0.9,
        "scale_high": reference["pixscale"] * 1.1,
        "ra": reference["ra"],
        "dec": reference["dec"],
        "radius": max(1.0, field_deg),
    }


def load_cases(args: argparse.Namespace) -> list[Case]:
    entries: list[dict[str, Any]] = []
    manifest = CORPUS / "manifest.json"
    if manifest.is_file():
        entries = json.loads(manifest.read_text())
    else:
        print(f"note: {manifest} missing; corpus skipped", file=sys.stderr)
    for e in entries:
        e["_path"] = str(CORPUS / e["file"])
    if args.shared:
        for name, ref in REFERENCE.items():
            path = SHARED_IMAGES / name
            if path.is_file():
                from PIL import Image

                with Image.open(path) as im:
                    width, height = im.size
                entries.append(
                    {
                        "name": Path(name).stem,
                        "_path": str(path),
                        "category": "shared",
                        "width": width,
                        "height": height,
                        "_reference": {k: ref[k] for k in ("ra", "dec", "pixscale")},
                        "solve_field": {"solved": True, "solved_right": True},
                    }
                )
    cases: list[Case] = []
    for e in entries:
        if args.only and not any(w in e["name"] or w in e["category"] for w in args.only):
            continue
        if args.solved_only and not ((e.get("solve_field") or {}).get("solved_right")):
            continue
        reference = e.get("_reference") or reference_of(e)
        for mode in args.modes:
            hints: dict[str, float] = {}
            if mode == "hinted":
                if reference is None:
                    continue  # nothing to hint with
                hints = hints_of(reference, e["width"], e["height"])
            cases.append(
                Case(
                    f"{e['name']} {mode}",
                    e["name"],
                    e["_path"],
                    e["category"],
                    mode,
                    hints,
                    reference,
                )
            )
    return cases[: args.max_cases] if args.max_cases else cases


def hint_args(hints: dict[str, float]) -> list[str]:
    args: list[str] = []
    if "scale_low" in hints:
        args += ["--scale-units", "arcsecperpix"]
        args += [
            "--scale-low",
            f"{hints['scale_low']:.6g}",
            "--scale-high",
            f"{hints['scale_high']:.6g}",
        ]
    if "ra" in hints:
        args += ["--ra", f"{hints['ra']:.6f}", "--dec", f"{hints['dec']:.6f}"]
        args += ["--radius", f"{hints['radius']:.4g}"]
    return args


def run_solve_field(case: Case, limit: float) -> Run:
    with tempfile.TemporaryDirectory(prefix="real-bench-sf-") as tmp:
        out = Path(tmp)
        cmd = ["solve-field", "--overwrite", "--no-plots", "--dir", str(out)]
        cmd += ["--cpulimit", str(int(limit)), "--new-fits", "none", case.path]
        seconds, _, _, status = timed(cmd + hint_args(case.hints), limit)
        wcs_files = list(out.glob("*.wcs"))
        if not (wcs_files and list(out.glob("*.solved"))):
            return Run("solve-field", case.name, False, seconds, error=f"exit {status}")
        header = fits.getheader(wcs_files[0])
        width, height = int(header["IMAGEW"]), int(header["IMAGEH"])
        cal = Calibration.from_wcs(wcs_from_header(header, width, height), width, height)
    return Run("solve-field", case.name, True, seconds, cal.ra, cal.dec, cal.pixscale)


def run_skysolve(case: Case, limit: float, fastpath: bool, fastpath_db: Path) -> Run:
    tool = "skysolve" if fastpath else "skysolve-no-fastpath"
    cmd = [str(REPO / ".venv/bin/skysolve"), "solve", case.path, "--json", "--no-pictures"]
    cmd += ["--timeout", str(limit), *hint_args(case.hints)]
    if case.mode == "blind":
        cmd.append("--no-hints")
    # No file there: the astrometry.net path alone.
    db = fastpath_db if fastpath else fastpath_db.with_name("none")
    seconds, _, out, status = timed(["env", f"SKYSOLVE_FASTPATH_DB={db}", *cmd], limit)
    try:
        doc = json.loads(out.decode() or "{}")
    except ValueError:
        doc = {}
    cal = doc.get("calibration") if doc.get("solved") else None
    if not cal:
        message = str((doc.get("error") or {}).get("message", f"exit {status}"))
        return Run(tool, case.name, False, seconds, error=message[:120])
    return Run(
        tool,
        case.name,
        True,
        seconds,
        cal["ra"],
        cal["dec"],
        cal["pixscale"],
        str(doc.get("solver", "")),
    )


def separation_px(a: Run | dict[str, float], b: dict[str, float] | Run, pixscale: float) -> float:
    """Distance between two centres in pixels of ``pixscale``."""

    def radec(x: Run | dict[str, float]) -> tuple[float, float]:
        if isinstance(x, Run):
            assert x.ra is not None and x.dec is not None
            return x.ra, x.dec
        return x["ra"], x["dec"]

    (ra1, de1), (ra2, de2) = radec(a), radec(b)
    ra1, de1, ra2, de2 = map(math.radians, (ra1, de1, ra2, de2))
    cos_sep = math.sin(de1) * math.sin(de2) + math.cos(de1) * math.cos(de2) * math.cos(ra1 - ra2)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos_sep)))) * 3600.0 / pixscale


def verdict(run: Run, case: Case, right_px: float, peer: Run | None = None) -> str:
    """'right', 'wrong', 'solved' (no reference to judge by) or 'no'.

    Right: centre within ``right_px`` pixels and scale within 1 % of
    ``solve-field``'s solution in this run (``peer``, when the manifest says
    solve-field solves this image right and this run agrees with it), or within
    ``right_px`` and 2 % of the manifest's reference (solve-field's own scale
    figure, taken at its reference pixel rather than the image centre: 1.1 %
    apart on a 25-degree field).  Both scales depend on the distortion fit on
    wide fields (apod4, 33 degrees: 1.3 % between the two tools' fits).
    """
    if not run.solved:
        return "no"
    ref = case.reference
    if ref is None or run.pixscale is None:
        return "solved"
    if _close(run, ref, ref["pixscale"], right_px, MANIFEST_SCALE):
        return "right"
    if (
        peer is not None
        and peer is not run
        and peer.solved
        and peer.pixscale
        and _close(peer, ref, ref["pixscale"], right_px, MANIFEST_SCALE)
        and _close(run, peer, peer.pixscale, right_px, RIGHT_SCALE)
    ):
        return "right"
    return "wrong"


def _close(
    run: Run, ref: Run | dict[str, float], pixscale: float, right_px: float, scale: float
) -> bool:
    assert run.pixscale is not None
    return (
        separation_px(run, ref, pixscale) <= right_px
        and abs(run.pixscale / pixscale - 1.0) <= scale
    )


def summarise(cases: list[Case], runs: dict[tuple[str, str], Run], right_px: float) -> str:
    lines = [
        "| category | mode | skysolve | cases | skysolve solved (wrong) | solve-field solved "
        "(wrong) | only skysolve | only solve-field | skysolve median / worst s | "
        "solve-field median / worst s | median ratio | centre distance px median / max |",
        "|" + "---|" * 12,
    ]
    groups = sorted({(c.category, c.mode) for c in cases})
    modes = sorted({c.mode for c in cases})
    groups += [("all", m) for m in modes]
    for category, mode in groups:
        members = [
            c
            for c in cases
            if c.mode == mode
            and category in ("all", c.category)
            and ("solve-field", c.name) in runs
        ]
        for tool in TOOLS[1:]:
            members_t = [c for c in members if (tool, c.name) in runs]
            if not members_t:
                continue
            ours = [runs[(tool, c.name)] for c in members_t]
            theirs = [runs[("solve-field", c.name)] for c in members_t]
            v_ours = [
                verdict(r, c, right_px, p) for r, c, p in zip(ours, members_t, theirs, strict=True)
            ]
            v_theirs = [verdict(r, c, right_px) for r, c in zip(theirs, members_t, strict=True)]
            only_ours = sum(a.solved and not b.solved for a, b in zip(ours, theirs, strict=True))
            only_theirs = sum(b.solved and not a.solved for a, b in zip(ours, theirs, strict=True))
            ratios = [
                a.seconds / b.seconds
                for a, b in zip(ours, theirs, strict=True)
                if b.seconds > 0 and (a.solved or b.solved)
            ]
            distances = [
                separation_px(a, b, b.pixscale)
                for a, b in zip(ours, theirs, strict=True)
                if a.solved and b.solved and b.pixscale
            ]
            label = "with fast path" if tool == "skysolve" else "astrometry.net only"
            lines.append(
                f"| {category} | {mode} | {label} | {len(members_t)} | "
                f"{sum(r.solved for r in ours)} ({v_ours.count('wrong')}) | "
                f"{sum(r.solved for r in theirs)} ({v_theirs.count('wrong')}) | "
                f"{only_ours} | {only_theirs} | {_med_worst(ours)} | {_med_worst(theirs)} | "
                f"{statistics.median(ratios) if ratios else float('nan'):.2f} | "
                f"{_med_max(distances)} |"
            )
    return "\n".join(lines)


def _med_worst(runs: list[Run]) -> str:
    times = [r.seconds for r in runs]
    return f"{statistics.median(times):.2f} / {max(times):.2f}"


def _med_max(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} / {max(values):.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--limit", type=float, default=60.0, help="seconds per solve (default 60)")
    ap.add_argument(
        "--only", nargs="+", metavar="WORD", help="images whose name or category contains a WORD"
    )
    ap.add_argument("--modes", nargs="+", choices=("blind", "hinted"), default=["blind", "hinted"])
    ap.add_argument(
        "--tools",
        nargs="+",
        choices=TOOLS,
        default=list(TOOLS),
        help="which of the three runs to make (solve-field is always needed for the table)",
    )
    ap.add_argument(
        "--solved-only",
        action="store_true",
        help="only images the manifest says solve-field solves right",
    )
    ap.add_argument("--shared", action="store_true", help="also the issue's apod*.jpg images")
    ap.add_argument("--max-cases", type=int, default=0, help="stop after this many cases")
    ap.add_argument("--right-px", type=float, default=5.0, help="centre tolerance of 'right'")
    ap.add_argument("--json", type=Path, help="write every run to this file (for --merge)")
    ap.add_argument("--merge", nargs="+", type=Path, help="print one table from --json files")
    args = ap.parse_args()

    if args.merge:
        cases: list[Case] = []
        runs: dict[tuple[str, str], Run] = {}
        for part in args.merge:
            doc = json.loads(part.read_text())
            for c in doc["cases"]:
                if all(c["name"] != k.name for k in cases):
                    cases.append(Case(**c))
            for r in doc["runs"]:
                run = Run(**r)
                runs[(run.tool, run.case)] = run
        print(summarise(cases, runs, args.right_px))
        return 0

    fastpath_db = default_db_path({**os.environ, "SKYSOLVE_DATA_DIR": str(REPO / "var")})
    if "skysolve" in args.tools and not fastpath_db.is_file():
        print(f"no fast-path database at {fastpath_db}: run make setup", file=sys.stderr)
        return 2
    cases = load_cases(args)
    print(
        f"{len(cases)} cases, limit {args.limit:g} s, fast path {fastpath_db}; "
        f"{machine_load()} at start",
        flush=True,
    )
    runs = {}
    for case in cases:
        done: list[Run] = []
        for tool in args.tools:
            if tool == "solve-field":
                run = run_solve_field(case, args.limit)
            else:
                run = run_skysolve(case, args.limit, tool == "skysolve", fastpath_db)
            runs[(tool, case.name)] = run
            done.append(run)
        print(
            f"  {case.name:<32}"
            + " | ".join(
                f"{r.tool} {verdict(r, case, args.right_px, done[0]):<5} {r.seconds:6.2f}s"
                + (f" {r.solver}" if r.solver else "")
                for r in done
            ),
            flush=True,
        )
        if args.json:  # after every case, so an interrupted run keeps what it did
            args.json.write_text(
                json.dumps(
                    {
                        "cases": [asdict(c) for c in cases],
                        "runs": [asdict(r) for r in runs.values()],
                    },
                    indent=1,
                )
            )
    print(f"\n{machine_load()} at end\n")
    print(summarise(cases, runs, args.right_px))
    return 0


if __name__ == "__main__":
    sys.exit(main())
