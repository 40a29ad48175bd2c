"""All-sky frames of the shared corpus through the blind lens-model search, frame by frame.

For each corpus entry of category ``allsky``: solved or not (and why), matched
stars, residual RMS inside 70 degrees of the axis, the FITS WCS's largest error
against the model, the time of the blind search (image already decoded, the
catalogue loaded once before), and, for frames whose header gives the time,
the site below the optical axis (a check against where the camera is known to
be: MAGIC on La Palma, 28.76 N 17.89 W; IceAct at the South Pole).  Then each
solved frame again from its own model as a stored camera profile (the path a
camera's next frame takes), ``--repeat`` times: its time (the median, and
the range when repeated), matched stars and RMS inside 70 degrees.

Run: ``flock -x /tmp/skysolve-bench.lock .venv/bin/python bench/allsky_bench.py``
(``--corpus DIR`` for another copy of the corpus, ``--only NAME ...`` for some
frames).  Both times are in-process: the image decoded and the catalogue read
before the clock starts, as a worker that has served a frame before sees them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "images" / "corpus"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these frames")
    parser.add_argument(
        "--repeat", type=int, default=1, help="stored-profile solves per frame (default 1)"
    )
    args = parser.parse_args(argv)
    from skysolve.engine.allsky.blind import bright_stars, solve_allsky
    from skysolve.engine.allsky.solver import observation_time, site_below
    from skysolve.engine.allsky.wcs import to_fits_header
    from skysolve.engine.inputs.images import load_image

    manifest = json.loads((args.corpus / "manifest.json").read_text())
    frames = [e for e in manifest if e.get("category") == "allsky"]
    if args.only:
        frames = [e for e in frames if e["name"] in args.only]
    stars = bright_stars()
    print(
        "| frame | solved | why not | sources | matched | RMS <70 deg (px) | "
        "WCS err (px) | blind (s) | profile (s) | profile matched | profile RMS <70 deg (px) | "
        "site below axis |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for entry in frames:
        image = load_image(args.corpus / entry["file"])
        started = time.monotonic()
        solution = solve_allsky(image.data, timeout=args.timeout, stars=stars)
        blind = time.monotonic() - started
        matched = rms = err = profile = site = again_matched = again_rms = "-"
        if solution.model is not None and solution.matched is not None:
            matched = str(len(solution.matched))
            rms = f"{solution.matched.rms(70.0):.2f}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, error = to_fits_header(solution.model, image.width, image.height)
            err = f"{error:.3f}"
            times = []
            for _ in range(max(1, args.repeat)):
                started = time.monotonic()
                again = solve_allsky(
                    image.data, timeout=args.timeout, stars=stars, start=solution.model
                )
                times.append(time.monotonic() - started)
            profile = f"{statistics.median(times):.2f}"
            if len(times) > 1:
                profile += f" ({min(times):.2f}-{max(times):.2f})"
            if again.matched is not None:
                again_matched = str(len(again.matched))
                again_rms = f"{again.matched.rms(70.0):.2f}"
            if not again.solved:
                profile += " (failed)"
            when = observation_time(image.header)
            if when is not None:
                lat, lon = site_below(when, solution.model.ra, solution.model.dec)
                site = f"{lat:+.2f} {lon:+.2f}"
        print(
            f"| {entry['name']} | {'yes' if solution.solved else 'no'} | "
            f"{solution.reason or '-'} | {solution.n_sources} | {matched} | {rms} | {err} | "
            f"{blind:.2f} | {profile} | {again_matched} | {again_rms} | {site} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
