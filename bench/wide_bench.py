"""Wide-angle synthetic frames through the fast path's blind ladder, old guesses against new.

Frames of 800x600 pixels are drawn from the real sky through a rectilinear
lens with radial (Brown) distortion
(:func:`testfields.allsky.wide_angle_lens`) at seeded random
pointings; the brightest sources are found as the pipeline finds them, and
every guess of the blind ladder is tried on them with tetra3rs alone (the
added wide guesses with their pattern budget).  Prints, per field width and
distortion, how many frames each guess matched at the right place and how many
the old ladder (4.8, 14.4, 43.2 degrees) and the new one find at all.

Run: ``flock -x /tmp/skysolve-bench.lock .venv/bin/python bench/wide_bench.py``
(``--fovs 35 50 60 70 --distortions 0 -0.05 --frames 4``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skysolve.engine.allsky.blind import bright_stars
from skysolve.engine.extraction import (
    SOLVER_UNIFORMIZE_CELLS,
    extract_bright_sources,
    uniformize,
)
from skysolve.engine.solving.base import SolveConstraints
from skysolve.engine.solving.fastpath import PatternHashSolver, default_db_path, load_database
from testfields.allsky import (
    corner_angle,
    render_allsky,
    wide_angle_lens,
)

OLD_LADDER = (4.8, 14.4, 43.2)
WIDTH, HEIGHT = 800, 600


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fovs", type=float, nargs="+", default=[35.0, 50.0, 60.0, 70.0])
    ap.add_argument("--distortions", type=float, nargs="+", default=[0.0, -0.05])
    ap.add_argument("--frames", type=int, default=4)
    args = ap.parse_args(argv)
    loaded = load_database(default_db_path())
    guesses = PatternHashSolver._fov_guesses(loaded.info, SolveConstraints(), WIDTH)
    stars = bright_stars(7.0)
    rng = np.random.default_rng(1)
    print("guesses (widest deg, pattern budget):", [(round(g, 1), b) for g, _, b in guesses])
    for fov in args.fovs:
        for distortion in args.distortions:
            hits = {g: 0 for g, _, _ in guesses}
            old = new = 0
            for seed in range(args.frames):
                ra, roll = rng.uniform(0, 360), rng.uniform(0, 360)
                dec = math.degrees(math.asin(rng.uniform(-1, 1)))
                lens = wide_angle_lens(fov, WIDTH, HEIGHT, distortion, ra=ra, dec=dec, roll=roll)
                image = render_allsky(
                    lens,
                    WIDTH,
                    HEIGHT,
                    horizon_deg=corner_angle(fov, WIDTH, HEIGHT) + 3.0,
                    faintest=7.0,
                    stars=stars,
                    seed=seed,
                )
                found = uniformize(
                    extract_bright_sources(image, count=300), cells=SOLVER_UNIFORMIZE_CELLS
                ).head(100)
                centroids = np.column_stack(
                    [
                        np.asarray(found.x) - (WIDTH + 1) / 2,
                        np.asarray(found.y) - (HEIGHT + 1) / 2,
                        np.asarray(found.flux),
                    ]
                )
                matched = set()
                for g, _, budget in guesses:
                    r = loaded.database.solve_from_centroids(
                        centroids,
                        fov_estimate_deg=g,
                        image_width=WIDTH,
                        image_height=HEIGHT,
                        solve_timeout_ms=3000,
                        **({} if budget is None else {"max_patterns_checked": budget}),
                    )
                    if r:
                        d = math.degrees(
                            math.acos(
                                min(
                                    1.0,
                                    math.sin(math.radians(dec)) * math.sin(math.radians(r.dec_deg))
                                    + math.cos(math.radians(dec))
                                    * math.cos(math.radians(r.dec_deg))
                                    * math.cos(math.radians(r.ra_deg - ra)),
                                )
                            )
                        )
                        if d < 1.0:
                            hits[g] += 1
                            matched.add(round(g, 1))
                old += bool(matched & set(OLD_LADDER))
                new += bool(matched)
            row = " ".join(f"{g:.1f}:{n}" for g, n in hits.items())
            print(
                f"{fov:5.1f} deg, distortion {distortion:+.2f}: {row} | "
                f"old ladder {old}/{args.frames}, new {new}/{args.frames}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
