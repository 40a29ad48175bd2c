"""No layer imports a layer above it: the folder names are the architecture.

Every module under ``skysolve/`` is parsed with :mod:`ast`; every import
counts, at the top, inside a function or under ``TYPE_CHECKING``.  A package
may import its own modules, any package of a lower layer and the packages of
its own layer.

Three more rules keep the modules readable one at a time: no import circle
between modules (imports inside functions and under ``TYPE_CHECKING`` count
too: a circle tied late is still a circle), no ``from X import _name`` of
another module's private name, and no module of the engine over
:data:`MAX_LINES` lines without a docstring line starting ``Kept whole:`` that
says why it must stay whole.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "skysolve"

#: Lowest first.  The engine (and the error tree it raises) imports no Django;
#: ``remote`` is the engine run on another machine, Django-free as well;
#: ``submissions`` (submissions, images, jobs and input preparation),
#: ``accounts`` (who submits: profiles, API keys, sessions, rate limits) and
#: ``community`` (albums, tags, comments, flags) are the data model and its
#: rules; ``queue`` moves jobs; the web applications sit on top of it, ``web``
#: (settings, URLs, checks) assembles them and ``cli`` starts everything.
#:
#: The three apps of the data model share a layer because their models are
#: one graph of foreign keys: a submission names its album and is made with
#: its submitter's profile defaults and API session, and the solver's machine
#: tags are the community's tags; the community's models point at images and
#: jobs.  Within the layer the models go one way (see
#: :func:`test_the_submissions_models_name_no_other_app`).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("engine",),
    ("remote",),
    ("accounts", "submissions", "community"),
    ("queue",),
    ("api", "front", "ops"),
    ("web",),
    ("cli",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def package_of(path: Path) -> str:
    """The top-level part of ``skysolve`` a file belongs to (``errors`` for errors.py)."""
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def imported(path: Path) -> list[tuple[int, str]]:
    return imported_from(path, ["skysolve", *path.relative_to(ROOT).parts[:-1]])


def imported_from(path: Path, package: list[str]) -> list[tuple[int, str]]:
    """(line, module) of every ``skysolve`` import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from skysolve import queue`` imports skysolve.queue.
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("skysolve.")]


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        own = package_of(path)
        for line, module in imported(path):
            target = module.split(".")[1]
            if target == own or target not in RANK:
                continue
            if RANK[target] > RANK[own]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line}: {own} imports {module}")
    return bad


def test_it_knows_every_package() -> None:
    packages = {package_of(p) for p in ROOT.rglob("*.py")} - {"__init__"}
    assert packages <= set(RANK), f"put {sorted(packages - set(RANK))} in a layer"


def test_it_finds_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "skysolve_sample.py"
    sample.write_text(
        "from skysolve import queue\n"
        "def f():\n    from skysolve.cli.worker import run\n"
        "if TYPE_CHECKING:\n    import skysolve.web.settings\n"
    )
    modules = [m for _, m in imported_from(sample, ["skysolve", "submissions"])]
    assert modules == ["skysolve.queue", "skysolve.cli.worker.run", "skysolve.web.settings"]


def test_no_layer_imports_a_layer_above_it() -> None:
    bad = upward_imports()
    if bad:
        pytest.fail("imports of a higher layer:\n" + "\n".join(bad))


