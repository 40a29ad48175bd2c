"""Wide-angle synthetic frames through the fast path's blind ladder, old guesses against new.

Frames of 800x600 pixels are drawn from the real sky through a rectilinear
lens with radial (Brown) distortion
(:func:`testfields.allsky.wide_angle_lens`) at seeded random
pointings; the brightest sources are found as the pipeline finds them, and
every guess of the blind ladder is tried on them with tetra3rs alone (the
added wide guesses with their pattern budget).  Prints, per field width and
distortion, how many frames each guess matched at the right place and how many
the old ladder (4.8, 14.4, 43.2 degrees) and the new one find at all.

Then the whole fast path (tetra3rs, the refit and the verification) on the
same frames: blind, and with the camera's lens remembered
(:mod:`skysolve.engine.solving.fastpath.lens`: the radial distortion and field
measured from the frame's true lens, as a solve of the camera's previous frame
would keep them): frames solved at the right place (within 0.2 degrees), and
the median time of the solve.

Frames wider than the database (70 degrees by default) are found through
their central crop (:mod:`skysolve.engine.solving.fastpath.crop`); the guess
table, which tries the database's guesses on the whole frame, shows none for them.

Run: ``flock -x /tmp/skysolve-bench.lock .venv/bin/python bench/wide_bench.py``
(``--fovs 35 50 60 70 80 90 100 120 --distortions 0 -0.05 -0.15 --frames 4``;
``--verified-only`` skips the guess table).  A solve more than 0.2 degrees from
the frame's centre is printed with how far (in pixels, through the true lens).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skysolve.engine.allsky.blind import bright_stars
from skysolve.engine.allsky.model import LensModel
from skysolve.engine.extraction import (
    SOLVER_UNIFORMIZE_CELLS,
    extract_bright_sources,
    uniformize,
)
from skysolve.engine.solving.base import SolveConstraints
from skysolve.engine.solving.fastpath import PatternHashSolver, default_db_path, load_database
from skysolve.engine.solving.fastpath.guesses import fov_guesses

try:
    from skysolve.engine.solving.fastpath.lens import radial_of
except ImportError:  # a tree from before the lens memory: blind only
    radial_of = None  # type: ignore[assignment]
from testfields.allsky import wide_frame

OLD_LADDER = (4.8, 14.4, 43.2)
WIDTH, HEIGHT = 800, 600


class _Pixels:
    """A lens model (0-based pixels) as a WCS model of 1-based pixels."""

    def __init__(self, lens: LensModel) -> None:
        self.lens = lens

    def pix2world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.lens.pixel_to_world(np.asarray(x) - 1.0, np.asarray(y) - 1.0)


def _off(model: Any, ra: float, dec: float) -> float:
    """Degrees between (ra, dec) and the sky position of the image centre under ``model``."""
    cra, cdec = model.pix2world(np.array([(WIDTH + 1) / 2.0]), np.array([(HEIGHT + 1) / 2.0]))
    c = math.sin(math.radians(dec)) * math.sin(math.radians(float(cdec[0]))) + math.cos(
        math.radians(dec)
    ) * math.cos(math.radians(float(cdec[0]))) * math.cos(math.radians(float(cra[0]) - ra))
    return math.degrees(math.acos(min(1.0, c)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--fovs", type=float, nargs="+", default=[35.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 120.0]
    )
    ap.add_argument("--distortions", type=float, nargs="+", default=[0.0, -0.05, -0.15])
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--verified-only", action="store_true")
    args = ap.parse_args(argv)
    loaded = load_database(default_db_path())
    guesses = fov_guesses(loaded.info, SolveConstraints(), WIDTH)
    stars = bright_stars(7.0)
    rng = np.random.default_rng(1)
    print("guesses (widest deg, pattern budget):", [(round(g, 1), b) for g, _, b in guesses])
    for fov in args.fovs:
        for distortion in args.distortions:
            hits = {g: 0 for g, _, _ in guesses}
            old = new = unheld = 0
            solved: dict[str, list[float]] = {"blind": []}
            if radial_of is not None:
                solved["remembered lens"] = []
            for seed in range(args.frames):
                ra, roll = rng.uniform(0, 360), rng.uniform(0, 360)
                dec = math.degrees(math.asin(rng.uniform(-1, 1)))
                lens, image = wide_frame(
                    fov,
                    WIDTH,
                    HEIGHT,
                    distortion,
                    ra=ra,
                    dec=dec,
                    roll=roll,
                    stars=stars,
                    seed=seed,
                )
                found = uniformize(
                    extract_bright_sources(image, count=300), cells=SOLVER_UNIFORMIZE_CELLS
                )
                runs = [("blind", SolveConstraints())]
                # What the pipeline remembers of the camera: the radial lens of an
                # earlier frame's answer, stood in for by the true lens.  Where that
                # has no finite sky positions over the whole frame (strong barrel:
                # the synthetic lens ends before the corners), the blind answer's
                # own model, as the pipeline would have it; else nothing remembered.
                kept = None if radial_of is None else radial_of(_Pixels(lens), WIDTH, HEIGHT)
                if radial_of is not None:
                    runs.append(("remembered lens", SolveConstraints()))
                for label, constraints in runs:
                    if label == "remembered lens":
                        if kept is None:
                            unheld += 1
                            continue
                        constraints = SolveConstraints(lens=(kept.k, kept.fov))
                    t0 = time.perf_counter()
                    out = PatternHashSolver(default_db_path()).solve(
                        found, constraints, Path(tempfile.mkdtemp()), timeout=30
                    )
                    seconds = time.perf_counter() - t0
                    if out.solved and _off(out.wcs_model, ra, dec) < 0.2:
                        solved[label].append(seconds)
                        if kept is None and radial_of is not None:
                            kept = radial_of(out.wcs_model, WIDTH, HEIGHT)
                    elif out.solved:
                        cra, cdec = out.wcs_model.pix2world(
                            np.array([(WIDTH + 1) / 2.0]), np.array([(HEIGHT + 1) / 2.0])
                        )
                        tx, ty = lens.world_to_pixel(cra, cdec)
                        px = math.hypot(
                            float(tx[0]) - (WIDTH - 1) / 2, float(ty[0]) - (HEIGHT - 1) / 2
                        )
                        print(f"  OFF ({label}): the centre {px:.1f} px from the truth\n{out.log}")
                if args.verified_only:
                    continue
                found = found.head(100)
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
            if not args.verified_only:
                print(
                    f"{fov:5.1f} deg, distortion {distortion:+.2f}: {row} | "
                    f"old ladder {old}/{args.frames}, new {new}/{args.frames}",
                    flush=True,
                )
            verified = " | ".join(
                f"{label} {len(times)}/{args.frames}"
                + (f" in {1000 * statistics.median(times):.0f} ms" if times else "")
                for label, times in solved.items()
            )
            if unheld:
                verified += f" ({unheld} with no lens to remember)"
            line = f"{fov:5.1f} deg, distortion {distortion:+.2f}, fast path: {verified}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
