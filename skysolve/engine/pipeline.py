"""The whole solve: input file (or star list) in, :class:`SolveResult` out.

Stages, each reported through ``progress(stage, message)``: preparing (read the
input, derive hints), extracting (find stars), solving (solvers in turn, with a
blind retry when only automatic hints were used), annotating (files, objects in
the field, pictures), finished.  Everything is written inside ``out_dir``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import resource
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skysolve.engine.indexes.files import DEFAULT_INDEX_DIRS
from skysolve.engine.params import SolveParameters
from skysolve.engine.results import (
    Calibration,
    DeferredHeader,
    HeaderField,
    SolveResult,
    SourceList,
    local_cd_matrix,
    wcs_from_header,
)
from skysolve.engine.solving.astrometry import AstrometryConfig, AstrometryNetSolver, source_table
from skysolve.engine.solving.base import SolveConstraints, Solver, SolverOutcome
from skysolve.engine.solving.fastpath import PatternHashSolver, TanSip, default_db_path
from skysolve.errors import (
    ConfigurationError,
    NoMatchError,
    NoStarsError,
    SolveCancelledError,
    SolveError,
    SolveTimeoutError,
)

if TYPE_CHECKING:
    # astropy is imported where files are written or a solver's header is read:
    # a fast-path answer without files never needs it (a quarter of a second of
    # every ``skysolve solve``).
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.engine.fitting.final import FinalFit
    from skysolve.engine.fitting.refine import Catalogue
    from skysolve.engine.results import CelestialWCS

Progress = Callable[[str, str], None]
#: Called with the result so far when the solution is verified (see :func:`solve`).
Verified = Callable[[SolveResult], None]

#: Share of the time left that an attempt with a learned hint may take before the
#: next attempt (the learned scale alone, then blind) starts.
LEARNED_SHARE = 0.25
#: ...and never more than this many seconds: a right learned hint solves in about
#: a second, while astrometry.net searching around a wrong centre runs on until
#: stopped (measured: the whole share, 15 s of a 60 s budget).
LEARNED_MAX_SECONDS = 10.0

#: Fewer detected sources than this cannot form a quad worth searching for.
MIN_SOURCES = 5
#: The final fit takes the fast path's brightest sources when they are this many
#: (the most it finds is 300), else the full extraction.
FIT_SOURCES = 250

#: Names of the files a solve may write, relative to ``out_dir``.
FILE_NAMES: dict[str, str] = {
    "wcs": "wcs.fits",
    "new_fits": "new-image.fits",
    "rdls": "rdls.fits",
    "axy": "axy.fits",
    "corr": "corr.fits",
    "kml": "field.kml",
    "log": "solve.log",
    "lens": "lens.json",
}

#: When the all-sky lens-model attempt runs (``SKYSOLVE_ALLSKY``): "auto", first
#: for frames showing a fisheye image circle and after the ordinary attempts
#: fail for others; "first", always first (an all-sky camera's own server);
#: "off", never.
ALLSKY_MODES = ("auto", "first", "off")
#: Most seconds the all-sky search takes: a clear frame solves in a few, and a
#: frame it cannot solve (cloud, glare) should not hold the ordinary solvers up.
ALLSKY_MAX_SECONDS = 20.0


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine finds its tools and how hard it may work."""

    index_dirs: tuple[Path, ...] = DEFAULT_INDEX_DIRS
    engine_binary: str = "astrometry-engine"
    processes: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    make_pictures: bool = True
    #: The pattern-hash database (``skysolve db build``); None: astrometry.net only.
    fastpath_db: Path | None = None
    #: Write the result files (WCS, new FITS image, source and match lists, KML,
    #: log).  ``skysolve solve`` without ``--out`` reads only the returned result.
    write_files: bool = True
    #: One of :data:`ALLSKY_MODES`.
    allsky: str = "auto"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> EngineConfig:
        """Read ``SKYSOLVE_INDEX_DIRS`` (colon-separated), ``SKYSOLVE_ENGINE_BINARY``,
        ``SKYSOLVE_SOLVER_PROCESSES``, ``SKYSOLVE_PICTURES`` (0/1) and the fast-path
        database (``SKYSOLVE_FASTPATH_DB``, the shared ``SKYSOLVE_FASTPATH_DIR`` or an
        older ``$SKYSOLVE_DATA_DIR/fastpath/``: :func:`fastpath.default_db_path`)."""
        env = os.environ if environ is None else environ
        dirs = env.get("SKYSOLVE_INDEX_DIRS", "")
        index_dirs = (
            tuple(Path(d) for d in dirs.split(os.pathsep) if d) if dirs else DEFAULT_INDEX_DIRS
        )
        try:
            processes = int(env.get("SKYSOLVE_SOLVER_PROCESSES", "0")) or (os.cpu_count() or 1)
        except ValueError:
            raise ConfigurationError("SKYSOLVE_SOLVER_PROCESSES must be a whole number") from None
        pictures = env.get("SKYSOLVE_PICTURES", "1").strip().lower() not in ("0", "false", "no")
        fastpath_db = default_db_path(dict(env))
        allsky = env.get("SKYSOLVE_ALLSKY", "auto").strip().lower() or "auto"
        if allsky not in ALLSKY_MODES:
            raise ConfigurationError(
                f"SKYSOLVE_ALLSKY must be one of {', '.join(ALLSKY_MODES)}, not {allsky!r}"
            )
        return cls(
            allsky=allsky,
            index_dirs=index_dirs,
            engine_binary=env.get("SKYSOLVE_ENGINE_BINARY", "astrometry-engine"),
            processes=max(1, processes),
            make_pictures=pictures,
            fastpath_db=fastpath_db if fastpath_db.is_file() else None,
        )

    def solvers(self) -> list[Solver]:
        """The solvers to try, fastest first."""
        fast: list[Solver] = []
        if self.fastpath_db is not None and self.fastpath_db.is_file():
            fast.append(PatternHashSolver(self.fastpath_db))
        return fast + [
            AstrometryNetSolver(
                AstrometryConfig(
                    binary=self.engine_binary,
                    index_dirs=self.index_dirs,
                    processes=self.processes,
                )
            )
        ]