# -- no import circles ------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, dict[str, int]]:
    """Module -> {imported skysolve module: line}, every import counted.

    Imports inside functions and under ``TYPE_CHECKING`` count as well: a
    function-level import that closes a circle is the same knot, only tied
    later.  ``from package import name`` counts as an import of the submodule
    when ``name`` is one, else of the package.  A module's import of its own
    package (which Python runs first anyway) is not an edge.
    """
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for line, target in imported(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_it_finds_an_import_circle() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_module_imports_itself_in_a_circle() -> None:
    graph = import_graph()
    found = cycles(graph)
    lines = [
        f"  {a} imports {b} (line {graph[a][b]})"
        for group in found
        for a in group
        for b in graph[a]
        if b in group
    ]
    if found:
        pytest.fail("import circles:\n" + "\n".join(lines))


# -- no private names across modules ----------------------------------------------

#: ``from module import _name`` that another change removes; each entry must
#: still occur, so a stale one fails and is deleted.
PRIVATE_IMPORTS_BEING_REMOVED: set[tuple[str, str]] = set()


def private_imports() -> set[tuple[str, str]]:
    """(importing module, module.name) of every ``from X import _name`` in skysolve.

    A name with one leading underscore is its module's own business; a
    dunder (``__version__``) is not private.
    """
    found = set()
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.add((module_name(path), f"{node.module}.{alias.name}"))
    return found


def test_no_module_imports_another_modules_private_name() -> None:
    found = private_imports()
    bad = sorted(found - PRIVATE_IMPORTS_BEING_REMOVED)
    stale = sorted(PRIVATE_IMPORTS_BEING_REMOVED - found)
    assert not stale, f"no longer imported, delete from PRIVATE_IMPORTS_BEING_REMOVED: {stale}"
    if bad:
        pytest.fail(
            "imports of another module's private name (make it public where it is "
            "shared, or move the code):\n" + "\n".join(f"  {a}: {b}" for a, b in bad)
        )


# -- modules a reader can hold in their head --------------------------------------

#: A module longer than this says, in its docstring, why it must stay whole.
MAX_LINES = 500
#: The docstring line that says so.
KEPT_WHOLE = "Kept whole:"
#: Where the rule holds: every module of the package.  Migrations are written
#: by Django and read by no one in order to change behaviour, so they are left out.
SIZE_CHECKED = (ROOT,)
#: Long modules another change is splitting; each must still be long and
#: unmarked, so a stale entry fails and is deleted.
BEING_SPLIT: set[str] = set()


def long_modules_without_reason() -> list[str]:
    bad = []
    for top in SIZE_CHECKED:
        for path in sorted(top.rglob("*.py")):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            lines = text.count("\n")
            if lines <= MAX_LINES:
                continue
            doc = ast.get_docstring(ast.parse(text)) or ""
            if not any(line.startswith(KEPT_WHOLE) for line in doc.splitlines()):
                bad.append(f"{path.relative_to(ROOT.parent)}: {lines} lines")
    return bad


def test_no_long_module_without_a_reason_to_stay_whole() -> None:
    found = long_modules_without_reason()
    stale = BEING_SPLIT - {entry.partition(":")[0] for entry in found}
    assert not stale, f"short or marked now, delete from BEING_SPLIT: {sorted(stale)}"
    bad = [entry for entry in found if entry.partition(":")[0] not in BEING_SPLIT]
    if bad:
        pytest.fail(
            f"modules over {MAX_LINES} lines: split them by job, or add a docstring "
            f"line starting {KEPT_WHOLE!r} that says why they must stay whole:\n  "
            + "\n  ".join(bad)
        )


# -- test fields stay out of the package ------------------------------------------


def test_the_package_imports_no_test_fields() -> None:
    """``testfields/`` sits beside ``skysolve/`` and is not installed with it."""
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            bad += [
                f"{path.relative_to(ROOT.parent)}:{node.lineno}: {name}"
                for name in names
                if name.split(".")[0] == "testfields"
            ]
    assert not bad, "the installed package imports the test fields:\n" + "\n".join(bad)


def test_the_submissions_models_name_no_other_app() -> None:
    # Accounts' and the community's models point at submissions, images and
    # jobs; the submissions' models name them only by string
    # (``Submission.album``), so the data model has one direction.
    path = ROOT / "submissions" / "models.py"
    others = {
        f"{line}: {module}"
        for line, module in imported(path)
        if module.split(".")[1] not in ("engine", "errors", "submissions")
    }
    assert not others, f"skysolve/submissions/models.py imports {sorted(others)}"
