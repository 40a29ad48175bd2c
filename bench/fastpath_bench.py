"""Fast-path benchmark: the pattern-hash solver against solve-field on the same images.

Seeded synthetic FITS images (Tycho-2 stars, noise, a gradient, hot pixels,
missing stars) with field widths spread over the database's FOV range (5 to 60
degrees for the default database).  For each image, in this process:

* hinted: read + extract + pattern-hash solve with the scale known to +-10 %,
  extracting only the brightest sources the fast path uses
  (``extract_bright_sources``), as the pipeline does;
* blind: the same without any hint (the FOV ladder);
* the whole in-process pipeline (``pipeline.solve`` with the scale hint, no
  pictures or files: read, extract, solve, calibration, objects in the field);
* astrometry.net alone (in-process engine, the full sep source list, same
  hint), and the cascade (fast path, then astrometry.net when it declines);
* solve-field with the same scale hint on the same file (a subprocess).

Prints per-field lines, then medians, success counts, the speed-up and whether
every fast-path solution is right (grid error against the true WCS) and the
cascade solves a superset of what astrometry.net alone solves.

    .venv/bin/python bench/fastpath_bench.py                # 30 fields
    .venv/bin/python bench/fastpath_bench.py --fields 6 --no-solve-field
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from skysolve.engine.extraction import (  # noqa: E402
    SOLVER_UNIFORMIZE_CELLS,
    extract_bright_sources,
    extract_sources,
    uniformize,
)
from skysolve.engine.inputs.images import load_image  # noqa: E402
from skysolve.engine.params import SolveParameters  # noqa: E402
from skysolve.engine.pipeline import EngineConfig  # noqa: E402
from skysolve.engine.pipeline import solve as pipeline_solve  # noqa: E402
from skysolve.engine.results import SourceList, wcs_from_header  # noqa: E402
from skysolve.engine.solving.astrometry import AstrometryNetSolver  # noqa: E402
from skysolve.engine.solving.base import SolveConstraints, SolverOutcome  # noqa: E402
from skysolve.engine.solving.fastpath import PatternHashSolver, default_db_path, load_database  # noqa: E402
from testfields.synthetic import SyntheticField, make_field, random_specs, write_fits  # noqa: E402


@dataclass
class Row:
    name: str
    width_deg: float
    n_sources: int
    read_s: float
    extract_s: float
    full_extract_s: float
    pipeline_s: float
    pipeline_ok: bool
    hinted_s: float
    hinted_ok: bool
    hinted_err_px: float
    blind_s: float
    blind_ok: bool
    blind_err_px: float
    anet_s: float
    anet_ok: bool
    cascade_ok: bool
    solve_field_s: float
    solve_field_ok: bool


def grid_error(outcome: SolverOutcome, f: SyntheticField) -> float:
    """Largest pixel distance, over a grid across the image, from the true WCS."""
    if not outcome.solved or outcome.wcs_header is None:
        return float("nan")
    w, h = f.spec.width, f.spec.height
    gx, gy = np.meshgrid(np.linspace(1, w, 11), np.linspace(1, h, 9))
    ra, dec = f.wcs.all_pix2world(gx.ravel(), gy.ravel(), 1)
    x, y = wcs_from_header(outcome.wcs_header, w, h).all_world2pix(ra, dec, 1)
    return float(np.max(np.hypot(x - gx.ravel(), y - gy.ravel())))


def run_solve_field(path: Path, lo: float, hi: float, limit: float) -> tuple[float, bool]:
    with tempfile.TemporaryDirectory(prefix="bench-sf-") as tmp:
        cmd = ["solve-field", "--overwrite", "--no-plots", "--dir", tmp, "--new-fits", "none"]
        cmd += ["--cpulimit", str(int(limit)), "--scale-units", "arcsecperpix"]
        cmd += ["--scale-low", f"{lo:.6g}", "--scale-high", f"{hi:.6g}", str(path)]
        t0 = time.monotonic()
        try:
            subprocess.run(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=limit + 30
            )
        except subprocess.TimeoutExpired:
            pass
        seconds = time.monotonic() - t0
        return seconds, any(Path(tmp).glob("*.solved"))


def bench_field(
    name: str,
    f: SyntheticField,
    path: Path,
    solver: PatternHashSolver,
    work: Path,
    *,
    limit: float,
    with_solve_field: bool,
    with_anet: bool,
) -> Row:
    t0 = time.monotonic()
    image = load_image(path)
    t1 = time.monotonic()
    sources: SourceList = extract_bright_sources(
        image.data, count=PatternHashSolver.bright_sources or 300
    )
    sources = uniformize(sources, cells=SOLVER_UNIFORMIZE_CELLS)
    t2 = time.monotonic()
    lo, hi = f.spec.pixscale * 0.9, f.spec.pixscale * 1.1
    hinted_c = SolveConstraints(scale_low=lo, scale_high=hi)
    hinted = solver.solve(sources, hinted_c, work / "hinted", timeout=limit)
    t3 = time.monotonic()
    blind = solver.solve(sources, SolveConstraints(), work / "blind", timeout=limit)
    t4 = time.monotonic()
    params = SolveParameters(
        scale_units="arcsecperpix", scale_lower=lo, scale_upper=hi, use_hints=False, timeout=limit
    )
    config = EngineConfig(fastpath_db=solver.db_path, make_pictures=False, write_files=False)
    p0 = time.monotonic()
    piped = pipeline_solve(path, params, work / "pipeline", config=config)
    pipeline_s = time.monotonic() - p0
    f0 = time.monotonic()
    full = uniformize(
        extract_sources(image.data, method="sep", max_sources=1000), cells=SOLVER_UNIFORMIZE_CELLS
    )
    full_extract_s = time.monotonic() - f0
    anet_s, anet_ok = float("nan"), False
    if with_anet:
        a0 = time.monotonic()
        anet = AstrometryNetSolver().solve(full, hinted_c, work / "anet", timeout=limit)
        anet_s, anet_ok = time.monotonic() - a0, anet.solved
    cascade_ok = hinted.solved or anet_ok
    sf_s, sf_ok = float("nan"), False
    if with_solve_field:
        sf_s, sf_ok = run_solve_field(path, lo, hi, limit)
    return Row(
        name=name,
        width_deg=f.spec.width_deg,
        n_sources=len(sources),
        read_s=t1 - t0,
        extract_s=t2 - t1,
        full_extract_s=full_extract_s,
        pipeline_s=pipeline_s,
        pipeline_ok=piped.solved and piped.solver == solver.name,
        hinted_s=t3 - t2,
        hinted_ok=hinted.solved,
        hinted_err_px=grid_error(hinted, f),
        blind_s=t4 - t3,
        blind_ok=blind.solved,
        blind_err_px=grid_error(blind, f),
        anet_s=anet_s,
        anet_ok=anet_ok,
        cascade_ok=cascade_ok,
        solve_field_s=sf_s,
        solve_field_ok=sf_ok,
    )


def _median(values: list[float]) -> float:
    vals = [v for v in values if v == v]
    return statistics.median(vals) if vals else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", type=Path, default=None, help="database (default: the engine's)")
    ap.add_argument("--fields", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--min-width", type=float, default=5.0, help="narrowest field, degrees")
    ap.add_argument("--max-width", type=float, default=60.0, help="widest field, degrees")
    ap.add_argument("--limit", type=float, default=60.0, help="time limit per solve, seconds")
    ap.add_argument("--no-solve-field", action="store_true", help="skip solve-field")
    ap.add_argument("--no-anet", action="store_true", help="skip in-process astrometry.net")
    args = ap.parse_args()

    db_path = args.db or default_db_path()
    t0 = time.monotonic()
    info = load_database(db_path).info
    print(f"database {info.describe()}; loaded in {time.monotonic() - t0:.2f} s")
    lo_w = max(args.min_width, info.min_fov)
    hi_w = min(args.max_width, info.max_fov)
    specs = random_specs(
        args.fields,
        seed=args.seed,
        min_width_deg=lo_w,
        max_width_deg=hi_w,
        fwhm=2.5,
        noise=8.0,
        sky=500.0,
        gradient=0.2,
        missing_fraction=0.1,
        hot_pixels=20,
    )
    solver = PatternHashSolver(db_path)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="skysolve-fastbench-") as tmp:
        work = Path(tmp)
        # Warm-up: the first solve pays for imports and caches.
        warm = make_field(specs[0], render=False)
        solver.solve(warm.sources, SolveConstraints(), work / "warm", timeout=args.limit)
        for i, spec in enumerate(specs):
            f = make_field(spec)
            path = write_fits(f, work / f"field{i:02d}.fits")
            row = bench_field(
                f"field{i:02d}",
                f,
                path,
                solver,
                work / f"w{i:02d}",
                limit=args.limit,
                with_solve_field=not args.no_solve_field,
                with_anet=not args.no_anet,
            )
            rows.append(row)
            print(
                f"  {row.name} {row.width_deg:5.1f} deg {row.n_sources:4d} src | read "
                f"{row.read_s * 1000:5.1f} ms extract {row.extract_s * 1000:5.1f} ms "
                f"(full sep {row.full_extract_s * 1000:5.1f} ms) | hinted "
                f"{'ok' if row.hinted_ok else 'no'} {row.hinted_s * 1000:6.1f} ms "
                f"(err {row.hinted_err_px:.3f} px) | blind {'ok' if row.blind_ok else 'no'} "
                f"{row.blind_s * 1000:6.1f} ms (err {row.blind_err_px:.3f} px) | pipeline "
                f"{'ok' if row.pipeline_ok else 'no'} {row.pipeline_s * 1000:6.1f} ms | anet "
                f"{'ok' if row.anet_ok else 'no'} {row.anet_s:5.2f} s | solve-field "
                f"{'ok' if row.solve_field_ok else 'no'} {row.solve_field_s:5.2f} s",
                flush=True,
            )
    n = len(rows)
    hinted_total = [r.extract_s + r.hinted_s for r in rows]
    hinted_with_read = [r.read_s + r.extract_s + r.hinted_s for r in rows]
    blind_total = [r.extract_s + r.blind_s for r in rows]
    ratios = [
        r.solve_field_s / (r.read_s + r.extract_s + r.hinted_s)
        for r in rows
        if r.solve_field_s == r.solve_field_s
    ]
    wrong = [
        r.name
        for r in rows
        if (r.hinted_ok and not r.hinted_err_px < 1.0) or (r.blind_ok and not r.blind_err_px < 1.0)
    ]
    superset = all(r.cascade_ok or not r.anet_ok for r in rows)
    print()
    print(f"fields: {n}, widths {lo_w:g}-{hi_w:g} deg, sizes 800x600/1024x768/800x500")
    print(
        f"hinted fast path: solved {sum(r.hinted_ok for r in rows)}/{n}; median "
        f"extract+solve {_median(hinted_total) * 1000:.1f} ms, with FITS read "
        f"{_median(hinted_with_read) * 1000:.1f} ms, solve alone "
        f"{_median([r.hinted_s for r in rows]) * 1000:.1f} ms, worst "
        f"{max(hinted_with_read) * 1000:.1f} ms"
    )
    print(
        f"brightest-source extraction median {_median([r.extract_s for r in rows]) * 1000:.1f}"
        f" ms (the full sep extraction astrometry.net gets: "
        f"{_median([r.full_extract_s for r in rows]) * 1000:.1f} ms)"
    )
    print(
        f"whole pipeline in-process (hinted, no pictures/files): fast path solved "
        f"{sum(r.pipeline_ok for r in rows)}/{n}, median "
        f"{_median([r.pipeline_s for r in rows]) * 1000:.1f} ms, worst "
        f"{max(r.pipeline_s for r in rows) * 1000:.1f} ms"
    )
    print(
        f"blind fast path: solved {sum(r.blind_ok for r in rows)}/{n}; median extract+solve "
        f"{_median(blind_total) * 1000:.1f} ms, worst {max(blind_total) * 1000:.1f} ms"
    )
    if not args.no_anet:
        print(
            f"astrometry.net alone (hinted, in-process): solved {sum(r.anet_ok for r in rows)}/{n},"
            f" median {_median([r.anet_s for r in rows]):.2f} s; cascade solved "
            f"{sum(r.cascade_ok for r in rows)}/{n}; superset: {superset}"
        )
    if not args.no_solve_field:
        print(
            f"solve-field (hinted): solved {sum(r.solve_field_ok for r in rows)}/{n}, median "
            f"{_median([r.solve_field_s for r in rows]):.2f} s; per-field speed-up of the fast "
            f"path (read+extract+solve) median {_median(ratios):.0f}x, min "
            f"{min(ratios) if ratios else float('nan'):.0f}x"
        )
    errs = [r.hinted_err_px for r in rows if r.hinted_ok] + [
        r.blind_err_px for r in rows if r.blind_ok
    ]
    if errs:
        print(
            f"fast-path grid error vs truth: median {_median(errs):.3f} px, max {max(errs):.3f} px"
        )
    print(f"wrong fast-path solutions: {wrong or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
