"""The attempt ladder: which solvers try which constraints, for how long.

A solve is a ladder of *attempts*, each a set of parameters: the hints (from
the file, from an earlier solve of the same user) first, then the same
without the learned position, then blind.  Each attempt runs the solvers in
turn (fastest first) until one returns a verified answer; the first verified
answer wins.  A hint can be wrong (another target, another lens, a header
copied from another frame), and a search around a wrong place is slow to give
up: every attempt but the last gets a share of the time left
(:data:`HINTED_TIME_SHARE`, or :data:`LEARNED_SHARE` up to
:data:`LEARNED_MAX_SECONDS` with a learned hint), the next one the rest.
:class:`Clock` keeps the time, the cancel flag and the timings of each step.

Where the sources come from is the caller's :class:`SourceSupply` (see
:mod:`skysolve.engine.extraction.supply`): a solver that looks only at the
brightest few asks for those, one that searches several lists
(:attr:`~skysolve.engine.solving.base.Solver.several_lists`) starts on the
supply's first lists, falls back to the others, and is offered the companion
lists as they are made.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SourceList
from skysolve.engine.solving.base import SolveConstraints, Solver, SolverOutcome
from skysolve.errors import SolveCancelledError, SolveTimeoutError

Progress = Callable[[str, str], None]
#: What a solver that searches several lists polls for more (see Solver.solve_lists).
LaterLists = Callable[[], list[tuple[str, SourceList]] | None]
#: The labelled lists a solver of several lists starts on, and those it falls back to.
EngineLists = tuple[list[tuple[str, SourceList]], list[tuple[str, SourceList]]]
#: The label of the short list (the brightest of the full one) a solver of
#: several lists starts on: an answer from it reports the full list.
BRIGHTEST_LIST = "sep brightest"

#: Share of the time left that an attempt with a learned hint may take before the
#: next attempt (the learned scale alone, then blind) starts.
LEARNED_SHARE = 0.25
#: ...and never more than this many seconds: a right learned hint solves in about
#: a second, while astrometry.net searching around a wrong centre runs on until
#: stopped (measured: the whole share, 15 s of a 60 s budget).
LEARNED_MAX_SECONDS = 10.0
#: Share of the time left that hints taken from the file get when a blind retry
#: follows: a right hint solves in well under a second, a wrong one (a header
#: copied from another frame) would otherwise search until the limit.
HINTED_TIME_SHARE = 0.5


class Clock:
    """The time limit of a solve (or of one attempt), its cancel flag and timings."""

    def __init__(self, timeout: float, cancel: threading.Event | None) -> None:
        self.started = time.monotonic()
        self.timeout = timeout
        self.cancel = cancel
        self.timings: dict[str, float] = {}

    @property
    def remaining(self) -> float:
        return self.timeout - (time.monotonic() - self.started)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check(self) -> None:
        """Raise if the solve was cancelled or its time is up."""
        if self.cancel is not None and self.cancel.is_set():
            raise SolveCancelledError("the solve was cancelled")
        if self.remaining <= 0:
            raise SolveTimeoutError(f"the solve ran past its time limit of {self.timeout:g} s")

    def share(self, fraction: float, most: float) -> Clock:
        """A clock for one attempt: ``fraction`` of the time left but at most ``most``
        seconds, same cancel and timings."""
        part = Clock(0.0, self.cancel)
        part.started = time.monotonic()
        part.timeout = max(0.5, min(most, fraction * self.remaining))
        part.timings = self.timings
        return part

    def stopped_by(self, cancel: threading.Event) -> Clock:
        """The same time limit and timings with another cancel flag (a
        :class:`OwnCancel` of this clock's, for work that may be stopped alone)."""
        part = Clock(self.timeout, cancel)
        part.started = self.started
        part.timings = self.timings
        return part

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as step ``name`` (added up over repeats)."""
        self.check()
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.monotonic() - t0


class OwnCancel(threading.Event):
    """A cancel flag of its own that is also set while ``follows`` (the
    caller's, may be None) is: set, it stops one part of a solve alone.
    Read with :meth:`is_set` only (its ``wait`` does not follow)."""

    def __init__(self, follows: threading.Event | None) -> None:
        super().__init__()
        self.follows = follows

    def is_set(self) -> bool:
        return super().is_set() or (self.follows is not None and self.follows.is_set())

    @property
    def own(self) -> bool:
        """Whether this flag itself was set (not only the one it follows)."""
        return super().is_set()


class SourceSupply(Protocol):
    """Where an attempt's sources come from (:class:`~skysolve.engine.extraction.supply.Supply`)."""

    def sources_for(self, count: int | None) -> SourceList:
        """The ``count`` brightest when that is all a solver needs, else the full list."""

    def engine_lists(self) -> EngineLists:
        """The lists a solver searching several lists starts on, and its fallbacks."""

    def companions(self) -> LaterLists | None:
        """What a solver searching several lists polls for more, or None."""


@dataclass
class Climb:
    """How far the ladder got: the last outcome (None: no solver ran yet) and
    the sources it came from (or the last ones tried).  Kept up to date as the
    attempts run, so a caller still has it when the time runs out."""

    outcome: SolverOutcome | None
    sources: SourceList


@dataclass(frozen=True)
class Attempt:
    """One rung of the ladder: a label for the log and the parameters it tries."""

    label: str
    params: SolveParameters


def plan_attempts(
    effective: SolveParameters,
    params: SolveParameters,
    *,
    hints_used: dict[str, object],
    without_learned_position: SolveParameters | None,
) -> list[Attempt]:
    """The attempts, in order: with every hint, without the learned position
    (when one was used and dropping it changes anything), then ``params``
    as given (a blind retry) when any hint was used."""
    attempts = [Attempt("hinted" if hints_used else "as given", effective)]
    if without_learned_position is not None and without_learned_position != effective:
        # A learned position is the likeliest wrong hint (the user slewed to
        # another target): the learned scale alone is tried before going blind.
        attempts.append(Attempt("without the learned position", without_learned_position))
    if hints_used:
        attempts.append(Attempt("blind retry without the hints", params))
    return attempts


def run_attempts(
    attempts: Sequence[Attempt],
    solvers: Sequence[Solver],
    blind_solvers: Sequence[Solver],
    supply: SourceSupply,
    climb: Climb,
    *,
    width: int,
    clock: Clock,
    work: Path,
    note: Progress,
    learned: bool,
    lens: tuple[float, float] | None = None,
) -> Climb:
    """Climb the ladder: the first verified answer, else the last failure.

    Every attempt but the last runs on its share of ``clock``'s time; when
    that share is up the next attempt starts.  Raises
    :class:`~skysolve.errors.SolveTimeoutError` when ``clock`` itself runs
    out (``climb`` then holds the last finished attempt's outcome) and
    :class:`~skysolve.errors.SolveCancelledError` when cancelled.
    """
    for number, attempt in enumerate(attempts):
        constraints = constraints_for(attempt.params, width, lens=lens)
        attempt_clock = clock
        if number < len(attempts) - 1:
            attempt_clock = (
                clock.share(LEARNED_SHARE, LEARNED_MAX_SECONDS)
                if learned
                else clock.share(HINTED_TIME_SHARE, math.inf)
            )
        try:
            climb.outcome, climb.sources = run_solvers(
                blind_solvers if is_blind(constraints) else solvers,
                supply,
                constraints,
                work=work,
                clock=attempt_clock,
                note=note,
                label=attempt.label,
            )
        except SolveTimeoutError:
            if attempt_clock is clock or clock.remaining <= 0:
                raise
            note("solving", f"{attempt.label}: its share of the time is up")
            continue
        if climb.outcome is not None and climb.outcome.solved:
            break
    return climb


def run_solvers(
    solvers: Sequence[Solver],
    supply: SourceSupply,
    constraints: SolveConstraints,
    *,
    work: Path,
    clock: Clock,
    note: Progress,
    label: str,
) -> tuple[SolverOutcome | None, SourceList]:
    """The first solver's solution, or the last one's failure; and the sources used.

    A solver that searches several lists starts on the supply's first lists
    (:meth:`SourceSupply.engine_lists`: for astrometry.net sep's brightest, with
    the whole list as the fallback) and polls its companions for more lists of
    the same image to search at once; the sources returned are then the list
    that solved (the full list when its brightest head did).
    """
    outcome: SolverOutcome | None = None
    sources = supply.sources_for(solvers[0].bright_sources)  # what a failure reports
    for solver in solvers:
        clock.check()
        sources = supply.sources_for(solver.bright_sources)
        later = supply.companions() if solver.several_lists else None
        note("solving", f"{solver.name} ({label})")
        workdir = work / solver.name.replace(".", "_")
        with clock.step(f"solve:{solver.name}"):
            if later is not None:
                first, fallback = supply.engine_lists()
                outcome = solver.solve_lists(
                    first,
                    constraints,
                    workdir,
                    timeout=max(0.5, clock.remaining),
                    cancel=clock.cancel,
                    later=later,
                    fallback=fallback,
                )
            else:
                from skysolve.engine.blas import one_blas_thread

                # The fast path's refit and verification: small least squares,
                # where BLAS threads only wait for each other.
                with one_blas_thread():
                    outcome = solver.solve(
                        sources,
                        constraints,
                        workdir,
                        timeout=max(0.5, clock.remaining),
                        cancel=clock.cancel,
                    )
        narrowest = solver.narrowest_blind_fov() if is_blind(constraints) else None
        if not outcome.solved and narrowest is not None and constraints.narrower_than is None:
            # A blind miss of the fast path: the field is likely narrower than
            # its database covers; the next solvers may search those first.
            constraints = replace(constraints, narrower_than=narrowest)
        if outcome.solved:
            if outcome.sources is not None:
                # The brightest head of the full list: the answer keeps the full one.
                full = outcome.source_list == BRIGHTEST_LIST
                sources = supply.sources_for(None) if full else outcome.sources
                note("solving", f"solved from the {outcome.source_list} source list")
            return outcome, sources
    return outcome, sources


def is_blind(constraints: SolveConstraints) -> bool:
    """Whether ``constraints`` say nothing of the scale."""
    return constraints.scale_low is None and constraints.scale_high is None


def blind_solvers(
    solvers: Sequence[Solver], widest_fov_deg: float | None, *, where: str, note: Progress
) -> list[Solver]:
    """The solvers for an attempt without a scale: ``solvers``, less those for
    which the field, by the image's own metadata at most ``widest_fov_deg``
    wide (``where`` names the metadata), is too narrow
    (:meth:`~skysolve.engine.solving.base.Solver.too_narrow`); never none.

    The metadata only decides which solvers run, never what they search: a
    blind solve (``--no-hints``) stays blind, and a wrong header costs the
    fast path's chance, not the answer (astrometry.net searches every scale).
    A 1.3-degree Seestar frame (FOCALLEN 250, XPIXSZ 2.9) otherwise waited for
    the whole database's load and the ladder, 0.3-0.7 s, before astrometry.net
    started.
    """
    if widest_fov_deg is None or len(solvers) < 2:
        return list(solvers)
    narrow = [solver for solver in solvers if solver.too_narrow(widest_fov_deg)]
    kept = [solver for solver in solvers if solver not in narrow]
    if not narrow or not kept:
        return list(solvers)
    note(
        "preparing",
        f"the file says the field is under {widest_fov_deg:.2g} deg ({where}): too narrow "
        f"for {', '.join(s.name for s in narrow)}; a blind search goes to "
        f"{', '.join(s.name for s in kept)}",
    )
    return kept


def constraints_for(
    params: SolveParameters, image_width: int, *, lens: tuple[float, float] | None = None
) -> SolveConstraints:
    """Turn user parameters into solver constraints (scale in arcsec/pixel);
    ``lens``: the camera's remembered wide-angle lens (k, fov), when hints are on."""
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
        lens=lens if params.use_hints else None,
    )


__all__ = [
    "BRIGHTEST_LIST",
    "HINTED_TIME_SHARE",
    "LEARNED_MAX_SECONDS",
    "LEARNED_SHARE",
    "Attempt",
    "Climb",
    "Clock",
    "EngineLists",
    "OwnCancel",
    "SourceSupply",
    "blind_solvers",
    "constraints_for",
    "is_blind",
    "plan_attempts",
    "run_attempts",
    "run_solvers",
]