#: Share of the time left that hints taken from the file get when a blind retry
#: follows: a right hint solves in well under a second, a wrong one (a header
#: copied from another frame) would otherwise search until the limit.
HINTED_TIME_SHARE = 0.5


class _Clock:
    def __init__(self, timeout: float, cancel: threading.Event | None) -> None:
        self.started = time.monotonic()
        self.timeout = timeout
        self.cancel = cancel
        self.timings: dict[str, float] = {}

    @property
    def remaining(self) -> float:
        return self.timeout - (time.monotonic() - self.started)

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise SolveCancelledError("the solve was cancelled")
        if self.remaining <= 0:
            raise SolveTimeoutError(f"the solve ran past its time limit of {self.timeout:g} s")

    def share(self, fraction: float, most: float) -> _Clock:
        """A clock for one attempt: ``fraction`` of the time left but at most ``most``
        seconds, same cancel and timings."""
        part = _Clock(0.0, self.cancel)
        part.started = time.monotonic()
        part.timeout = max(0.5, min(most, fraction * self.remaining))
        part.timings = self.timings
        return part

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.check()
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.monotonic() - t0


def solve(
    source: Path | SourceList,
    params: SolveParameters,
    out_dir: Path,
    *,
    config: EngineConfig | None = None,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    verified: Verified | None = None,
) -> SolveResult:
    """Solve an image file, a star-list file or a :class:`SourceList`.

    Returns a :class:`SolveResult`, solved or not (an unsolved one carries the
    reason in ``failure``).  ``verified``, when given, is called once, as soon
    as a solution is verified, with the result so far: calibration, WCS header
    and file, objects in the field; the other files and the pictures are not
    made yet, so a caller can publish the answer while they are drawn.
    Raises :class:`~skysolve.errors.BadInputError` for unusable input,
    :class:`~skysolve.errors.SolveCancelledError` when ``cancel`` is set and
    :class:`~skysolve.errors.SolverFailedError` when the solver crashed.
    """
    from skysolve.engine.extraction import (
        SOLVER_UNIFORMIZE_CELLS,
        extract_bright_sources,
        extract_sources,
        resort,
        uniformize,
    )
    from skysolve.engine.inputs import hints as hints_mod
    from skysolve.engine.inputs.images import LoadedImage, load_image
    from skysolve.engine.inputs.starlists import looks_like_star_list, read_star_list

    config = config or EngineConfig.from_env()
    if not params.pictures:
        # The sender draws them on the image it kept (skysolve.engine.offload).
        config = dataclasses.replace(config, make_pictures=False)
    report: Progress = progress or (lambda stage, message: None)
    clock = _Clock(params.timeout, cancel)
    # Absolute: the result lists these paths, and solvers run in other directories.
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "work"
    work.mkdir(exist_ok=True)
    log_lines: list[str] = []

    def note(stage: str, message: str) -> None:
        log_lines.append(f"[{time.monotonic() - clock.started:7.3f}s] {stage}: {message}")
        report(stage, message)

    image: LoadedImage | None = None
    hints_used: dict[str, Any] = {}
    effective = params
    with clock.step("read"):
        if isinstance(source, SourceList):
            sources = source.sorted_by_flux()
            note("preparing", f"star list of {len(sources)} sources")
            if params.file_hints is not None:
                # The sources of an image solved where the image is not: its
                # file's hints came with them (skysolve.engine.offload).
                effective, hints_used = hints_mod.apply_hints(
                    params, params.file_hints, image_width=sources.width
                )
                if hints_used:
                    note("preparing", f"hints from the file: {hints_used}")
        elif looks_like_star_list(Path(source)):
            sources = read_star_list(
                Path(source), image_width=params.image_width, image_height=params.image_height
            ).sorted_by_flux()
            note("preparing", f"star list file with {len(sources)} sources")
        else:
            image = load_image(Path(source))
            note("preparing", f"{image.format} image {image.width}x{image.height}")
            if params.use_hints:
                found = hints_mod.hints_from_image(image)
                effective, hints_used = hints_mod.apply_hints(
                    params, found, image_width=image.width
                )
                if hints_used:
                    note("preparing", f"hints from the file: {hints_used}")
        # What an earlier solve of the same user found fills what the file left
        # open; tried first, with the blind retry behind it like the file's hints.
        size = (image.width, image.height) if image is not None else (sources.width, sources.height)
        effective_from_file = effective
        effective, learned = hints_mod.apply_learned(
            effective, image_width=size[0], image_height=size[1]
        )
        if learned:
            hints_used = dict(hints_used)
            hints_used["learned"] = learned
            hints_used["sources"] = [*hints_used.get("sources", []), learned["source"]]
            note("preparing", f"hints from an earlier solve: {learned}")

    full: SourceList | None = None
    bright: SourceList | None = None
    if image is None:
        full = uniformize(sources, cells=SOLVER_UNIFORMIZE_CELLS)

    def sources_for(count: int | None, *, companion: bool = True) -> SourceList:
        """The full source list, or just the ``count`` brightest when that is all a
        solver needs and nothing else is known yet (found in milliseconds).
        ``companion``: start image2xy's list beside a full extraction (for
        astrometry.net; the final fit needs only sep's)."""
        nonlocal full, bright
        if full is not None:
            return full
        assert image is not None
        if count is not None and params.effective_extractor == "sep":
            if bright is None:
                with clock.step("extract_bright"):
                    bright = uniformize(
                        extract_bright_sources(
                            image.data,
                            count=count,
                            downsample=params.downsample_factor,
                            invert=params.invert,
                        ),
                        cells=SOLVER_UNIFORMIZE_CELLS,
                    )
                note("extracting", f"{len(bright)} brightest sources for the fast path")
            if len(bright) >= MIN_SOURCES:
                return bright
        note("extracting", f"extracting sources with {params.effective_extractor}")
        if companion:
            start_companion()
        with clock.step("extract"):
            if params.effective_extractor == "image2xy":
                full = solve_field_list(image.data)
            else:
                # The engine looks at field stars in list order: spreading the first
                # ones over the whole image (astrometry.net's --uniformize) finds
                # quads sooner.
                full = uniformize(
                    extract_sources(
                        image.data,
                        method=params.effective_extractor,
                        max_sources=params.max_sources,
                        downsample=params.downsample_factor,
                        invert=params.invert,
                        timeout=max(1.0, clock.remaining),
                    ),
                    cells=SOLVER_UNIFORMIZE_CELLS,
                )
        note("extracting", f"{len(full)} sources")
        return full

    def solve_field_list(data: Any) -> SourceList:
        """The list ``solve-field`` makes: image2xy, astrometry.net's resort, uniformize.

        image2xy keeps more than ``max_sources`` before the resort so that the
        raw-flux ranking sees the stars the flux ranking puts last.
        """
        found = extract_sources(
            data,
            method="image2xy",
            max_sources=min(100_000, 2 * params.max_sources),
            downsample=params.downsample_factor,
            invert=params.invert,
            timeout=max(1.0, clock.remaining),
        )
        return uniformize(resort(found).head(params.max_sources), cells=SOLVER_UNIFORMIZE_CELLS)

    companion: list[SourceList] = []
    companion_job: list[Future[tuple[SourceList, float]]] = []

    def start_companion() -> None:
        """Start image2xy (a separate program) while sep runs: the list is ready sooner."""
        if image is None or params.effective_extractor != "sep" or companion_job:
            return
        data = image.data

        def run() -> tuple[SourceList, float]:
            started = time.monotonic()
            return solve_field_list(data), time.monotonic() - started

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image2xy")
        companion_job.append(pool.submit(run))
        pool.shutdown(wait=False)

    def companions() -> Callable[[], list[tuple[str, SourceList]] | None] | None:
        """solve-field's own source list, for astrometry.net to search beside sep's.

        Only for images whose sources sep found (the default extractor): with
        both lists the engine is never worse off than ``solve-field`` on the
        same image.  Returns what the engine polls while it runs on sep's list:
        None until image2xy is done, then the list to add (none when image2xy
        failed, or when its first stars are sep's anyway).
        """
        if image is None or params.effective_extractor != "sep":
            return None
        start_companion()

        def poll() -> list[tuple[str, SourceList]] | None:
            if not companion:
                job = companion_job[0]
                if not job.done():
                    return None
                try:
                    found, seconds = job.result()
                    clock.timings["extract_image2xy"] = seconds
                    companion.append(found)
                except SolveError as exc:
                    # Missing program, crash, its own time limit: sep's list goes on alone.
                    note("extracting", f"image2xy's list left out: {exc}")
                    none = np.zeros(0)
                    companion.append(SourceList(none, none, none, image.width, image.height))
                note("extracting", f"{len(companion[0])} sources from image2xy (solve-field's)")
            if len(companion[0]) < MIN_SOURCES:
                return []
            assert full is not None
            shared = shared_head(full, companion[0])
            if shared >= SAME_HEAD:
                # The same stars lead both lists (clean star fields): a second
                # search would only take the cores from the first.
                note(
                    "solving", f"image2xy's list starts with sep's stars ({shared:.0%}): not added"
                )
                return []
            note("solving", "adding image2xy's list (solve-field's) beside sep's")
            return [("image2xy", companion[0])]

        return poll

    solvers = config.solvers()
    # The solvers of a blind attempt: without the fast path when the file says the
    # field is too narrow for its database (see _blind_solvers).
    blind_solvers = _blind_solvers(solvers, image, note)
    first = constraints_for(effective, size[0])
    first_solvers = blind_solvers if _is_blind(first) else solvers
    if isinstance(first_solvers[0], PatternHashSolver) and image is not None:
        # The database loads beside the source extraction and the annotation
        # catalogues (for a hinted solve of a 10-degree field the whole
        # database, 0.1-0.2 s: a third of the solve).
        if first_solvers[0].prefetch(first, image.width, image.height):
            with clock.step("load_catalogues"):
                from skysolve.engine.products.named_objects import load_catalogues

                load_catalogues()
    sources = sources_for(first_solvers[0].bright_sources)
    width, height = sources.width, sources.height
    result = SolveResult(
        solved=False,
        image_width=width,
        image_height=height,
        hints=hints_used,
        n_sources=len(sources),
        command=reproduce_command(source, params),
        image_format=None if image is None else image.format,
    )

    outcome: SolverOutcome | None = None
    # The all-sky hook: a fisheye frame's lens model, fitted to the stars out to
    # the horizon, where no tangent plane reaches (skysolve.engine.allsky).
    allsky_first = image is not None and _allsky_first(config, image.data)
    allsky_reason = ""
    if allsky_first and len(sources) >= MIN_SOURCES and isinstance(solvers[0], PatternHashSolver):
        # A vignetted wide field looks like a fisheye too: the fast path (well
        # under a second) answers those before the all-sky search.
        outcome, sources = _run_solvers(
            solvers[:1], sources_for, companions, first, work, clock, note, "as given"
        )
    if allsky_first and not (outcome is not None and outcome.solved):
        outcome, allsky_reason = _allsky(image, work, clock, note)
    if outcome is not None and outcome.solved:
        pass
    elif allsky_first and allsky_reason.startswith(("too few stars", "no sky region")):
        # An image circle without stars (cloud, daylight, a lens cap): no
        # ordinary solver finds stars the all-sky search could not.
        result.failure = NoStarsError(f"all-sky frame: {allsky_reason}")
        note("solving", result.failure.message)
    elif len(sources) < MIN_SOURCES:
        result.failure = NoStarsError(
            f"only {len(sources)} sources found; at least {MIN_SOURCES} are needed"
        )
        note("solving", result.failure.message)
    else:
        attempts = [("hinted" if hints_used else "as given", effective)]
        if "center" in hints_used.get("learned", {}):
            # A learned position is the likeliest wrong hint (the user slewed to
            # another target): the learned scale alone is tried before going blind.
            without, _ = hints_mod.apply_learned(
                effective_from_file, image_width=width, image_height=height, position=False
            )
            if without != effective:
                attempts.append(("without the learned position", without))
        if hints_used:
            attempts.append(("blind retry without the hints", params))
        # An all-sky frame without a dark surround fails the ordinary solvers
        # only at the time limit: the all-sky search after them keeps its time.
        solve_clock = clock
        if (
            image is not None
            and config.allsky == "auto"
            and not allsky_first
            and clock.remaining > 2 * ALLSKY_MAX_SECONDS
        ):
            solve_clock = clock.share(1.0 - ALLSKY_MAX_SECONDS / clock.remaining, math.inf)
        timed_out: SolveTimeoutError | None = None
        try:
            for number, (label, attempt_params) in enumerate(attempts):
                constraints = constraints_for(attempt_params, width)
                attempt_clock = solve_clock
                if number < len(attempts) - 1:
                    # A hint can be wrong (another target, another lens, a header
                    # copied from another frame), and a search around a wrong place
                    # is slow to give up: it gets a share of the time, the next
                    # attempt the rest.
                    attempt_clock = (
                        solve_clock.share(LEARNED_SHARE, LEARNED_MAX_SECONDS)
                        if learned
                        else solve_clock.share(HINTED_TIME_SHARE, math.inf)
                    )
                try:
                    outcome, sources = _run_solvers(
                        blind_solvers if _is_blind(constraints) else solvers,
                        sources_for,
                        companions,
                        constraints,
                        work,
                        attempt_clock,
                        note,
                        label,
                    )
                except SolveTimeoutError:
                    if attempt_clock is solve_clock or solve_clock.remaining <= 0:
                        raise
                    note("solving", f"{label}: its share of the time is up")
                    continue
                if outcome is not None and outcome.solved:
                    break
        except SolveTimeoutError as exc:
            if solve_clock is not clock and clock.remaining > 1.0:
                note("solving", "the ordinary solvers' time is up; the all-sky search has the rest")
                timed_out = exc
            elif params.has_scale:
                raise
            else:
                # A blind search that runs out of time has most often been given a
                # field no installed index covers: say which fields they do.
                raise SolveTimeoutError(f"{exc.message}; {_coverage_hint(config)}") from None
        if (
            (outcome is None or not outcome.solved)
            and image is not None
            and config.allsky == "auto"
            and not allsky_first
            and clock.remaining > 1.0
        ):
            outcome, allsky_reason = _allsky(image, work, clock, note)
        if (outcome is None or not outcome.solved) and timed_out is not None:
            # As without the all-sky search: the ordinary solvers' time ran out.
            hint = "" if params.has_scale else f"; {_coverage_hint(config)}"
            raise SolveTimeoutError(
                f"{timed_out.message}{hint}; all-sky lens search: {allsky_reason}"
            )
        if outcome is None or not outcome.solved:
            message = _no_match_message(params, config)
            if allsky_reason:
                message = f"{message}; all-sky lens search: {allsky_reason}"
            result.failure = NoMatchError(message)
            note("solving", result.failure.message)
    result.n_sources = len(sources)

    def write_axy() -> None:
        if config.write_files:
            with clock.step("write_axy"):
                _write_sources(out_dir / FILE_NAMES["axy"], sources)
                result.files["axy"] = out_dir / FILE_NAMES["axy"]

    if outcome is not None:
        log_lines.append(outcome.log)
    final: FinalFit | None = None
    fit_sources = sources
    if outcome is not None and outcome.solved and "lens" in outcome.files:
        final = _lens_fit(outcome)
    elif (
        outcome is not None
        and outcome.solved
        and HeaderField.raw(outcome, "wcs_header") is not None
    ):
        # The final fit matches sep's list whichever list solved (image2xy's
        # for astrometry.net, say); the fast path's brightest few only when
        # they are enough: the full extraction costs 0.05-0.2 s, a fast-path
        # answer 0.3 s in all.
        fit_sources = sources
        if image is None or params.effective_extractor == "sep":
            if full is not None or len(sources) < FIT_SOURCES:
                fit_sources = sources_for(None, companion=False)
        with clock.step("final_fit"):
            final = _final_fit(outcome, image, fit_sources, params, config, note)
        if final.verdict == "implausible":
            result.failure = NoMatchError(f"the solution was rejected: {final.reason}")
            note("solving", result.failure.message)
    if final is not None and final.verdict != "implausible":
        assert outcome is not None
        note("annotating", f"solved by {outcome.solver} with {outcome.index}")
        with clock.step("annotate"):
            _finish_solved(
                result, outcome, final, image, sources, fit_sources, out_dir, config, note, clock,
                verified,
            )  # fmt: skip
        write_axy()  # after the answer: the source list is a file, not part of it
    else:
        write_axy()
        if image is not None and config.make_pictures:
            with clock.step("pictures"):
                _pictures(result, image, sources, None, None, [], out_dir)

    verified_after = result.timings.get("verified")
    result.timings = dict(clock.timings)
    if verified_after is not None:
        result.timings["verified"] = verified_after
    result.timings["total"] = time.monotonic() - clock.started
    result.peak_memory_mb = peak_memory_mb()
    note("finished", "solved" if result.solved else f"not solved: {result.failure}")
    result.log = "\n".join(log_lines) + "\n"
    if config.write_files:
        log_path = out_dir / FILE_NAMES["log"]
        log_path.write_text(result.log)
        result.files["log"] = log_path
    shutil.rmtree(work, ignore_errors=True)
    return result


