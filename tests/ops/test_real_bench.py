"""bench/real_bench.py's comparison with the faster peer (solve-field or StellarSolver)."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

BENCH = REPO_ROOT / "bench"
REF = {"ra": 80.0, "dec": -5.0, "pixscale": 70.0}


@pytest.fixture(scope="module")
def rb() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("real_bench")


def case(rb: ModuleType, name: str, category: str = "star-tracker") -> Any:
    return rb.Case(f"{name} blind", name, f"/x/{name}.jpg", category, "blind", {}, dict(REF))


def run(rb: ModuleType, tool: str, c: Any, seconds: float, *, right: bool = True) -> Any:
    if right:
        return rb.Run(tool, c.name, True, seconds, REF["ra"], REF["dec"], REF["pixscale"])
    # Solved, but 10 degrees off: wrong.
    return rb.Run(tool, c.name, True, seconds, REF["ra"] + 10.0, REF["dec"], REF["pixscale"])


def test_faster_peer_is_the_fastest_right_answer_and_ratios_follow(rb: ModuleType) -> None:
    a, b, c, d = (case(rb, n) for n in "abcd")
    runs = {}
    for r in (
        # a: StellarSolver faster; skysolve 2 x it.
        run(rb, "solve-field", a, 5.0),
        run(rb, "stellarsolver", a, 1.0),
        run(rb, "skysolve", a, 2.0),
        # b: StellarSolver answers wrong quickly: solve-field is the yardstick.
        run(rb, "solve-field", b, 4.0),
        run(rb, "stellarsolver", b, 0.5, right=False),
        run(rb, "skysolve", b, 3.0),
        # c: StellarSolver fails fast: solve-field again.
        run(rb, "solve-field", c, 10.0),
        rb.Run("stellarsolver", c.name, False, 0.2),
        run(rb, "skysolve", c, 1.0),
        # d: no peer right: left out of the times.
        rb.Run("solve-field", d.name, False, 60.0),
        rb.Run("stellarsolver", d.name, False, 60.0),
        run(rb, "skysolve", d, 50.0),
    ):
        runs[(r.tool, r.case)] = r

    assert rb.faster_peer(a, runs, 5.0).tool == "stellarsolver"
    assert rb.faster_peer(b, runs, 5.0).tool == "solve-field"
    assert rb.faster_peer(c, runs, 5.0).tool == "solve-field"
    assert rb.faster_peer(d, runs, 5.0) is None

    cmp = rb.compare_with_peers([a, b, c, d], runs, "skysolve", 5.0, 1.5)
    assert (cmp.cases, cmp.unsolved_by_peers) == (4, 1)
    assert cmp.faster == {"solve-field": 2, "stellarsolver": 1}
    assert cmp.ours_median == 2.0  # of 2, 3, 1
    assert cmp.peer_median == 4.0  # of 1, 4, 10
    assert cmp.median_ratio == pytest.approx(0.5)
    assert (cmp.worst_case, cmp.worst_ratio) == ("a blind", pytest.approx(2.0))
    assert cmp.over == [("a blind", pytest.approx(2.0))]

    assert rb.compare_with_peers([a], runs, "skysolve-no-fastpath", 5.0) is None

    table = rb.summarise([a, b, c, d], runs, 5.0, 1.5)
    assert "StellarSolver solved (wrong)" in table
    row = next(
        line
        for line in table.splitlines()
        if line.startswith("| all | blind | with fast path | 4 (1) |")
    )
    assert row.endswith("| 2 / 1 | 2.00 | 4.00 | 0.50 | 2.00 (a) | a 2.00x | - |")

    # skysolve's own solve time (no interpreter start-up), where every run reports it.
    for name, total in (("a", 1.5), ("b", 2.0), ("c", 0.5), ("d", 40.0)):
        runs[("skysolve", f"{name} blind")].timings = {"read": 0.1, "total": total}
    cmp = rb.compare_with_peers([a, b, c, d], runs, "skysolve", 5.0, 1.5)
    assert cmp.inprocess_median == 1.5  # of 1.5, 2.0, 0.5
    assert cmp.inprocess_worst == pytest.approx(1.5)  # a: 1.5 / 1.0
    assert "| 1.50 (0.38; 1.50) |" in rb.summarise_peers([a, b, c, d], runs, 5.0)


def test_without_stellarsolver_runs_the_first_table_keeps_its_columns(rb: ModuleType) -> None:
    a = case(rb, "a")
    runs = {
        (r.tool, r.case): r for r in (run(rb, "solve-field", a, 4.0), run(rb, "skysolve", a, 1.0))
    }
    first = rb.summarise([a], runs, 5.0).split("\n\n")[0].splitlines()
    assert "StellarSolver" not in first[0]
    assert all(line.count("|") == 13 for line in first)
    assert "| none |" in rb.summarise_peers([a], runs, 5.0)


def test_the_result_line_is_parsed_from_ssharness_output(rb: ModuleType) -> None:
    out = (
        "IMAGE x\nLOG [  0.1] Solved\n"
        'RESULT {"seconds": 0.12, "solved": true}\nLOG [ 0.4] Aborting...\n'
    )
    assert rb.parse_ssharness(out) == {"seconds": 0.12, "solved": True}
    assert rb.parse_ssharness("LOG only\n") == {}
    assert rb.stellarsolver_hint_args(
        {"scale_low": 63.0, "scale_high": 77.0, "ra": 80.0, "dec": -5.0, "radius": 10.0}
    ) == [
        "--scale-units",
        "arcsecperpix",
        "--scale-low",
        "63",
        "--scale-high",
        "77",
        "--ra",
        "80.000000",
        "--dec",
        "-5.000000",
        "--radius",
        "10",
    ]
