"""A fast-path database for narrow fields: its load, its answers, its misses.

Measures one or more tetra3rs databases (built beforehand with
``skysolve db build --output FILE --min-fov LO --max-fov HI --no-bands``) on
corpus frames, blind:

- ``load``: :func:`load_database` in a fresh process (the first load of a
  process, the file in the page cache), ``--repeat`` times;
- ``cli``: ``skysolve solve FILE --json --no-pictures --no-hints`` with
  ``SKYSOLVE_FASTPATH_DB=DB``, the whole process's wall time, the solver that
  answered, the engine's ``timings`` and the answer's distance from the
  corpus reference (solve-field's answer, or the header's WCS);
- ``warm``: the same solve twice in one process (the database loaded by the
  first), the second one's ``timings``: what a running worker spends.

Usage (under the bench lock)::

    flock -x /tmp/skysolve-bench.lock nice .venv/bin/python bench/narrowdb_bench.py \\
        --db /tmp/narrowdb-dbs/gaia-1.5-4.5.t3db \\
        --db ~/.local/share/skysolve/fastpath/default.t3db \\
        --images panoptes_unsolved cedar_orion_belt --json /tmp/narrowdb.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "images" / "corpus"
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/images/corpus")

LOAD = """
import sys, time
from pathlib import Path
t = time.perf_counter()
from skysolve.engine.solving.fastpath import load_database
info = load_database(Path(sys.argv[1])).info
print(time.perf_counter() - t, info.num_patterns, info.size_bytes)
"""

WARM = """
import json, sys, tempfile
from pathlib import Path
from skysolve.engine.config import EngineConfig
from skysolve.engine.params import SolveParameters
from skysolve.engine.pipeline import solve
import dataclasses
config = dataclasses.replace(EngineConfig.from_env(), make_pictures=False, write_files=False)
params = SolveParameters(use_hints=False, timeout=120)
out = []
for _ in range(2):
    with tempfile.TemporaryDirectory() as tmp:
        r = solve(Path(sys.argv[1]), params, Path(tmp), config=config).to_json()
    keys = ("solved", "solver", "timings", "calibration", "peak_memory_mb")
    out.append({k: r.get(k) for k in keys})
print(json.dumps(out[-1]))
"""


def reference(name: str) -> dict[str, Any]:
    """The corpus answer of ``name`` (solve-field's, else the header's WCS) and its file."""
    for e in json.loads((CORPUS / "manifest.json").read_text()):
        if e["name"] != name:
            continue
        sf = e.get("solve_field") or {}
        if sf.get("solved"):
            return {"ra": sf["ra"], "dec": sf["dec"], "file": e["file"]}
        wcs = e.get("header_wcs") or {}
        return {"ra": wcs.get("ra"), "dec": wcs.get("dec"), "file": e["file"]}
    raise SystemExit(f"{name}: not in the corpus manifest")


def separation_arcsec(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if a.get("ra") is None or b.get("ra") is None:
        return None
    ra1, de1, ra2, de2 = (math.radians(v) for v in (a["ra"], a["dec"], b["ra"], b["dec"]))
    c = math.sin(de1) * math.sin(de2) + math.cos(de1) * math.cos(de2) * math.cos(ra1 - ra2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c)))) * 3600.0


def env_for(db: Path) -> dict[str, str]:
    env = dict(os.environ, SKYSOLVE_FASTPATH_DB=str(db), PYTHONPATH=str(REPO))
    return env


def run_load(db: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", LOAD, str(db)], env=env_for(db), capture_output=True, check=True
    ).stdout.split()
    return {"seconds": float(out[0]), "patterns": int(out[1]), "bytes": int(out[2])}


def summary(doc: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any]:
    cal = doc.get("calibration") or {}
    return {
        "solved": bool(doc.get("solved")),
        "solver": doc.get("solver"),
        "ra": cal.get("ra"),
        "dec": cal.get("dec"),
        "err_arcsec": separation_arcsec(cal, ref) if (ref and cal) else None,
        "timings": doc.get("timings"),
        "peak_memory_mb": doc.get("peak_memory_mb"),
    }


def run_cli(db: Path, image: Path, ref: dict[str, Any] | None) -> dict[str, Any]:
    cmd = [str(REPO / ".venv/bin/skysolve"), "solve", str(image), "--json", "--no-pictures"]
    cmd += ["--no-hints", "--timeout", "120"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env_for(db), capture_output=True, check=False)
    seconds = time.perf_counter() - t
    try:
        doc = json.loads(proc.stdout.decode() or "{}")
    except ValueError:
        doc = {}
    return {"wall": seconds, **summary(doc, ref)}


def run_warm(db: Path, image: Path, ref: dict[str, Any] | None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", WARM, str(image)], env=env_for(db), capture_output=True, check=True
    )
    return summary(json.loads(proc.stdout.decode().strip().splitlines()[-1]), ref)


def fmt(run: dict[str, Any]) -> str:
    t = run.get("timings") or {}
    err = run.get("err_arcsec")
    return (
        f"solved={run['solved']} solver={run['solver']} "
        f"wall={run.get('wall', float('nan')):.3f} total={t.get('total', float('nan')):.3f} "
        f"pattern-hash={t.get('solve:pattern-hash', float('nan')):.3f} "
        f'err={"-" if err is None else f"{err:.1f}"}" '
        f"peak={run.get('peak_memory_mb') or float('nan'):.0f}MB"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", type=Path, action="append", required=True)
    ap.add_argument("--images", nargs="*", default=["panoptes_unsolved"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], choices=["load", "cli", "warm"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results: list[dict[str, Any]] = []
    for db in args.db:
        if "load" not in args.skip:
            loads = [run_load(db) for _ in range(args.repeat)]
            secs = " / ".join(f"{x['seconds']:.3f}" for x in loads)
            print(
                f"{db.name}: load {secs} s, {loads[0]['patterns']} patterns, "
                f"{loads[0]['bytes'] / 1e6:.1f} MB",
                flush=True,
            )
            results.append({"db": str(db), "load": loads})
        for name in args.images:
            ref = reference(name)
            image = CORPUS / ref["file"]
            row: dict[str, Any] = {"db": str(db), "image": name}
            if "cli" not in args.skip:
                row["cli"] = [run_cli(db, image, ref) for _ in range(args.repeat)]
                for r in row["cli"]:
                    print(f"{db.name} {name} cli: {fmt(r)}", flush=True)
            if "warm" not in args.skip:
                row["warm"] = run_warm(db, image, ref)
                print(f"{db.name} {name} warm: {fmt(row['warm'])}", flush=True)
            results.append(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
