"""No layer imports a layer above it: the folder names are the architecture.

Every module under ``skysolve/`` is parsed with :mod:`ast`; every import
counts, at the top, inside a function or under ``TYPE_CHECKING``.  A package
may import its own modules, any package of a lower layer and the packages of
its own layer.
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