def _allsky_first(config: EngineConfig, data: Any) -> bool:
    """Whether the all-sky attempt goes before the ordinary solvers."""
    if config.allsky == "first":
        return True
    if config.allsky == "off":
        return False
    from skysolve.engine.allsky.sky import looks_like_allsky

    return looks_like_allsky(data)


def _allsky(image: Any, work: Path, clock: _Clock, note: Progress) -> tuple[SolverOutcome, str]:
    """The all-sky lens-model attempt; its outcome and, when not solved, why."""
    from skysolve.engine.allsky.solver import allsky_attempt

    note("solving", "all-sky lens model")
    with clock.step("solve:allsky"):
        outcome, solution = allsky_attempt(
            image,
            work / "allsky",
            timeout=max(1.0, min(clock.remaining, ALLSKY_MAX_SECONDS)),
            cancel=clock.cancel,
            note=lambda line: note("solving", line),
        )
    return outcome, "" if outcome.solved else solution.reason


def _no_match_message(params: SolveParameters, config: EngineConfig) -> str:
    """ "no solution found", and for a blind solve which fields the indexes cover.

    Without a scale hint a field of any size was tried against every index, so
    the likeliest reason is a field outside what they cover: say what that is.
    (The last attempt is ``params`` itself: hints from the file, if any, were
    tried first and dropped for the blind retry.)
    """
    if params.has_scale:
        return "no solution found"
    return f"no solution found (blind): {_coverage_hint(config)}"


