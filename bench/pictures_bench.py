"""The pictures of a solve: how long the engine takes to draw and write them.

Solves the seeded synthetic fields of ``fastpath_api_bench.py`` (a 1024x768
16-bit TIFF or an 800x600 JPEG with a scale hint, the fast path) in-process,
then times :func:`make_pictures` alone on each solved field, with sep's
sources and the annotations (wall clock and this process's CPU time), and
reports the engine's ``total`` of the solve; medians over the fields.  To
compare with an earlier commit, run this script from an export of that
commit, alternating, in one shell loop::

    git archive 1f92bdb | tar -x -C /tmp/before && cp bench/pictures_bench.py /tmp/before/bench/
    for i in 1 2 3; do
      .venv/bin/python /tmp/before/bench/pictures_bench.py --fields 8
      .venv/bin/python bench/pictures_bench.py --fields 8
    done
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from fastpath_api_bench import bench_specs, jpeg_of, tiff16_of  # noqa: E402

from skysolve.engine.params import SolveParameters  # noqa: E402
from skysolve.engine.pipeline import EngineConfig, solve  # noqa: E402
from skysolve.engine.solving.fastpath import default_db_path, load_database  # noqa: E402
from testfields.synthetic import make_field  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--fields", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--format", choices=("tiff16", "jpeg"), default="tiff16")
    args = ap.parse_args()
    from skysolve.engine.extraction import extract_sources
    from skysolve.engine.inputs.images import load_image
    from skysolve.engine.products.pictures import make_pictures

    info = load_database(default_db_path()).info
    size = (1024, 768) if args.format == "tiff16" else (800, 600)
    specs = bench_specs(args.fields + 1, args.seed, info, size)
    encode = tiff16_of if args.format == "tiff16" else jpeg_of
    config = EngineConfig.from_env()
    totals, walls, cpus = [], [], []
    for i, spec in enumerate(specs):
        field = make_field(spec)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / ("field.tif" if args.format == "tiff16" else "field.jpg")
            path.write_bytes(encode(field))
            params = SolveParameters(
                scale_units="degwidth",
                scale_lower=spec.width_deg * 0.9,
                scale_upper=spec.width_deg * 1.1,
            )
            result = solve(path, params, Path(tmp) / "out", config=config)
            if not result.solved or result.wcs is None:
                print(f"field {i}: not solved")
                continue
            image = load_image(path)
            sources = extract_sources(image.data)
            wall, cpu = time.perf_counter(), time.process_time()
            make_pictures(
                image.data,
                color=image.color,
                bottom_up=image.bottom_up,
                wcs=result.wcs,
                sources=sources,
                catalog_xy=None,
                annotations=result.annotations,
                out_dir=Path(tmp) / "pictures",
            )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if i > 0:  # the first field warms up imports and fonts
                totals.append(result.timings["total"])
                walls.append(wall)
                cpus.append(cpu)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{REPO.name}: {args.format} {size[0]}x{size[1]}, {len(walls)} fields, load {load}: "
        f"make_pictures wall {statistics.median(walls):.3f} s, "
        f"CPU {statistics.median(cpus):.3f} s; engine total {statistics.median(totals):.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
