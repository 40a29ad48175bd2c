"""The attempt ladder with fake solvers: which solver tries what, for how long.

No engine runs here: the solvers are fakes that record what they were given,
so each test takes milliseconds.  The real solvers' tests are in
test_pipeline.py and test_fastpath.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from skysolve.engine.config import EngineConfig
from skysolve.engine.inputs.hints import Hints
from skysolve.engine.params import SolveParameters
from skysolve.engine.pipeline import solve
from skysolve.engine.results import SourceList
from skysolve.engine.solving.base import SolveConstraints, Solver, SolverOutcome
from skysolve.engine.solving.ladder import (
    BRIGHTEST_LIST,
    HINTED_TIME_SHARE,
    LEARNED_MAX_SECONDS,
    Attempt,
    Climb,
    Clock,
    EngineLists,
    LaterLists,
    blind_solvers,
    plan_attempts,
    run_attempts,
    run_solvers,
)
from skysolve.errors import NoMatchError, SolveCancelledError, SolveTimeoutError

WIDTH, HEIGHT = 1000, 800
HINTED = SolveParameters(scale_units="arcsecperpix", scale_lower=9.0, scale_upper=11.0)
BLIND = SolveParameters()


def source_list(count: int, seed: int = 1) -> SourceList:
    rng = np.random.default_rng(seed)
    x = rng.uniform(1, WIDTH, count)
    y = rng.uniform(1, HEIGHT, count)
    return SourceList(x, y, np.linspace(1000.0, 10.0, count), WIDTH, HEIGHT)


class Call:
    def __init__(
        self, solver: str, sources: SourceList, constraints: SolveConstraints, timeout: float
    ):
        self.solver = solver
        self.sources = sources
        self.constraints = constraints
        self.timeout = timeout

    @property
    def blind(self) -> bool:
        return self.constraints.scale_low is None and self.constraints.scale_high is None


class FakeSolver(Solver):
    """Answers as ``answer(constraints)`` says: True solved, False not, or an exception."""

    name: ClassVar[str] = "fake"

    def __init__(
        self,
        calls: list[Call],
        answer: Callable[[SolveConstraints], bool | Exception] = lambda c: False,
        *,
        name: str = "fake",
        bright: int | None = None,
        narrowest_deg: float = 0.0,
        cancel_after: threading.Event | None = None,
    ) -> None:
        self.calls = calls
        self.answer = answer
        self.name = name  # type: ignore[misc]
        self.bright_sources = bright  # type: ignore[misc]
        self.narrowest_deg = narrowest_deg
        self.cancel_after = cancel_after

    def solve(
        self,
        sources: SourceList,
        constraints: SolveConstraints,
        workdir: Path,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> SolverOutcome:
        self.calls.append(Call(self.name, sources, constraints, timeout))
        if self.cancel_after is not None:
            self.cancel_after.set()
        answer = self.answer(constraints)
        if isinstance(answer, Exception):
            raise answer
        return SolverOutcome(solved=answer, solver=self.name, log=f"{self.name} ran")

    def too_narrow(self, widest_fov_deg: float) -> bool:
        return widest_fov_deg < self.narrowest_deg

    def narrowest_blind_fov(self) -> float | None:
        return self.narrowest_deg or None


class FakeSeveralLists(FakeSolver):
    """Searches several lists: solves with the first list added through ``later``."""

    several_lists: ClassVar[bool] = True

    def __init__(self, calls: list[Call]) -> None:
        super().__init__(calls, name="several")
        self.polls = 0
        self.solve_first = False
        self.lists: list[tuple[str, SourceList]] = []
        self.fallback: list[tuple[str, SourceList]] = []

    def solve_lists(
        self,
        lists: Sequence[tuple[str, SourceList]],
        constraints: SolveConstraints,
        workdir: Path,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
        later: LaterLists | None = None,
        fallback: Sequence[tuple[str, SourceList]] = (),
    ) -> SolverOutcome:
        self.calls.append(Call(self.name, lists[0][1], constraints, timeout))
        self.lists, self.fallback = list(lists), list(fallback)
        if self.solve_first:
            label, sources = lists[0]
            return SolverOutcome(solved=True, solver=self.name, sources=sources, source_list=label)
        assert later is not None
        added = None
        while added is None:
            self.polls += 1
            added = later()
        if not added:
            return SolverOutcome(solved=False, solver=self.name)
        label, sources = added[0]
        return SolverOutcome(solved=True, solver=self.name, sources=sources, source_list=label)


class FakeSupply:
    """The brightest ``count`` of ``full`` when asked for a count, else ``full``;
    a companion list that is ready on the third poll; for a solver of several
    lists ``full``, or its ``brightest`` first with ``full`` as the fallback."""

    def __init__(
        self, full: SourceList, companion: SourceList | None = None, *, brightest: int = 0
    ) -> None:
        self.full = full
        self.companion = companion
        self.brightest = brightest
        self.companions_asked = 0
        self.polls = 0

    def sources_for(self, count: int | None) -> SourceList:
        return self.full if count is None else self.full.head(count)

    def engine_lists(self) -> EngineLists:
        if not self.brightest:
            return [("sep", self.full)], []
        return [(BRIGHTEST_LIST, self.full.head(self.brightest))], [("sep", self.full)]

    def companions(self) -> LaterLists | None:
        self.companions_asked += 1
        if self.companion is None:
            return None

        def poll() -> list[tuple[str, SourceList]] | None:
            self.polls += 1
            if self.polls < 3:
                return None
            assert self.companion is not None
            return [("image2xy", self.companion)]

        return poll


def notes() -> tuple[list[str], Callable[[str, str], None]]:
    lines: list[str] = []
    return lines, lambda stage, message: lines.append(f"{stage}: {message}")


def climb(
    attempts: list[Attempt],
    solvers: list[Solver],
    tmp_path: Path,
    *,
    timeout: float = 100.0,
    learned: bool = False,
    supply: FakeSupply | None = None,
    cancel: threading.Event | None = None,
    note: Callable[[str, str], None] = lambda stage, message: None,
) -> Climb:
    supply = supply or FakeSupply(source_list(500))
    return run_attempts(
        attempts, solvers, solvers, supply, Climb(None, supply.full),
        width=WIDTH, clock=Clock(timeout, cancel), work=tmp_path, note=note, learned=learned,
    )  # fmt: skip


def ladder(hints_used: dict[str, Any]) -> list[Attempt]:
    return plan_attempts(HINTED, BLIND, hints_used=hints_used, without_learned_position=None)


def test_it_stops_at_the_first_verified_answer(tmp_path: Path) -> None:
    calls: list[Call] = []
    first = FakeSolver(calls, lambda c: True, name="first")
    second = FakeSolver(calls, lambda c: True, name="second")

    found = climb(ladder({"scale": [9, 11]}), [first, second], tmp_path)

    assert found.outcome is not None and found.outcome.solver == "first"
    assert [call.solver for call in calls] == ["first"]


def test_it_gives_the_next_solver_its_own_sources(tmp_path: Path) -> None:
    calls: list[Call] = []
    fast = FakeSolver(calls, lambda c: False, name="fast", bright=50)
    full = FakeSolver(calls, lambda c: True, name="full")

    found = climb([Attempt("as given", HINTED)], [fast, full], tmp_path)

    assert [(call.solver, len(call.sources)) for call in calls] == [("fast", 50), ("full", 500)]
    assert found.outcome is not None and found.outcome.solver == "full"
    assert len(found.sources) == 500


def test_it_retries_blind_after_a_lying_header(tmp_path: Path) -> None:
    calls: list[Call] = []
    # The header's scale is wrong: only the blind search finds the field.
    solver = FakeSolver(calls, lambda c: c.scale_low is None)

    found = climb(ladder({"scale": [9, 11]}), [solver], tmp_path)

    assert [call.blind for call in calls] == [False, True]
    assert calls[0].constraints.scale_low == pytest.approx(9.0)
    assert found.outcome is not None and found.outcome.solved


def test_without_hints_there_is_no_blind_retry(tmp_path: Path) -> None:
    calls: list[Call] = []
    found = climb(ladder({}), [FakeSolver(calls)], tmp_path)

    assert len(calls) == 1
    assert found.outcome is not None and not found.outcome.solved


def test_a_learned_position_is_dropped_before_going_blind() -> None:
    without = SolveParameters(scale_units="arcsecperpix", scale_lower=8.0, scale_upper=12.0)
    attempts = plan_attempts(
        HINTED, BLIND, hints_used={"learned": {"center": [1, 2]}}, without_learned_position=without
    )
    assert [a.label for a in attempts] == [
        "hinted",
        "without the learned position",
        "blind retry without the hints",
    ]
    assert [a.params for a in attempts] == [HINTED, without, BLIND]


def test_a_file_hint_gets_half_the_time_left(tmp_path: Path) -> None:
    calls: list[Call] = []
    climb(ladder({"scale": [9, 11]}), [FakeSolver(calls)], tmp_path, timeout=100.0)

    assert calls[0].timeout == pytest.approx(HINTED_TIME_SHARE * 100.0, abs=1.0)
    # The blind retry is the last attempt: it has all the time that is left.
    assert calls[1].timeout == pytest.approx(100.0, abs=1.0)


def test_a_learned_hint_gets_a_quarter_but_at_most_ten_seconds(tmp_path: Path) -> None:
    calls: list[Call] = []
    climb(ladder({"scale": [9, 11]}), [FakeSolver(calls)], tmp_path, timeout=100.0, learned=True)

    assert calls[0].timeout == pytest.approx(LEARNED_MAX_SECONDS, abs=0.5)
    calls.clear()
    climb(ladder({"scale": [9, 11]}), [FakeSolver(calls)], tmp_path, timeout=20.0, learned=True)
    assert calls[0].timeout == pytest.approx(5.0, abs=0.5)


def test_the_next_attempt_starts_when_a_share_is_up(tmp_path: Path) -> None:
    calls: list[Call] = []

    def answer(constraints: SolveConstraints) -> bool | Exception:
        return True if constraints.scale_low is None else SolveTimeoutError("share is up")

    lines, note = notes()
    found = climb(ladder({"scale": [9, 11]}), [FakeSolver(calls, answer)], tmp_path, note=note)

    assert [call.blind for call in calls] == [False, True]
    assert found.outcome is not None and found.outcome.solved
    assert "solving: hinted: its share of the time is up" in lines


def test_the_last_attempt_running_out_of_time_ends_the_ladder(tmp_path: Path) -> None:
    calls: list[Call] = []
    solver = FakeSolver(calls, lambda c: SolveTimeoutError("no time left"))

    with pytest.raises(SolveTimeoutError, match="no time left"):
        climb(ladder({"scale": [9, 11]}), [solver], tmp_path)
    assert [call.blind for call in calls] == [False, True]


def test_cancel_stops_before_the_next_solver(tmp_path: Path) -> None:
    calls: list[Call] = []
    cancel = threading.Event()
    first = FakeSolver(calls, name="first", cancel_after=cancel)
    second = FakeSolver(calls, lambda c: True, name="second")

    with pytest.raises(SolveCancelledError):
        climb(ladder({"scale": [9, 11]}), [first, second], tmp_path, cancel=cancel)
    assert [call.solver for call in calls] == ["first"]


def test_a_solver_that_searches_several_lists_gets_the_companion(tmp_path: Path) -> None:
    calls: list[Call] = []
    companion = source_list(300, seed=2)
    supply = FakeSupply(source_list(500), companion)
    several = FakeSeveralLists(calls)
    lines, note = notes()

    found = climb([Attempt("as given", BLIND)], [several], tmp_path, supply=supply, note=note)

    assert several.polls == 3
    assert found.outcome is not None and found.outcome.source_list == "image2xy"
    assert found.sources is companion
    assert "solving: solved from the image2xy source list" in lines


def test_a_solver_of_several_lists_starts_on_the_brightest_and_keeps_the_full_list(
    tmp_path: Path,
) -> None:
    full = source_list(500)
    supply = FakeSupply(full, source_list(300, seed=2), brightest=300)
    several = FakeSeveralLists([])
    several.solve_first = True
    lines, note = notes()

    found = climb([Attempt("as given", BLIND)], [several], tmp_path, supply=supply, note=note)

    assert [label for label, _ in several.lists] == [BRIGHTEST_LIST]
    assert len(several.lists[0][1]) == 300
    assert [(label, len(sources)) for label, sources in several.fallback] == [("sep", 500)]
    # Solved from the brightest head: the answer (and so the final fit) has the whole list.
    assert found.outcome is not None and found.outcome.source_list == BRIGHTEST_LIST
    assert found.sources is full
    assert f"solving: solved from the {BRIGHTEST_LIST} source list" in lines


def test_a_solver_of_one_list_is_not_offered_companions(tmp_path: Path) -> None:
    supply = FakeSupply(source_list(500), source_list(300, seed=2))
    climb([Attempt("as given", BLIND)], [FakeSolver([], lambda c: True)], tmp_path, supply=supply)

    assert supply.companions_asked == 0


def test_a_blind_attempt_leaves_out_a_solver_the_field_is_too_narrow_for() -> None:
    narrow = FakeSolver([], name="wide-fields-only", narrowest_deg=5.0)
    other = FakeSolver([], name="any-field")
    lines, note = notes()

    assert blind_solvers([narrow, other], 2.0, where="FOCALLEN", note=note) == [other]
    assert "too narrow for wide-fields-only" in lines[0]
    assert blind_solvers([narrow, other], 8.0, where="FOCALLEN", note=note) == [narrow, other]
    # Never none: a solver the field is too narrow for beats no solver.
    also = FakeSolver([], name="also-wide-only", narrowest_deg=5.0)
    assert blind_solvers([narrow, also], 2.0, where="FOCALLEN", note=note) == [narrow, also]


@pytest.mark.parametrize(
    ("constraints", "first_range", "told"),
    [
        (SolveConstraints(), 4.0, 4.0),  # the fast path's blind miss: likely narrower
        (SolveConstraints(), 0.0, None),  # a solver of any field says nothing
        (SolveConstraints(scale_low=9.0, scale_high=11.0), 4.0, None),  # not blind
    ],
)
def test_a_blind_miss_of_a_solver_of_wide_fields_tells_the_next_one(
    tmp_path: Path, constraints: SolveConstraints, first_range: float, told: float | None
) -> None:
    calls: list[Call] = []
    solvers: list[Solver] = [
        FakeSolver(calls, name="fast", narrowest_deg=first_range),
        FakeSolver(calls, name="slow", answer=lambda c: True),
    ]
    outcome, _ = run_solvers(
        solvers, FakeSupply(source_list(500)), constraints,
        work=tmp_path, clock=Clock(10.0, None), note=lambda s, m: None, label="as given",
    )  # fmt: skip
    assert outcome is not None and outcome.solved
    assert [c.constraints.narrower_than for c in calls] == [None, told]


def test_run_solvers_reports_the_last_failure(tmp_path: Path) -> None:
    calls: list[Call] = []
    solvers: list[Solver] = [FakeSolver(calls, name="a"), FakeSolver(calls, name="b")]
    outcome, sources = run_solvers(
        solvers, FakeSupply(source_list(500)), SolveConstraints(),
        work=tmp_path, clock=Clock(10.0, None), note=lambda s, m: None, label="as given",
    )  # fmt: skip
    assert outcome is not None and outcome.solver == "b" and not outcome.solved
    assert len(sources) == 500


def test_the_pipeline_climbs_with_the_solvers_of_its_configuration(tmp_path: Path) -> None:
    calls: list[Call] = []
    config = EngineConfig(
        solvers=(FakeSolver(calls, name="only"),),
        index_dirs=(tmp_path / "no-indexes",),
        make_pictures=False,
        write_files=False,
    )
    # A star list whose file said 9-11"/px: tried first, then blind.
    lying = Hints(scale_lower=9.0, scale_upper=11.0, sources=("FITS WCS",), scale_source="FITS WCS")
    params = SolveParameters(timeout=30.0).replace(file_hints=lying)

    result = solve(source_list(200), params, tmp_path / "out", config=config)

    assert [call.blind for call in calls] == [False, True]
    assert not result.solved
    assert isinstance(result.failure, NoMatchError)
    assert "only (hinted)" in result.log and "only (blind retry without the hints)" in result.log
