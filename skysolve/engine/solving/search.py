"""The solving stage: the attempt ladder over the solvers, with the all-sky hook.

:func:`lead_sources` starts the first solver (its prefetch beside the
extraction of its sources); :func:`find_answer` runs the all-sky lens-model
search first for a frame that looks like a fisheye (after a quick solver's
try), else the attempt ladder (:mod:`skysolve.engine.solving.ladder`) and the
all-sky search beside it after its first seconds or when it fails; it says
why nothing was found: too few stars, no match (and for a blind solve which
fields the indexes cover), or the time limit.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skysolve.engine.config import EngineConfig
from skysolve.engine.extraction.supply import MIN_SOURCES, Supply
from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SourceList
from skysolve.engine.solving.base import Solver, SolverOutcome
from skysolve.engine.solving.ladder import (
    Attempt,
    Climb,
    Clock,
    OwnCancel,
    blind_solvers,
    constraints_for,
    is_blind,
    plan_attempts,
    run_attempts,
    run_solvers,
)
from skysolve.errors import (
    ConfigurationError,
    NoMatchError,
    NoStarsError,
    SolveCancelledError,
    SolveError,
    SolveTimeoutError,
)

Progress = Callable[[str, str], None]

#: Most seconds the all-sky search takes: a clear frame solves in a few, and a
#: frame it cannot solve (cloud, glare) should not hold the ordinary solvers up.
ALLSKY_MAX_SECONDS = 20.0
#: Seconds the ordinary solvers have on a blind frame not taken for a fisheye
#: before the all-sky search starts beside them (:func:`_early_allsky`): every ordinary
#: corpus frame is answered in 0.3-1.5 s, an all-sky frame without a dark
#: surround fails them only at the time limit.
ALLSKY_EARLY_SECONDS = 10.0
#: A field narrower than the file's metadata says by this factor is not expected.
METADATA_FOV_MARGIN = 1.5


def solver_chain(config: EngineConfig) -> list[Solver]:
    """The solvers to try, fastest first: the configuration's own, else the
    fast path when its database exists, then astrometry.net."""
    if config.solvers is not None:
        return list(config.solvers)
    from skysolve.engine.solving.astrometry import AstrometryConfig, AstrometryNetSolver
    from skysolve.engine.solving.fastpath import PatternHashSolver

    fast: list[Solver] = []
    if config.fastpath_db is not None and config.fastpath_db.is_file():
        fast.append(PatternHashSolver(config.fastpath_db))
    return fast + [
        AstrometryNetSolver(
            AstrometryConfig(
                binary=config.engine_binary,
                index_dirs=config.index_dirs,
                processes=config.processes,
            )
        )
    ]


@dataclass(frozen=True)
class Hinted:
    """The parameters the attempts start from."""

    #: With every hint applied.
    effective: SolveParameters
    #: With the file's hints only.
    from_file: SolveParameters
    #: The hints used, for the result (``learned`` and ``sources`` included).
    hints_used: dict[str, Any]
    #: What an earlier solve of the same user gave, when anything.
    learned: dict[str, Any]
    #: The image's size (the learned hints are per image size).
    width: int
    height: int
    #: The camera's remembered wide-angle lens, (k, fov), for the fast path
    #: (:mod:`skysolve.engine.solving.camera_lens`).
    lens: tuple[float, float] | None = None


@dataclass
class Answer:
    """What :func:`find_answer` found: the outcome (None: no solver ran), the
    source list it solved from (or the last one tried) and why not solved."""

    outcome: SolverOutcome | None
    sources: SourceList
    failure: SolveError | None = None


def lead_sources(
    image: Any,
    hinted: Hinted,
    solvers: list[Solver],
    blind: list[Solver],
    supply: Supply,
) -> SourceList:
    """The sources of the first attempt's first solver, which meanwhile starts
    loading what it needs (:meth:`~skysolve.engine.solving.base.Solver.prefetch`)."""
    first = constraints_for(hinted.effective, hinted.width)
    lead = (blind if is_blind(first) else solvers)[0]
    if image is not None:
        # The database loads beside the source extraction (for a hinted solve
        # of a 10-degree field the whole database, 0.1-0.2 s: a third of the
        # solve), and so do the annotation catalogues, in their own thread,
        # which the annotation stage waits for (already loaded: nothing to do).
        lead.prefetch(first, image.width, image.height)
    from skysolve.engine.products.named_objects import load_catalogues_in_background

    load_catalogues_in_background()
    return supply.sources_for(lead.bright_sources)


def find_answer(
    image: Any,
    hinted: Hinted,
    params: SolveParameters,
    config: EngineConfig,
    solvers: list[Solver],
    blind: list[Solver],
    supply: Supply,
    sources: SourceList,
    *,
    clock: Clock,
    work: Path,
    note: Progress,
) -> Answer:
    """The solving stage: the all-sky hook and the attempt ladder.

    ``image``: the loaded image (None for a star list); ``sources``: what
    the lead solver was given.  Raises
    :class:`~skysolve.errors.SolveTimeoutError` (naming what the indexes
    cover, for a blind solve) when the time runs out.
    """
    outcome: SolverOutcome | None = None
    # The all-sky hook: a fisheye frame's lens model, fitted to the stars out to
    # the horizon, where no tangent plane reaches (skysolve.engine.allsky).
    allsky_first = image is not None and _allsky_first(config, image.data)
    allsky_reason = ""
    if allsky_first and len(sources) >= MIN_SOURCES and solvers[0].quick:
        # A vignetted wide field looks like a fisheye too: the fast path (well
        # under a second) answers those before the all-sky search.
        first = constraints_for(hinted.effective, hinted.width, lens=hinted.lens)
        outcome, sources = run_solvers(
            solvers[:1], supply, first, work=work, clock=clock, note=note, label="as given"
        )
    if allsky_first and not (outcome is not None and outcome.solved):
        outcome, allsky_reason = _allsky(image, work, clock, note)
    if outcome is not None and outcome.solved:
        return Answer(outcome, sources)
    if allsky_first and allsky_reason.startswith(("too few stars", "no sky region")):
        # An image circle without stars (cloud, daylight, a lens cap): no
        # ordinary solver finds stars the all-sky search could not.
        failure: SolveError = NoStarsError(f"all-sky frame: {allsky_reason}")
        note("solving", failure.message)
        return Answer(outcome, sources, failure)
    if len(sources) < MIN_SOURCES:
        failure = NoStarsError(
            f"only {len(sources)} sources found; at least {MIN_SOURCES} are needed"
        )
        note("solving", failure.message)
        return Answer(outcome, sources, failure)
    attempts = plan_attempts(
        hinted.effective, params, hints_used=hinted.hints_used,
        without_learned_position=_without_learned_position(hinted),
    )  # fmt: skip
    allsky_after = image is not None and config.allsky == "auto" and not allsky_first
    if allsky_after and _allsky_early(params, solvers, blind, clock):
        return _early_allsky(
            image, hinted, attempts, solvers, blind, supply, Climb(outcome, sources),
            params=params, config=config, clock=clock, work=work, note=note,
        )  # fmt: skip
    # An all-sky frame without a dark surround fails the ordinary solvers
    # only at the time limit: the all-sky search after them keeps its time.
    solve_clock = clock
    if allsky_after and clock.remaining > 2 * ALLSKY_MAX_SECONDS:
        solve_clock = clock.share(1.0 - ALLSKY_MAX_SECONDS / clock.remaining, math.inf)
    timed_out: SolveTimeoutError | None = None
    climb = Climb(outcome, sources)
    try:
        _climb(attempts, solvers, blind, supply, climb, hinted, solve_clock, work, note)
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
    outcome, sources = climb.outcome, climb.sources
    if (outcome is None or not outcome.solved) and allsky_after and clock.remaining > 1.0:
        outcome, allsky_reason = _allsky(image, work, clock, note)
    if (outcome is None or not outcome.solved) and timed_out is not None:
        # As without the all-sky search: the ordinary solvers' time ran out.
        hint = "" if params.has_scale else f"; {_coverage_hint(config)}"
        raise SolveTimeoutError(f"{timed_out.message}{hint}; all-sky lens search: {allsky_reason}")
    return _unsolved_or(outcome, sources, params, config, allsky_reason, note)


def _climb(
    attempts: list[Attempt],
    solvers: list[Solver],
    blind: list[Solver],
    supply: Supply,
    climb: Climb,
    hinted: Hinted,
    clock: Clock,
    work: Path,
    note: Progress,
) -> None:
    """The attempt ladder over ``solvers`` on ``clock`` (raises when its time is up)."""
    run_attempts(
        attempts, solvers, blind, supply, climb, width=hinted.width,
        clock=clock, work=work, note=note, learned=bool(hinted.learned), lens=hinted.lens,
    )  # fmt: skip


def _unsolved_or(
    outcome: SolverOutcome | None,
    sources: SourceList,
    params: SolveParameters,
    config: EngineConfig,
    allsky_reason: str,
    note: Progress,
) -> Answer:
    """The answer, or why there is none (with the all-sky search's reason, when it ran)."""
    if outcome is None or not outcome.solved:
        message = _no_match_message(params, config)
        if allsky_reason:
            message = f"{message}; all-sky lens search: {allsky_reason}"
        failure = NoMatchError(message)
        note("solving", failure.message)
        return Answer(outcome, sources, failure)
    return Answer(outcome, sources)


def _allsky_early(
    params: SolveParameters, solvers: list[Solver], blind: list[Solver], clock: Clock
) -> bool:
    """Whether the all-sky search may cut in after :data:`ALLSKY_EARLY_SECONDS`
    of the ordinary solvers (a frame not taken for a fisheye, ``auto``).

    Only for a blind solve (a scale from the user says what the field is)
    whose fast path, the 4-70 degree ladder, runs (the file's metadata did not
    rule out a wide field, see :func:`blind_solvers_for`), and with the time
    for the ordinary solvers to go on after it.
    """
    if params.has_scale or len(blind) < len(solvers) or not any(s.quick for s in blind):
        return False
    return clock.remaining > ALLSKY_EARLY_SECONDS + ALLSKY_MAX_SECONDS


def _early_allsky(
    image: Any,
    hinted: Hinted,
    attempts: list[Attempt],
    solvers: list[Solver],
    blind: list[Solver],
    supply: Supply,
    climb: Climb,
    *,
    params: SolveParameters,
    config: EngineConfig,
    clock: Clock,
    work: Path,
    note: Progress,
) -> Answer:
    """The ordinary solvers, with the all-sky search beside them from
    :data:`ALLSKY_EARLY_SECONDS` on (no answer yet): the first verified
    answer wins, and the other is stopped; a miss of the all-sky search
    leaves the ordinary solvers going on, nothing started again.

    An all-sky frame without a dark surround (a circle cut on every side: the
    fast path's ladder misses it and astrometry.net searches on to the limit)
    is answered in seconds instead of after the whole limit; an ordinary
    frame answered within the first seconds (every one of the corpus's, in
    0.3-1.5 s) never sees the all-sky search, and one that takes longer only
    shares the machine with it for its few seconds (0.1-2.3 s on them).
    """
    ordinary = OwnCancel(clock.cancel)  # set when the all-sky search answers
    beside = _AllskyBeside(image, work, clock, ordinary)
    beside.timer.start()
    try:
        _climb(
            attempts, solvers, blind, supply, climb, hinted,
            clock.stopped_by(ordinary), work, note,
        )  # fmt: skip
    except SolveCancelledError:
        beside.finish(note, stop=True)
        if not ordinary.own or (clock.cancel is not None and clock.cancel.is_set()):
            raise
        return Answer(beside.outcome, climb.sources)
    except SolveTimeoutError as exc:
        # The all-sky search is on the same clock: it ends now too.
        beside.finish(note, stop=False)
        if beside.outcome is not None and beside.outcome.solved:
            return Answer(beside.outcome, climb.sources)
        message = f"{exc.message}; {_coverage_hint(config)}"
        if beside.reason:
            message = f"{message}; all-sky lens search: {beside.reason}"
        raise SolveTimeoutError(message) from None
    except BaseException:
        beside.finish(note, stop=True, raising=False)
        raise
    solved = climb.outcome is not None and climb.outcome.solved
    beside.finish(note, stop=solved)
    if solved:
        return Answer(climb.outcome, climb.sources)
    if beside.outcome is None:
        # The ordinary solvers finished, unsolved, before it started: as after them.
        beside.outcome, beside.reason = _allsky(image, work, clock, note)
    if beside.outcome.solved:
        return Answer(beside.outcome, climb.sources)
    return _unsolved_or(climb.outcome, climb.sources, params, config, beside.reason, note)


class _AllskyBeside:
    """The all-sky search in a thread of its own (a timer's), from
    :data:`ALLSKY_EARLY_SECONDS` on: its answer sets ``ordinary`` (the
    ordinary solvers' cancel flag), its own flag stops it.

    Its notes wait in a list for the thread that started it (:meth:`finish`):
    the caller's progress report may write to a database or a socket, from
    its own thread only.  It touches neither the ordinary solvers' supply of
    sources nor their work folders: it reads the image and writes ``allsky/``.
    """

    def __init__(self, image: Any, work: Path, clock: Clock, ordinary: OwnCancel) -> None:
        self.stop = OwnCancel(clock.cancel)
        self.clock = clock.stopped_by(self.stop)
        self.image, self.work, self.ordinary = image, work, ordinary
        self.outcome: SolverOutcome | None = None
        self.reason = ""
        self.error: BaseException | None = None
        self.notes: list[tuple[float, str, str]] = []
        self.timer = threading.Timer(ALLSKY_EARLY_SECONDS, self._run)
        self.timer.daemon = True

    def _note(self, stage: str, message: str) -> None:
        self.notes.append((self.clock.elapsed, stage, message))

    def _run(self) -> None:
        self._note("solving", f"no answer in {ALLSKY_EARLY_SECONDS:g} s: the all-sky search "
                   "starts beside the ordinary solvers")  # fmt: skip
        try:
            outcome, reason = _allsky(self.image, self.work, self.clock, self._note)
        except SolveTimeoutError as exc:
            # The solve's time is up: the ordinary solvers say so.
            self.reason = exc.message
            return
        except BaseException as exc:  # handed to the solve's own thread by finish()
            self.error = exc
            return
        self.outcome, self.reason = outcome, reason
        if outcome.solved:
            self._note("solving", "the all-sky search answered: the ordinary solvers stop")
            self.ordinary.set()

    def finish(self, note: Progress, *, stop: bool, raising: bool = True) -> None:
        """Stop it (``stop``: the ordinary solvers answered or failed) or wait
        for its answer; pass on its notes, and (``raising``) its error, unless
        it is the stop asked for here."""
        if stop:
            self.stop.set()
        self.timer.cancel()  # not started yet: it never will
        self.timer.join()
        for at, stage, message in self.notes:
            note(stage, f"{message} (all-sky search, at {at:.3f} s)")
        self.notes.clear()
        error, self.error = self.error, None
        if error is None or not raising:
            return
        if isinstance(error, SolveCancelledError) and self.stop.own:
            self.outcome = None
            return
        raise error


def _without_learned_position(hinted: Hinted) -> SolveParameters | None:
    """The parameters with the learned scale but not the learned position, when
    a learned position was used."""
    if "center" not in hinted.learned:
        return None
    from skysolve.engine.inputs.hints import apply_learned

    without, _ = apply_learned(
        hinted.from_file, image_width=hinted.width, image_height=hinted.height, position=False
    )
    return without


def blind_solvers_for(solvers: list[Solver], image: Any, note: Progress) -> list[Solver]:
    """The solvers for an attempt without a scale
    (:func:`~skysolve.engine.solving.ladder.blind_solvers`) for the widest
    field the image's own metadata allows (a FITS WCS, scale keywords,
    ``FOCALLEN`` with a pixel size, EXIF focal lengths: the hints a hinted
    solve would use), ``METADATA_FOV_MARGIN`` times wider."""
    if image is None or len(solvers) < 2:
        return solvers
    from skysolve.engine.inputs.hints import largest_scale

    found = largest_scale(image)
    if found is None:
        return solvers
    scale, where = found
    widest = METADATA_FOV_MARGIN * scale * max(image.width, image.height) / 3600.0
    return blind_solvers(solvers, widest, where=where, note=note)


def _allsky_first(config: EngineConfig, data: Any) -> bool:
    """Whether the all-sky attempt goes before the ordinary solvers."""
    if config.allsky == "first":
        return True
    if config.allsky == "off":
        return False
    from skysolve.engine.allsky.sky import looks_like_allsky

    return looks_like_allsky(data)


def _allsky(image: Any, work: Path, clock: Clock, note: Progress) -> tuple[SolverOutcome, str]:
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
