"""``skysolve solve FILE``: solve one image or star list from the command line.

Exit status: 0 solved, 1 not solved, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skysolve.engine.config import EngineConfig
    from skysolve.engine.params import SolveParameters

from skysolve.errors import BadInputError, ConfigurationError, NoIndexError, SolveError

EXIT_SOLVED = 0
EXIT_NOT_SOLVED = 1
EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "solve",
        help="solve an image or star list",
        description="Find where on the sky an image (or a list of star positions) points.",
    )
    p.add_argument("file", type=Path, help="image (FITS, JPEG, PNG, TIFF, ...) or star list")
    g = p.add_argument_group("scale")
    g.add_argument(
        "--scale-units",
        choices=("degwidth", "arcminwidth", "arcsecperpix", "focalmm"),
        default="degwidth",
    )
    g.add_argument("--scale-low", type=float, help="lower bound of the scale")
    g.add_argument("--scale-high", type=float, help="upper bound of the scale")
    g.add_argument("--scale-est", type=float, help="scale estimate (instead of bounds)")
    g.add_argument("--scale-err", type=float, help="error of --scale-est in percent")
    g = p.add_argument_group("position")
    g.add_argument("--ra", type=float, help="RA of the field centre, degrees")
    g.add_argument("--dec", type=float, help="Dec of the field centre, degrees")
    g.add_argument("--radius", type=float, help="search radius around --ra/--dec, degrees")
    g = p.add_argument_group("solver")
    g.add_argument("--parity", type=int, choices=(0, 1, 2), default=2, help="0 pos, 1 neg, 2 both")
    g.add_argument(
        "--tweak-order",
        type=int,
        default=None,
        help="SIP order of the final fit, 0 for none (default: the order the stars support)",
    )
    g.add_argument("--crpix-center", action="store_true", help="reference pixel at the centre")
    g.add_argument("--positional-error", type=float, default=1.0, help="star position error, px")
    g.add_argument("--downsample", type=float, help="bin the image before finding stars")
    g.add_argument("--invert", action="store_true", help="the image is a negative")
    g.add_argument("--use-sextractor", action="store_true", help="find stars with SourceExtractor")
    g.add_argument("--extractor", choices=("sep", "image2xy", "sextractor"), default="sep")
    g.add_argument("--max-sources", type=int, default=1000)
    g.add_argument("--width", type=int, help="image width for a star list")
    g.add_argument("--height", type=int, help="image height for a star list")
    g.add_argument("--no-hints", action="store_true", help="ignore RA/Dec/scale in the file")
    g.add_argument("--timeout", type=float, default=300.0, help="wall-clock limit, seconds")
    p.add_argument(
        "--out", type=Path, help="directory for the result files (default: none are written)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-pictures", action="store_true", help="skip the annotated pictures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from skysolve.engine.config import EngineConfig
    from skysolve.engine.params import SolveParameters

    try:
        params = SolveParameters(
            scale_units=args.scale_units,
            scale_type="ev" if args.scale_est is not None else "ul",
            scale_lower=args.scale_low,
            scale_upper=args.scale_high,
            scale_est=args.scale_est,
            scale_err=args.scale_err,
            center_ra=args.ra,
            center_dec=args.dec,
            radius=args.radius,
            parity=args.parity,
            tweak_order=args.tweak_order,
            crpix_center=args.crpix_center,
            positional_error=args.positional_error,
            downsample_factor=args.downsample,
            invert=args.invert,
            use_sextractor=args.use_sextractor,
            extractor=args.extractor,
            max_sources=args.max_sources,
            image_width=args.width,
            image_height=args.height,
            use_hints=not args.no_hints,
            timeout=args.timeout,
        )
    except BadInputError as exc:
        print(f"skysolve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.file.is_file():
        print(f"skysolve: {args.file}: no such file", file=sys.stderr)
        return EXIT_BAD_INPUT

    config = EngineConfig.from_env()
    if config.fastpath_db is None:
        from skysolve.engine.solving.fastpath import default_db_path

        print(
            f"skysolve: note: no fast-path database at {default_db_path()}: astrometry.net "
            "alone, slower (build it with `skysolve db build`)",
            file=sys.stderr,
        )
    if args.no_pictures:
        config = dataclasses.replace(config, make_pictures=False)
    load_fast_path_early(args.file, params, config)
    from skysolve.engine.pipeline import solve

    if args.out is None:
        # Files in a temporary directory that is removed at exit help nobody:
        # print the result, write nothing.
        config = dataclasses.replace(config, make_pictures=False, write_files=False)
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())

    def progress(stage: str, message: str) -> None:
        print(f"skysolve: {stage}: {message}", file=sys.stderr, flush=True)

    tmp: tempfile.TemporaryDirectory[str] | None = None
    out = args.out
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="skysolve-")
        out = Path(tmp.name)
    try:
        result = solve(args.file, params, out, config=config, cancel=cancel, progress=progress)
    except (BadInputError, ConfigurationError, NoIndexError) as exc:
        # A scale range no installed index covers is a usage problem, not a miss.
        _fail(args, exc)
        return EXIT_BAD_INPUT
    except SolveError as exc:
        _fail(args, exc)
        return EXIT_NOT_SOLVED
    finally:
        signal.signal(signal.SIGINT, previous)
        if tmp is not None and not args.json:
            tmp.cleanup()
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        if tmp is not None:
            tmp.cleanup()
    else:
        _print_human(result)
    return EXIT_SOLVED if result.solved else EXIT_NOT_SOLVED


def load_fast_path_early(path: Path, params: SolveParameters, config: EngineConfig) -> bool:
    """Start loading the fast-path database before the engine is imported,
    when what the first search needs is known before the file is read.

    A blind solve that reads no hints from the file (``--no-hints``, no scale)
    searches the whole database first, whatever the image. Its load (0.1-0.3 s,
    in tetra3rs, which lets other threads run) then goes on beside the rest of
    the engine's imports and the image decoding instead of starting after them,
    its file read from before numpy and the fast path's modules are imported
    (:mod:`skysolve.engine.solving.preload`); the solve finds it loaded, or
    waits for the rest. A hinted or hint-reading solve may need a narrower band
    of the database instead: the pipeline's own prefetch starts that one once
    the hints are known. Not for a FITS file either: its header may show a
    field too narrow for the fast path, which the solve then leaves out without
    loading anything (a Seestar frame): a FITS file's load starts here only
    when its primary header, read without astropy, holds the image and says
    nothing of its scale (:func:`fits_says_no_scale`).
    Returns whether a load was started.
    """
    blind = params.scale_bounds_arcsec_per_pixel(1.0) is None
    if not blind or params.use_hints or config.solvers is not None or config.fastpath_db is None:
        return False
    try:
        with open(path, "rb") as fh:
            if fh.read(9) == b"SIMPLE  =" and not fits_says_no_scale(path):
                return False
    except OSError:
        return False  # the solve reports it
    from skysolve.engine.solving import preload

    # Without a scale the image's size plays no part in the search plan, which
    # starts with the whole database: its file is read from now on, before
    # numpy and the fast path's modules are imported (the load below takes it).
    preload.start(config.fastpath_db)
    from skysolve.engine.solving.base import SolveConstraints
    from skysolve.engine.solving.fastpath import PatternHashSolver

    started: bool = PatternHashSolver(config.fastpath_db).prefetch(SolveConstraints(), 1, 1)
    return started


def fits_says_no_scale(path: Path) -> bool:
    """Whether a FITS file's primary header holds its image and gives no scale
    the solve's blind attempt would narrow its solvers by
    (:func:`~skysolve.engine.inputs.hints.largest_scale`: a WCS, scale
    keywords, the optics); False for anything it cannot tell (an image in an
    extension, a header astropy alone reads)."""
    from skysolve.engine.inputs.fitscards import HeaderCards
    from skysolve.engine.inputs.hints import largest_scale_of

    with open(path, "rb") as fh:
        cards = HeaderCards.read(fh)
    if cards is None or not isinstance(cards.get("NAXIS"), int) or cards["NAXIS"] < 2:
        return False
    width, height = cards.get("NAXIS1"), cards.get("NAXIS2")
    if not isinstance(width, int) or not isinstance(height, int) or min(width, height) < 1:
        return False
    return largest_scale_of(cards, {}, width, height) is None


def _fail(args: argparse.Namespace, exc: SolveError) -> None:
    if args.json:
        print(
            json.dumps(
                {"solved": False, "error": {"code": exc.code, "message": exc.message}}, indent=2
            )
        )
    print(f"skysolve: {exc}", file=sys.stderr)


def _print_human(result: Any) -> None:
    if not result.solved:
        print(f"not solved: {result.failure}")
        return
    c = result.calibration
    print(f"solved by {result.solver} with {result.index}")
    print(f"  centre        RA {c.ra:.6f}  Dec {c.dec:.6f} (deg)")
    print(f"  pixel scale   {c.pixscale:.4f} arcsec/pixel")
    print(f"  field         {c.width_arcsec / 3600:.4f} x {c.height_arcsec / 3600:.4f} deg")
    print(f"  orientation   {c.orientation:.3f} deg E of N, parity {c.parity:+.0f}")
    if result.objects_in_field:
        print("  objects       " + ", ".join(result.objects_in_field[:12]))
    for name, path in sorted(result.files.items()):
        print(f"  {name:<22}{path}")
