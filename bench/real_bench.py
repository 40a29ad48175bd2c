"""Real-image benchmark: ``skysolve solve`` against its peers on the shared corpus.

Every image of the corpus (``SKYSOLVE_CORPUS``, default
``$SKYSOLVE_TEST_IMAGES/corpus`` = ``../shared/images/corpus``; ``manifest.json``
gives each file's provenance and ``solve-field``'s answer) is solved, in one
run, by two peers, ``solve-field`` and StellarSolver (KStars/Ekos' solver
library, driven by ``ssharness`` from ``../shared/tools/stellarsolver`` the way
Ekos' Align module drives it: ``make client-tools`` builds it into
``.venv/bin``; ``--ssharness`` or ``SKYSOLVE_SSHARNESS`` point elsewhere), and
by ``skysolve solve`` twice: with the fast-path database and without it
(``SKYSOLVE_FASTPATH_DB`` pointing at no file: the astrometry.net path alone).
Each case runs blind (no hints at all: skysolve gets ``--no-hints`` so it does
not read the file's header either) and hinted (scale +-10 % and position from
the manifest's reference solution, the same figures to every tool; StellarSolver
gets them as Ekos passes them, ``setSearchScale`` in arcsec/px and
``setSearchPositionInDegrees`` with that search radius).  Every tool uses the
same index files (skysolve's ``SKYSOLVE_INDEX_DIRS``, which default to Debian's,
as ``solve-field``'s) and the same limit (``--limit`` seconds: ``--cpulimit`` for
solve-field, ``solverTimeLimit`` for StellarSolver, ``--timeout`` for skysolve);
the runs of a case follow each other, so machine load hits them alike.

StellarSolver's time is the one its ``RESULT`` line reports from image loading
to the solver's ``ready`` signal (``seconds_total``; the solve alone,
``seconds``, is kept as ``solve_seconds``), not the process's: after a local
solve the library may keep a second solver thread running for a while before
the process exits (that process time is kept as ``process_seconds``).  The
other tools' time is their process's wall time (file to answer).

A solution is *right* when its centre is within ``--right-px`` pixels (at the
reference scale) of the reference and its scale within 1 %.  The reference is
``solve-field``'s answer in the manifest where it is known to be right, else the
file's own WCS header.  The shared images ``apod*.jpg`` (the issue's examples)
join as category ``shared`` with ``--shared``.

Per category and mode it prints: cases, solved by each (right/wrong), solved by
only one of skysolve and solve-field, median and worst time, the median of the
per-image time ratio skysolve/solve-field (over images either solved), and the
centre distance between the two tools' solutions.  A second table compares
skysolve with the *faster peer* of each image (the faster of solve-field and
StellarSolver among those that solved it right): the ratio of the medians, the
worst per-image ratio, and the images where skysolve took more than
``--peer-factor`` (1.5) times the faster peer.

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

from skysolve.engine.indexes.files import DEFAULT_INDEX_DIRS  # noqa: E402
from skysolve.engine.results import Calibration, wcs_from_header  # noqa: E402
from skysolve.engine.solving.fastpath import default_db_path  # noqa: E402

SHARED_IMAGES = Path(os.environ.get("SKYSOLVE_TEST_IMAGES", REPO.parent / "shared" / "images"))
CORPUS = Path(os.environ.get("SKYSOLVE_CORPUS", SHARED_IMAGES / "corpus"))
#: The ways each case is solved.
TOOLS = ("solve-field", "stellarsolver", "skysolve", "skysolve-no-fastpath")
#: The tools skysolve is measured against; the first one judges the others' answers.
PEERS = ("solve-field", "stellarsolver")
#: skysolve's tools (rows of the tables).
OURS = ("skysolve", "skysolve-no-fastpath")
#: Files ssharness reads itself (FITS through cfitsio, the rest through QImage);
#: others (.fits.gz, .fits.fz) are handed to it as a plain FITS copy.
SSHARNESS_FORMATS = (".fits", ".fit", ".fts", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
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
    #: StellarSolver: the solve alone (from start() to ready), and the process's
    #: wall time (which may include a lingering second solver thread).
    solve_seconds: float | None = None
    process_seconds: float | None = None
    #: skysolve: seconds per stage of the solve (its JSON's ``timings``).
    timings: dict[str, float] | None = None


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
    timings = doc.get("timings") if isinstance(doc.get("timings"), dict) else None
    if not cal:
        message = str((doc.get("error") or {}).get("message", f"exit {status}"))
        return Run(tool, case.name, False, seconds, error=message[:120], timings=timings)
    return Run(
        tool,
        case.name,
        True,
        seconds,
        cal["ra"],
        cal["dec"],
        cal["pixscale"],
        str(doc.get("solver", "")),
        timings=timings,
    )


def ssharness_binary(explicit: str | None) -> Path | None:
    """``--ssharness``, else ``SKYSOLVE_SSHARNESS``, else this checkout's
    ``.venv/bin/ssharness``; None when the one named is not an executable file."""
    candidate = Path(
        explicit or os.environ.get("SKYSOLVE_SSHARNESS") or REPO / ".venv/bin/ssharness"
    )
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def index_dirs() -> list[Path]:
    """The folders skysolve solves with (``SKYSOLVE_INDEX_DIRS``, default Debian's)."""
    dirs = os.environ.get("SKYSOLVE_INDEX_DIRS", "")
    if dirs:
        return [Path(d) for d in dirs.split(os.pathsep) if d]
    return list(DEFAULT_INDEX_DIRS)


def stellarsolver_hint_args(hints: dict[str, float]) -> list[str]:
    """The hints as Ekos' Align passes them: setSearchScale and setSearchPositionInDegrees."""
    args: list[str] = []
    if "scale_low" in hints:
        args += ["--scale-units", "arcsecperpix"]
        args += ["--scale-low", f"{hints['scale_low']:.6g}"]
        args += ["--scale-high", f"{hints['scale_high']:.6g}"]
    if "ra" in hints:
        args += ["--ra", f"{hints['ra']:.6f}", "--dec", f"{hints['dec']:.6f}"]
        args += ["--radius", f"{hints['radius']:.4g}"]
    return args


def parse_ssharness(output: str) -> dict[str, Any]:
    """The JSON of ssharness' last ``RESULT`` line ({} when there is none)."""
    doc: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith("RESULT "):
            try:
                doc = json.loads(line[len("RESULT ") :])
            except ValueError:
                doc = {}
    return doc


def run_stellarsolver(case: Case, limit: float, binary: Path, dirs: list[Path]) -> Run:
    with tempfile.TemporaryDirectory(prefix="real-bench-ss-") as tmp:
        image = Path(case.path)
        if not case.path.lower().endswith(SSHARNESS_FORMATS):
            image = Path(tmp) / (image.name.split(".")[0] + ".fits")
            with fits.open(case.path) as hdus:
                hdu = next(h for h in hdus if h.data is not None and h.data.ndim >= 2)
                fits.PrimaryHDU(hdu.data, hdu.header if hdu.header.get("NAXIS") else None).writeto(
                    image
                )
        cmd = [str(binary), str(image), "--solver", "stellarsolver"]
        cmd += ["--timeout", str(int(limit)), "--basepath", str(Path(tmp) / "ss")]
        for d in dirs:
            cmd += ["--index-dir", str(d)]
        process_seconds, _, out, status = timed(cmd + stellarsolver_hint_args(case.hints), limit)
    doc = parse_ssharness(out.decode(errors="replace"))
    if not doc:
        killed = " (killed at the limit + 30 s)" if status == -9 else ""
        return Run(
            "stellarsolver",
            case.name,
            False,
            process_seconds,
            error=f"exit {status}, no RESULT{killed}",
            process_seconds=process_seconds,
        )
    seconds = float(doc.get("seconds_total", doc.get("seconds", process_seconds)))
    solve_seconds = float(doc.get("seconds", seconds))
    sol = doc.get("solution") or {}
    if not (doc.get("solved") and sol.get("pixscale")):
        return Run(
            "stellarsolver",
            case.name,
            False,
            seconds,
            error=f"exit {status}, not solved",
            solve_seconds=solve_seconds,
            process_seconds=process_seconds,
        )
    return Run(
        "stellarsolver",
        case.name,
        True,
        seconds,
        float(sol["ra"]),
        float(sol["dec"]),
        float(sol["pixscale"]),
        f"index {doc.get('index', '?')}, {doc.get('num_stars', '?')} stars",
        solve_seconds=solve_seconds,
        process_seconds=process_seconds,
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


def summarise(
    cases: list[Case], runs: dict[tuple[str, str], Run], right_px: float, peer_factor: float = 1.5
) -> str:
    """Both tables: skysolve against solve-field (and StellarSolver), then the faster peer."""
    with_ss = any(tool == "stellarsolver" for tool, _ in runs)
    head = (
        "| category | mode | skysolve | cases | skysolve solved (wrong) | solve-field solved "
        "(wrong) | "
        + ("StellarSolver solved (wrong) | " if with_ss else "")
        + "only skysolve | only solve-field | skysolve median / worst s | "
        "solve-field median / worst s | "
        + ("StellarSolver median / worst s (solve alone; process) | " if with_ss else "")
        + "median ratio | centre distance px median / max |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for category, mode in _groups(cases):
        members = [
            c
            for c in cases
            if c.mode == mode
            and category in ("all", c.category)
            and ("solve-field", c.name) in runs
        ]
        for tool in OURS:
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
            ss_solved = ss_times = ""
            if with_ss:
                ss = [
                    (runs[("stellarsolver", c.name)], c, p)
                    for c, p in zip(members_t, theirs, strict=True)
                    if ("stellarsolver", c.name) in runs
                ]
                if ss:
                    v_ss = [verdict(r, c, right_px, p) for r, c, p in ss]
                    ss_runs = [r for r, _, _ in ss]
                    n_solved = sum(r.solved for r in ss_runs)
                    ss_solved = f"{n_solved}/{len(ss_runs)} ({v_ss.count('wrong')}) | "
                    ss_times = (
                        f"{_med_worst(ss_runs)} ({_med_of(ss_runs, 'solve_seconds')}; "
                        f"{_med_of(ss_runs, 'process_seconds')}) | "
                    )
                else:
                    ss_solved = ss_times = "- | "
            label = "with fast path" if tool == "skysolve" else "astrometry.net only"
            lines.append(
                f"| {category} | {mode} | {label} | {len(members_t)} | "
                f"{sum(r.solved for r in ours)} ({v_ours.count('wrong')}) | "
                f"{sum(r.solved for r in theirs)} ({v_theirs.count('wrong')}) | {ss_solved}"
                f"{only_ours} | {only_theirs} | {_med_worst(ours)} | {_med_worst(theirs)} | "
                f"{ss_times}"
                f"{statistics.median(ratios) if ratios else float('nan'):.2f} | "
                f"{_med_max(distances)} |"
            )
    return "\n".join(lines) + "\n\n" + summarise_peers(cases, runs, right_px, peer_factor)


def _groups(cases: list[Case]) -> list[tuple[str, str]]:
    groups = sorted({(c.category, c.mode) for c in cases})
    return groups + [("all", m) for m in sorted({c.mode for c in cases})]


@dataclass
class PeerComparison:
    """skysolve's times against the faster peer's, over one group of cases."""

    #: Cases with a run of the tool and of at least one peer.
    cases: int
    #: ... of which no peer solved right (left out of the times below).
    unsolved_by_peers: int
    #: How often each peer was the faster one.
    faster: dict[str, int]
    ours_median: float
    peer_median: float
    #: ours_median / peer_median.
    median_ratio: float
    #: The largest per-image ratio ours / faster peer, and its case.
    worst_ratio: float
    worst_case: str
    #: (case, ratio) of every image where ours took over the factor's times the faster peer.
    over: list[tuple[str, float]]
    #: The median of skysolve's own solve time (its ``timings["total"]``: no
    #: interpreter start-up, like StellarSolver's library time) over the same
    #: images, and its worst ratio to the faster peer; None when a run lacks it.
    inprocess_median: float | None = None
    inprocess_worst: float | None = None


def faster_peer(case: Case, runs: dict[tuple[str, str], Run], right_px: float) -> Run | None:
    """The fastest peer run that solved ``case`` right (None: no peer did).

    A peer that fails fast is no yardstick; "right" is :func:`verdict`'s, with
    solve-field's run as the other peers' judge, as in the first table.
    """
    judge = runs.get((PEERS[0], case.name))
    good = [
        run
        for peer in PEERS
        if (run := runs.get((peer, case.name))) is not None
        and verdict(run, case, right_px, judge) in ("right", "solved")
    ]
    return min(good, key=lambda r: r.seconds) if good else None


def compare_with_peers(
    cases: list[Case],
    runs: dict[tuple[str, str], Run],
    tool: str,
    right_px: float,
    factor: float = 1.5,
) -> PeerComparison | None:
    """``tool``'s time per image against the faster peer's (None: no case to compare)."""
    members = [
        c for c in cases if (tool, c.name) in runs and any((p, c.name) in runs for p in PEERS)
    ]
    if not members:
        return None
    pairs: list[tuple[Case, Run, Run]] = []
    for c in members:
        peer = faster_peer(c, runs, right_px)
        if peer is not None:
            pairs.append((c, runs[(tool, c.name)], peer))
    faster = {p: sum(peer.tool == p for _, _, peer in pairs) for p in PEERS}
    if not pairs:
        nan = float("nan")
        return PeerComparison(len(members), len(members), faster, nan, nan, nan, nan, "", [])
    ratios = [(c.name, ours.seconds / max(peer.seconds, 1e-3)) for c, ours, peer in pairs]
    ours_median = statistics.median(ours.seconds for _, ours, _ in pairs)
    peer_median = statistics.median(peer.seconds for _, _, peer in pairs)
    worst_case, worst = max(ratios, key=lambda item: item[1])
    inprocess = [(ours.timings or {}).get("total") for _, ours, _ in pairs]
    inprocess_median = inprocess_worst = None
    if all(t is not None for t in inprocess):
        totals = [float(t) for t in inprocess if t is not None]
        inprocess_median = statistics.median(totals)
        inprocess_worst = max(
            t / max(peer.seconds, 1e-3) for t, (_, _, peer) in zip(totals, pairs, strict=True)
        )
    return PeerComparison(
        cases=len(members),
        unsolved_by_peers=len(members) - len(pairs),
        faster=faster,
        ours_median=ours_median,
        peer_median=peer_median,
        median_ratio=ours_median / max(peer_median, 1e-3),
        worst_ratio=worst,
        worst_case=worst_case,
        over=sorted(((n, r) for n, r in ratios if r > factor), key=lambda item: -item[1]),
        inprocess_median=inprocess_median,
        inprocess_worst=inprocess_worst,
    )


def summarise_peers(
    cases: list[Case], runs: dict[tuple[str, str], Run], right_px: float, factor: float = 1.5
) -> str:
    """The faster-peer table: per group and skysolve tool, medians, ratios, images over."""
    lines = [
        "| category | mode | skysolve | cases (no peer right) | faster peer: solve-field / "
        "StellarSolver | skysolve median s | faster peer median s | median / faster peer "
        f"median | worst image ratio | over {factor:g}x the faster peer | skysolve in-process "
        "median s (/ faster peer median; worst image ratio) |",
        "|" + "---|" * 11,
    ]
    for category, mode in _groups(cases):
        group = [c for c in cases if c.mode == mode and category in ("all", c.category)]
        for tool in OURS:
            cmp = compare_with_peers(group, runs, tool, right_px, factor)
            if cmp is None:
                continue
            label = "with fast path" if tool == "skysolve" else "astrometry.net only"
            over = ", ".join(f"{n.rsplit(' ', 1)[0]} {r:.2f}x" for n, r in cmp.over) or "none"
            inproc = "-"
            if cmp.inprocess_median is not None and cmp.inprocess_worst is not None:
                inproc = (
                    f"{cmp.inprocess_median:.2f} ({cmp.inprocess_median / cmp.peer_median:.2f}; "
                    f"{cmp.inprocess_worst:.2f})"
                )
            lines.append(
                f"| {category} | {mode} | {label} | {cmp.cases} ({cmp.unsolved_by_peers}) | "
                f"{cmp.faster['solve-field']} / {cmp.faster['stellarsolver']} | "
                f"{cmp.ours_median:.2f} | {cmp.peer_median:.2f} | {cmp.median_ratio:.2f} | "
                f"{cmp.worst_ratio:.2f} ({cmp.worst_case.rsplit(' ', 1)[0]}) | {over} | "
                f"{inproc} |"
            )
    return "\n".join(lines)


def _med_of(runs: list[Run], attr: str) -> str:
    values = [v for r in runs if (v := getattr(r, attr)) is not None]
    return f"{statistics.median(values):.2f}" if values else "-"


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
        help="which runs to make (default all; solve-field is always needed for the tables)",
    )
    ap.add_argument(
        "--ssharness",
        help="StellarSolver's driver (default $SKYSOLVE_SSHARNESS, else .venv/bin/ssharness: "
        "make client-tools)",
    )
    ap.add_argument(
        "--peer-factor",
        type=float,
        default=1.5,
        help="list the images where skysolve takes over this many times the faster peer",
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
        print(summarise(cases, runs, args.right_px, args.peer_factor))
        return 0

    ssharness = ssharness_binary(args.ssharness)
    if args.tools is None:
        args.tools = [t for t in TOOLS if t != "stellarsolver" or ssharness is not None]
        if ssharness is None:
            print("note: no ssharness (make client-tools): StellarSolver left out", file=sys.stderr)
    elif "stellarsolver" in args.tools and ssharness is None:
        print("no ssharness: run make client-tools, or give --ssharness", file=sys.stderr)
        return 2
    fastpath_db = default_db_path({**os.environ, "SKYSOLVE_DATA_DIR": str(REPO / "var")})
    if "skysolve" in args.tools and not fastpath_db.is_file():
        print(f"no fast-path database at {fastpath_db}: run make setup", file=sys.stderr)
        return 2
    dirs = index_dirs()
    cases = load_cases(args)
    print(
        f"{len(cases)} cases, limit {args.limit:g} s, fast path {fastpath_db}, "
        f"index files in {', '.join(map(str, dirs))}; "
        f"{machine_load()} at start",
        flush=True,
    )
    runs = {}
    for case in cases:
        done: list[Run] = []
        for tool in args.tools:
            if tool == "solve-field":
                run = run_solve_field(case, args.limit)
            elif tool == "stellarsolver":
                assert ssharness is not None
                run = run_stellarsolver(case, args.limit, ssharness, dirs)
            else:
                run = run_skysolve(case, args.limit, tool == "skysolve", fastpath_db)
            runs[(tool, case.name)] = run
            done.append(run)
        print(
            f"  {case.name:<32}"
            + " | ".join(
                f"{r.tool} {verdict(r, case, args.right_px, done[0]):<5} {r.seconds:6.2f}s"
                + (
                    f" (solve {r.solve_seconds:.2f}s, process {r.process_seconds:.2f}s)"
                    if r.solve_seconds is not None and r.process_seconds is not None
                    else ""
                )
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
    print(summarise(cases, runs, args.right_px, args.peer_factor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