def _coverage_hint(config: EngineConfig) -> str:
    from skysolve.engine.indexes.files import describe_coverage, find_indexes

    try:
        indexes = find_indexes(config.index_dirs, allow_empty=True)
    except ConfigurationError:
        return "the index files could not be listed"
    return (
        f"{describe_coverage(indexes)}; a field outside that range needs other index "
        "files (`skysolve index recommend --fov-deg WIDTH`)"
    )


#: Head of the lists compared by :func:`shared_head` (the engine's first depths).
HEAD_SOURCES = 30
#: Share of image2xy's head found in sep's at or above which sep's list goes alone.
SAME_HEAD = 0.8


def shared_head(ours: SourceList, theirs: SourceList, *, head: int = HEAD_SOURCES) -> float:
    """Share of the first ``head`` sources of ``theirs`` within 2 px of one of the
    first ``2 * head`` of ``ours``.

    The engine builds its quads from the head of a list; where two lists of one
    image start with the same stars, searching both costs twice and finds nothing
    more.  On pictures with nebulae or saturated stars they start differently.
    """
    a = np.column_stack([ours.x[: 2 * head], ours.y[: 2 * head]]).astype(float)
    b = np.column_stack([theirs.x[:head], theirs.y[:head]]).astype(float)
    if len(a) == 0 or len(b) == 0:
        return 0.0
    distance = np.hypot(b[:, None, 0] - a[None, :, 0], b[:, None, 1] - a[None, :, 1])
    return float(np.mean(distance.min(axis=1) <= 2.0))


