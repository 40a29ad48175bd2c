"""No test may hide its check inside a conditional expression.

``assert A == B if c else C`` reads as ``assert (A == B) if c else C``: when
``c`` is false it asserts only that ``C`` is truthy, so the comparison is never
made.  Two such asserts in the URL matrix went unnoticed; this walks every test
module's syntax tree so a third cannot.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def conditional_asserts(source: str, filename: str) -> list[int]:
    """Line numbers of ``assert`` statements whose test is an ``x if c else y``."""
    tree = ast.parse(source, filename=filename)
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert) and isinstance(node.test, ast.IfExp)
    ]


def test_it_finds_the_conditional_assert_shape() -> None:
    source = (
        "def f(a, b, c):\n"
        "    assert a == b if c else a\n"
        "    assert a == (b if c else a)\n"
        "    assert (a if c else b), 'message'\n"
    )
    assert conditional_asserts(source, "example.py") == [2, 4]


def test_it_has_no_assert_whose_test_is_a_conditional_expression() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        for line in conditional_asserts(path.read_text(encoding="utf-8"), str(path))
    ]
    assert offenders == [], "assert (A if c else B) checks only one branch: " + ", ".join(offenders)