#: A field narrower than the file's metadata says by this factor is not expected.
METADATA_FOV_MARGIN = 1.5


def _is_blind(constraints: SolveConstraints) -> bool:
    return constraints.scale_low is None and constraints.scale_high is None


def _blind_solvers(solvers: list[Solver], image: Any, note: Progress) -> list[Solver]:
    """The solvers for an attempt without a scale: ``solvers`` itself, or the
    same without the fast path when the image's own metadata (a FITS WCS, scale
    keywords, ``FOCALLEN`` with a pixel size, EXIF focal lengths: the hints a
    hinted solve would use) puts the field, even ``METADATA_FOV_MARGIN`` times
    wider, below what the fast path's blind ladder can find.

    The metadata only decides which solvers run, never what they search: a
    blind solve (``--no-hints``) stays blind, and a wrong header costs the
    fast path's chance, not the answer (astrometry.net searches every scale).
    A 1.3-degree Seestar frame (FOCALLEN 250, XPIXSZ 2.9) otherwise waited for
    the whole database's load and the ladder, 0.3-0.7 s, before astrometry.net
    started.
    """
    fast = solvers[0]
    if image is None or len(solvers) < 2 or not isinstance(fast, PatternHashSolver):
        return solvers
    from skysolve.engine.inputs.hints import largest_scale

    found = largest_scale(image)
    if found is None:
        return solvers
    scale, where = found
    widest = METADATA_FOV_MARGIN * scale * max(image.width, image.height) / 3600.0
    if not fast.too_narrow(widest):
        return solvers
    note(
        "preparing",
        f"the file says the field is under {widest:.2g} deg ({where}): too narrow "
        "for the fast path's database; a blind search goes to astrometry.net",
    )
    return solvers[1:]


def constraints_for(params: SolveParameters, image_width: int) -> SolveConstraints:
    """Turn user parameters into solver constraints (scale in arcsec/pixel)."""
    bounds = params.scale_bounds_arcsec_per_pixel(image_width)
    lo, hi = bounds if bounds is not None else (None, None)
    if hi is not None and math.isinf(hi):
        hi = None
    radius = params.radius
    if params.has_position and radius is None:
        radius = 180.0
    return SolveConstraints(
        scale_low=lo or None,
        scale_high=hi,
        center_ra=params.center_ra,
        center_dec=params.center_dec,
        radius=radius,
        parity=params.parity,
        # The solvers' own tweak; the final fit chooses its order unless asked.
        tweak_order=2 if params.tweak_order is None else params.tweak_order,
        crpix_center=params.crpix_center,
        positional_error=params.positional_error,
    )


def _run_solvers(
    solvers: Sequence[Solver],
    sources_for: Callable[[int | None], SourceList],
    companions: Callable[[], Callable[[], list[tuple[str, SourceList]] | None] | None],
    constraints: SolveConstraints,
    work: Path,
    clock: _Clock,
    note: Progress,
    label: str,
) -> tuple[SolverOutcome | None, SourceList]:
    """The first solver's solution, or the last one's failure; and the sources used.

    astrometry.net starts on ``sources`` and polls ``companions()`` for more lists
    of the same image to search at once; the sources returned are then the list
    that solved.
    """
    outcome: SolverOutcome | None = None
    sources = sources_for(solvers[0].bright_sources)  # what a failure reports
    for solver in solvers:
        clock.check()
        sources = sources_for(solver.bright_sources)
        later = companions() if isinstance(solver, AstrometryNetSolver) else None
        note("solving", f"{solver.name} ({label})")
        with clock.step(f"solve:{solver.name}"):
            if later is not None:
                assert isinstance(solver, AstrometryNetSolver)
                outcome = solver.solve_lists(
                    [("sep", sources)],
                    constraints,
                    work / solver.name.replace(".", "_"),
                    timeout=max(0.5, clock.remaining),
                    cancel=clock.cancel,
                    later=later,
                )
            else:
                from threadpoolctl import threadpool_limits

                # The fast path's refit and verification: small least squares,
                # where BLAS threads only wait for each other (see _final_fit).
                with threadpool_limits(limits=1, user_api="blas"):
                    outcome = solver.solve(
                        sources,
                        constraints,
                        work / solver.name.replace(".", "_"),
                        timeout=max(0.5, clock.remaining),
                        cancel=clock.cancel,
                    )
        if outcome.solved:
            if outcome.sources is not None:
                sources = outcome.sources
                note("solving", f"solved from the {outcome.source_list} source list")
            return outcome, sources
    return outcome, sources


def _start_wcs(outcome: SolverOutcome, width: int, height: int) -> CelestialWCS | Any:
    """The solver's WCS: the fast path's own model, or astropy's of its header."""
    if outcome.wcs_model is not None:
        return outcome.wcs_model
    assert outcome.wcs_header is not None
    return wcs_from_header(outcome.wcs_header, width, height)


#: Fewer fast-path reference stars than this in the frame: the final fit matches
#: against the densest index file's stars instead (Tycho-2 to V_T 15 against
#: Gaia to G 10: narrower or sparser fields).
MIN_REFERENCE_STARS = 100
#: The fast path's reference stars per square degree, on average (Gaia to G 10).
GAIA_PER_SQ_DEG = 11.7


def _refit_stars(
    config: EngineConfig, wcs: Any, width: int, height: int
) -> tuple[Catalogue, str] | None:
    """The catalogue the final fit matches against, and its magnitude band.

    The fast path's reference stars (in memory already after a fast-path
    answer) where ``MIN_REFERENCE_STARS`` of them fall in the frame, else the
    densest index file's stars around the field.  The choice depends on the
    field and the installed files, never on which solver or index found it.
    """
    from skysolve.engine.solving.fastpath import reference_stars

    cx, cy = (width + 1) / 2.0, (height + 1) / 2.0
    corners = np.array([[cx, cy], [0.5, 0.5], [width + 0.5, height + 0.5]])
    corners = np.vstack([corners, [[0.5, height + 0.5], [width + 0.5, 0.5]]])
    ra, dec = np.radians(np.asarray(wcs.all_pix2world(corners, 1), dtype=float)).T
    xyz = np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    reach = math.degrees(float(np.max(np.arccos(np.clip(xyz[1:] @ xyz[0], -1.0, 1.0)))))
    # A field whose area holds too few of them even at three times the average
    # density does not load them (0.2-0.3 s when the fast path did not).
    area = abs(float(np.linalg.det(local_cd_matrix(wcs, cx, cy)))) * width * height
    dense_enough = area * 3.0 * GAIA_PER_SQ_DEG >= MIN_REFERENCE_STARS
    if config.fastpath_db is not None and dense_enough:
        try:
            stars = reference_stars(config.fastpath_db)
        except ConfigurationError:
            stars = None
        if stars is not None:
            cone = np.flatnonzero(stars.xyz @ xyz[0] >= math.cos(math.radians(reach)))
            sky = np.column_stack([np.asarray(stars.ra)[cone], np.asarray(stars.dec)[cone]])
            with np.errstate(all="ignore"):
                xy = np.asarray(wcs.all_world2pix(sky, 1, quiet=True), dtype=float)
            inside = (xy[:, 0] > 0.5) & (xy[:, 0] < width + 0.5)
            inside &= (xy[:, 1] > 0.5) & (xy[:, 1] < height + 0.5)
            if np.count_nonzero(inside) >= MIN_REFERENCE_STARS:
                return stars, "G" if stars.catalogue == "gaia" else "VT"
    # Imported here: the index reader brings astropy (a quarter of a second).
    from skysolve.engine.indexes.catalog import densest_index, index_cone

    try:
        path = densest_index(config.index_dirs)
        stars_near = index_cone(
            path, math.degrees(ra[0]), math.degrees(dec[0]), reach * 1.15 + 0.05
        )
    except SolveError:  # no index files, or a broken one: the verified answer stands
        return None
    return stars_near, "VT"


def _final_fit(
    outcome: SolverOutcome,
    image: Any,
    sources: SourceList,
    params: SolveParameters,
    config: EngineConfig,
    note: Progress,
) -> FinalFit:
    """The one final fit of every verified answer (:mod:`skysolve.engine.fitting`)."""
    from threadpoolctl import threadpool_limits

    from skysolve.engine.fitting.final import FinalFit

    width, height = sources.width, sources.height
    start = _start_wcs(outcome, width, height)
    found = _refit_stars(config, start, width, height)
    if found is None:
        note("solving", "final fit: no catalogue to match against; the verified WCS stays")
        return FinalFit("kept", None, reason="no catalogue")
    stars, band = found
    note("solving", f"final fit against {len(stars.ra)} catalogue stars ({band})")
    # Hundreds of small least-squares problems: BLAS threads only wait for
    # each other (1.2 s against 0.2 s on a busy two-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        final = _run_final_fit(sources, image, start, stars, band, params)
    q = final.quality
    if final.verdict == "refit":
        note(
            "solving",
            f"final fit: SIP order {q['sip_order']} through {q['matched_stars']} stars, "
            f"RMS {q['rms_px']} px (the verified WCS: {q['verified_rms_px']} px on them)",
        )
    else:
        note("solving", f"final fit: {final.verdict}: {final.reason}")
    return final


def _lens_fit(outcome: SolverOutcome) -> FinalFit:
    """An all-sky answer's own fit: the lens search fits its model to every matched
    star out to the horizon (:mod:`skysolve.engine.allsky`), where a tangent
    plane with a polynomial, the final fit's model, cannot reach."""
    from skysolve.engine.fitting.final import FinalFit

    doc = json.loads(outcome.files["lens"].read_text())
    quality = {
        "matched_stars": doc.get("matched_stars"),
        "rms_px": doc.get("rms_px"),
        "lens_projection": (doc.get("lens_model") or {}).get("projection"),
    }
    kept = {key: value for key, value in quality.items() if value is not None}
    return FinalFit("kept", None, quality=kept, reason="an all-sky lens model")


def _run_final_fit(
    sources: SourceList,
    image: Any,
    start: Any,
    stars: Catalogue,
    band: str,
    params: SolveParameters,
) -> FinalFit:
    from skysolve.engine.fitting.final import final_fit

    return final_fit(
        np.asarray(sources.x), np.asarray(sources.y), np.asarray(sources.flux),
        width=sources.width, height=sources.height, start=start, stars=stars, band=band,
        order=params.tweak_order, positional_error=params.positional_error,
        image=None if image is None else image.data,
    )  # fmt: skip


def _finish_solved(
    result: SolveResult,
    outcome: SolverOutcome,
    final: FinalFit,
    image: Any,
    sources: SourceList,
    fit_sources: SourceList,
    out_dir: Path,
    config: EngineConfig,
    note: Progress,
    clock: _Clock,
    verified: Verified | None,
) -> None:
    from skysolve.engine.products.annotations import objects_in_field

    width, height = result.image_width, result.image_height
    # The final fit's model (or the fast path's own) describes the answer as
    # its header would (the header is built from it), without astropy;
    # astrometry.net's is read.
    wcs: CelestialWCS | Any = (
        final.model if final.model is not None else _start_wcs(outcome, width, height)
    )
    result.solved = True
    result.failure = None
    result.solver = outcome.solver
    result.index = outcome.index
    result.quality = final.quality or None
    # Passed on unbuilt: whoever reads result.wcs_header builds it.
    result.wcs_header = DeferredHeader(
        functools.partial(_final_header, outcome, final, width, height)
    )
    result.calibration = Calibration.from_wcs(wcs, width, height)

    def astropy_wcs() -> WCS:
        """The files and pictures take astropy's WCS of the header, whoever solved."""
        if not isinstance(wcs, TanSip):
            return wcs
        assert result.wcs_header is not None
        return wcs_from_header(result.wcs_header, width, height)

    if config.write_files:
        from astropy.io import fits

        header = result.wcs_header
        assert header is not None
        wcs_path = out_dir / FILE_NAMES["wcs"]
        fits.PrimaryHDU(header=header).writeto(wcs_path, overwrite=True)
        result.files["wcs"] = wcs_path
    names, annotations = objects_in_field(wcs, width, height)
    overlay: list[Any] = []
    if "lens" in outcome.files:
        # An all-sky frame: the Moon and the planets where they were (when its
        # time is known), no constellation named below its horizon.
        from skysolve.engine.allsky.solver import above_horizon, lens_annotations

        more_names, more = lens_annotations(outcome.files["lens"], width, height)
        names, annotations = above_horizon(more_names + names, more + annotations, wcs)
        if config.make_pictures:
            from skysolve.engine.allsky.solver import lens_lines

            # Constellation figures and the horizon, curved through the lens.
            overlay = lens_lines(outcome.files["lens"], width, height)
    result.objects_in_field = names
    result.annotations = annotations
    note("annotating", f"{len(names)} objects in the field")
    if verified is not None:
        # The answer a client waits for; files and pictures follow.
        result.timings = dict(clock.timings)
        result.timings["verified"] = time.monotonic() - clock.started
        verified(result)
    if config.write_files:
        assert result.calibration is not None
        corr = _write_corr(
            out_dir / FILE_NAMES["corr"], final, wcs, fit_sources, result.calibration.pixscale
        )
        if corr is not None:
            result.files["corr"] = corr
        for key in ("rdls", "corr", "lens"):
            if key in result.files:
                continue
            if key in outcome.files and outcome.files[key].exists():
                target = out_dir / FILE_NAMES[key]
                shutil.copyfile(outcome.files[key], target)
                result.files[key] = target
        if image is not None:
            result.files["new_fits"] = _write_new_fits(
                out_dir / FILE_NAMES["new_fits"], image, header
            )
        from skysolve.engine.products.kml import write_kml

        # Not for an all-sky lens model: a ground overlay of a hemisphere (its
        # corners below the horizon) means nothing to Google Sky.
        if "lens" not in outcome.files:
            result.files["kml"] = write_kml(
                astropy_wcs(),
                width,
                height,
                image_name="annotated_display.jpg",
                out_path=out_dir / FILE_NAMES["kml"],
                bottom_up=bool(image is not None and image.bottom_up),
            )
    if config.make_pictures:
        rdls = result.files.get("rdls") or outcome.files.get("rdls")
        full = astropy_wcs()
        catalog_xy = _catalog_xy(rdls, full)
        _pictures(
            result, image, sources, full, catalog_xy, annotations, out_dir,
            residuals=_residual_arrows(final, wcs, fit_sources), lines=overlay,
        )  # fmt: skip


def _pictures(
    result: SolveResult,
    image: Any,
    sources: SourceList,
    wcs: WCS | None,
    catalog_xy: np.ndarray | None,
    annotations: list[Any],
    out_dir: Path,
    *,
    residuals: np.ndarray | None = None,
    lines: Sequence[Any] = (),
) -> None:
    from skysolve.engine.products.pictures import make_pictures

    if image is not None:
        data, color, bottom_up = image.data, image.color, image.bottom_up
    else:
        # A star list has no pixels: draw on a dark canvas of the image's size.
        scale = min(1.0, 2000.0 / max(result.image_width, result.image_height))
        data = np.zeros(
            (max(1, int(result.image_height * scale)), max(1, int(result.image_width * scale))),
            dtype=np.float32,
        )
        if scale < 1.0:
            return
        color, bottom_up = None, False
    result.files.update(
        make_pictures(
            data,
            color=color,
            bottom_up=bottom_up,
            wcs=wcs,
            sources=sources,
            catalog_xy=catalog_xy,
            annotations=annotations,
            out_dir=out_dir,
            residuals=residuals,
            overlay=lines,
        )
    )


def _final_header(outcome: SolverOutcome, final: FinalFit, width: int, height: int) -> fits.Header:
    """The answer's WCS header: the final fit's (or the verified one), with the
    quality cards."""
    from skysolve.engine.fitting.quality import header_cards

    if final.model is not None:
        header = final.model.to_header(width, height)
        header["HISTORY"] = (
            f"Refitted by skysolve to every matched star (the answer of {outcome.solver})."
        )
    else:
        raw = outcome.wcs_header
        assert raw is not None
        header = raw.copy()
    for key, value, comment in header_cards(final.quality):
        header[key] = (value, comment)
    return header


def _matched_pairs(
    final: FinalFit, wcs: Any, sources: SourceList
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Source rows, catalogue rows, catalogue (x, y) under ``wcs`` and the catalogue
    positions (RA, Dec rows) of the final fit's stars; None without a refit."""
    refit = final.refit
    if refit is None or final.verdict == "implausible" or final.stars is None:
        return None
    rows, cat = refit.source_rows, refit.star_rows
    sky = np.column_stack([np.asarray(final.stars.ra)[cat], np.asarray(final.stars.dec)[cat]])
    xy = np.asarray(wcs.all_world2pix(sky, 1), dtype=float).reshape(-1, 2)
    return rows, cat, xy[:, 0], xy[:, 1], sky


def _write_corr(
    path: Path, final: FinalFit, wcs: Any, sources: SourceList, pixscale: float
) -> Path | None:
    """``corr.fits`` of the final fit: the matched pairs with their residuals."""
    from skysolve.engine.fitting.quality import write_corr

    pairs = _matched_pairs(final, wcs, sources)
    if pairs is None:
        return None
    rows, cat, ix, iy, sky = pairs
    fx, fy = np.asarray(sources.x, float)[rows], np.asarray(sources.y, float)[rows]
    field_sky = np.asarray(wcs.all_pix2world(np.column_stack([fx, fy]), 1), dtype=float)
    mag = final.stars.mag if final.stars is not None else None
    return write_corr(
        path,
        field_x=fx, field_y=fy, field_ra=field_sky[:, 0], field_dec=field_sky[:, 1],
        index_x=ix, index_y=iy, index_ra=sky[:, 0], index_dec=sky[:, 1],
        index_id=cat, field_id=rows, flux=np.asarray(sources.flux, float)[rows],
        index_mag=np.full(len(rows), np.nan) if mag is None else np.asarray(mag, float)[cat],
        pixscale=pixscale,
    )  # fmt: skip


def _residual_arrows(final: FinalFit, wcs: Any, sources: SourceList) -> np.ndarray | None:
    """Rows of (x, y, dx, dy): each matched source and its residual under ``wcs``."""
    pairs = _matched_pairs(final, wcs, sources)
    if pairs is None:
        return None
    rows, _, ix, iy, _ = pairs
    fx, fy = np.asarray(sources.x, float)[rows], np.asarray(sources.y, float)[rows]
    return np.column_stack([fx, fy, ix - fx, iy - fy])


def _catalog_xy(rdls: Path | None, wcs: WCS) -> np.ndarray | None:
    if rdls is None or not rdls.exists():
        return None
    from astropy.io import fits

    with fits.open(rdls) as hdul:
        table = hdul[1].data
        if table is None or len(table) == 0:
            return np.zeros((0, 2))
        ra = np.asarray(table["RA"], dtype=float)
        dec = np.asarray(table["DEC"], dtype=float)
    xy = wcs.all_world2pix(np.column_stack([ra, dec]), 1)
    return np.asarray(xy)


def _write_sources(path: Path, sources: SourceList) -> None:
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    primary.header["IMAGEW"] = sources.width
    primary.header["IMAGEH"] = sources.height
    fits.HDUList([primary, source_table(sources)]).writeto(path, overwrite=True)


def _write_new_fits(path: Path, image: Any, wcs_header: fits.Header) -> Path:
    from astropy.io import fits

    header = fits.Header()
    if image.header is not None:
        for card in image.header.cards:
            if card.keyword in ("SIMPLE", "BITPIX", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT"):
                continue
            if card.keyword.startswith("NAXIS") or card.keyword in ("BSCALE", "BZERO"):
                continue
            try:
                header.append(card)
            except (ValueError, KeyError):  # pragma: no cover - unusual cards are skipped
                continue
    for card in wcs_header.cards:
        if card.keyword in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "COMMENT", "HISTORY", ""):
            continue
        header[card.keyword] = (card.value, card.comment)
    fits.PrimaryHDU(data=np.asarray(image.data, dtype=np.float32), header=header).writeto(
        path, overwrite=True
    )
    return path


def reproduce_command(source: Path | SourceList, params: SolveParameters) -> list[str]:
    """The ``skysolve solve`` command that repeats this solve."""
    name = "STARLIST.xyls" if isinstance(source, SourceList) else Path(source).name
    cmd = ["skysolve", "solve", name]
    if params.has_scale:
        cmd += ["--scale-units", params.scale_units]
        if params.scale_type == "ev":
            cmd += ["--scale-est", _fmt(params.scale_est)]
            if params.scale_err is not None:
                cmd += ["--scale-err", _fmt(params.scale_err)]
        else:
            if params.scale_lower is not None:
                cmd += ["--scale-low", _fmt(params.scale_lower)]
            if params.scale_upper is not None:
                cmd += ["--scale-high", _fmt(params.scale_upper)]
    if params.has_position:
        cmd += ["--ra", _fmt(params.center_ra), "--dec", _fmt(params.center_dec)]
        if params.radius is not None:
            cmd += ["--radius", _fmt(params.radius)]
    if params.parity != 2:
        cmd += ["--parity", str(params.parity)]
    if params.tweak_order is not None:
        cmd += ["--tweak-order", str(params.tweak_order)]
    if params.crpix_center:
        cmd.append("--crpix-center")
    if params.positional_error != 1.0:
        cmd += ["--positional-error", _fmt(params.positional_error)]
    if params.downsample_factor is not None:
        cmd += ["--downsample", _fmt(params.downsample_factor)]
    if params.invert:
        cmd.append("--invert")
    if params.use_sextractor:
        cmd.append("--use-sextractor")
    elif params.extractor != "sep":
        cmd += ["--extractor", params.extractor]
    if params.image_width is not None and params.image_height is not None:
        cmd += ["--width", str(params.image_width), "--height", str(params.image_height)]
    if not params.use_hints:
        cmd.append("--no-hints")
    cmd += ["--timeout", _fmt(params.timeout)]
    return cmd


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.10g}"


def peak_memory_mb() -> float:
    """Peak resident memory of this process and its finished children, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


__all__ = ["EngineConfig", "constraints_for", "reproduce_command", "solve"]
