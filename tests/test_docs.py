"""The README and docs/ say only what exists.

README.md and every ``docs/*.md`` page are read as GitHub renders them:

* every relative link reaches a file, and a ``#anchor`` a heading of that page
  (GitHub's anchors: lower case, punctuation dropped, spaces made hyphens, a
  repeated heading numbered ``-1``, ``-2``...);
* every ``make TARGET`` they name in code is a target of the Makefile, and every
  ``skysolve COMMAND [ACTION]`` a sub-command (and action) of the ``skysolve`` command;
* every ``bench/...``, ``tests/...`` and ``skysolve/...`` path they name exists;
* the settings table (``## Configuration`` in docs/running.md) lists exactly the
  ``SKYSOLVE_*`` environment variables that ``skysolve/`` reads, and any other
  ``SKYSOLVE_*`` name the docs mention is read by the tests, the benchmarks or CI.

The checks are functions of a directory, so the last tests run them on a small
broken tree to show that each one can fail.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
MAKE = re.compile(r"(?<![\w./-])make\s+([A-Za-z][\w-]*)\b(?!=)")
SKYSOLVE_COMMAND = re.compile(
    r"(?:^|[\s(`'\"]|/bin/)skysolve[ \t]+([a-z][\w-]*)(?:[ \t]+([a-z][\w-]*))?"
)
REPO_PATH = re.compile(r"(?<![\w./~-])((?:bench|tests|skysolve)/[\w./-]*[\w/])")
SETTING = re.compile(r"\bSKYSOLVE_[A-Z0-9_]*[A-Z0-9]\b")
USERS = "skysolve/, tests/, bench/, .ci/, Makefile"
TARGET = re.compile(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", re.M)


def doc_files(root: Path) -> list[Path]:
    """README.md and the pages of docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def fenced_split(text: str) -> tuple[str, list[str]]:
    """The text outside fenced code blocks, and the blocks' contents."""
    prose: list[str] = []
    blocks: list[str] = []
    block: list[str] | None = None
    for line in text.split("\n"):
        if FENCE.match(line):
            if block is None:
                block = []
            else:
                blocks.append("\n".join(block))
                block = None
            prose.append("")
            continue
        if block is None:
            prose.append(line)
        else:
            block.append(line)
            prose.append("")
    return "\n".join(prose), blocks


def code_pieces(text: str) -> list[str]:
    """Fenced blocks and inline code spans (which may run over a line break)."""
    prose, blocks = fenced_split(text)
    # A span broken over two lines reads as one line.
    return blocks + [m.group(2).replace("\n", " ") for m in INLINE_CODE.finditer(prose)]


def without_code(text: str) -> str:
    """The text with code blocks and spans blanked, where links are links."""
    prose, _ = fenced_split(text)
    return INLINE_CODE.sub(" ", prose)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown page, repeated headings numbered."""
    prose, _ = fenced_split(text)
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose.split("\n"):
        m = HEADING.match(line)
        if not m:
            continue
        slug = github_anchor(m.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(root: Path) -> list[str]:
    """Relative links of the docs whose file or heading anchor is missing."""
    problems: list[str] = []
    for page in doc_files(root):
        for target in LINK.findall(without_code(page.read_text())):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, mailto:...
                continue
            path_part, _, anchor = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(root)}: {target}"
            if not dest.exists():
                problems.append(f"{where}: no file {dest}")
            elif anchor:
                if dest.suffix != ".md":
                    problems.append(f"{where}: an anchor into a file that is not Markdown")
                elif anchor not in anchors(dest.read_text()):
                    problems.append(f"{where}: no heading with anchor #{anchor}")
    return problems


def makefile_targets(root: Path) -> set[str]:
    text = (root / "Makefile").read_text()
    phony = re.findall(r"^\.PHONY:(.*)$", text, re.M)
    return set(TARGET.findall(text)) | {t for line in phony for t in line.split()}


def missing_make_targets(root: Path) -> list[str]:
    """``make TARGET`` commands named in the docs' code that the Makefile lacks."""
    targets = makefile_targets(root)
    return [
        f"{page.relative_to(root)}: make {name}"
        for page in doc_files(root)
        for piece in code_pieces(page.read_text())
        for name in MAKE.findall(piece)
        if name not in targets
    ]


def cli_commands() -> dict[str, set[str]]:
    """The ``skysolve`` command's sub-commands, each with its actions (if it has any)."""
    from skysolve.cli import build_parser

    def choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        return {
            name: sub
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
            for name, sub in action.choices.items()
        }

    return {name: set(choices(sub)) for name, sub in choices(build_parser()).items()}


def missing_cli_commands(root: Path, commands: dict[str, set[str]]) -> list[str]:
    """``skysolve COMMAND [ACTION]`` named in the docs' code that the command lacks."""
    problems: list[str] = []
    for page in doc_files(root):
        for piece in code_pieces(page.read_text()):
            for command, action in SKYSOLVE_COMMAND.findall(piece):
                where = f"{page.relative_to(root)}: skysolve {command}"
                if command not in commands:
                    problems.append(where)
                elif action and commands[command] and action not in commands[command]:
                    problems.append(f"{where} {action}")
    return problems


def missing_paths(root: Path) -> list[str]:
    """``bench/``, ``tests/`` and ``skysolve/`` paths named in the docs that do not exist."""
    return [
        f"{page.relative_to(root)}: {path}"
        for page in doc_files(root)
        for path in REPO_PATH.findall(page.read_text())
        if not (root / path).exists()
    ]


def settings_table(root: Path) -> set[str]:
    """The ``SKYSOLVE_*`` names in the first column of docs/running.md's Configuration table."""
    text = (root / "docs" / "running.md").read_text()
    section = re.search(r"^## Configuration\n(.*?)(?=^## )", text, re.M | re.S)
    assert section, "docs/running.md has no '## Configuration' section"
    names: set[str] = set()
    for line in section.group(1).split("\n"):
        if line.startswith("| `"):
            names.update(SETTING.findall(line.split("|")[1]))
    return names


def settings_read(package: Path) -> set[str]:
    """``SKYSOLVE_*`` names a package's code reads: string constants that are exactly a name."""
    names: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if SETTING.fullmatch(node.value):
                    names.add(node.value)
    return names


def settings_used_outside(root: Path) -> set[str]:
    """``SKYSOLVE_*`` names the tests, benchmarks, CI script and Makefile use."""
    this = Path(__file__).name  # whose samples name settings that exist nowhere
    files = [p for p in root.glob("tests/**/*.py") if p.name != this]
    files += [*root.glob("bench/**/*.py"), root / "Makefile"]
    files += [p for p in (root / ".ci").glob("*") if p.is_file()]
    return {name for path in files if path.exists() for name in SETTING.findall(path.read_text())}


def settings_problems(root: Path) -> list[str]:
    table = settings_table(root)
    read = settings_read(root / "skysolve")
    mentioned = {name for page in doc_files(root) for name in SETTING.findall(page.read_text())}
    problems = [
        f"{name}: in the settings table, read nowhere in skysolve/" for name in sorted(table - read)
    ]
    problems += [
        f"{name}: read in skysolve/, missing from the settings table"
        for name in sorted(read - table)
    ]
    problems += [
        f"{name}: named in the docs, used nowhere ({USERS})"
        for name in sorted(mentioned - table - read - settings_used_outside(root))
    ]
    return problems


def test_it_finds_the_pages() -> None:
    names = {p.name for p in doc_files(ROOT)}
    assert {"README.md", "running.md", "api.md", "benchmarks.md"} <= names
    assert all(p.exists() for p in doc_files(ROOT))


def test_it_links_only_to_files_and_headings_that_exist() -> None:
    assert broken_links(ROOT) == []


def test_it_names_only_make_targets_that_exist() -> None:
    assert missing_make_targets(ROOT) == []


def test_it_names_only_skysolve_commands_that_exist() -> None:
    commands = cli_commands()
    assert {"solve", "serve", "db", "index"} <= set(commands)
    assert "fetch" in commands["index"]
    assert missing_cli_commands(ROOT, commands) == []


def test_it_names_only_paths_that_exist() -> None:
    assert missing_paths(ROOT) == []


def test_it_documents_every_setting_the_code_reads_and_no_other() -> None:
    assert settings_problems(ROOT) == []


def test_it_reads_the_settings_table() -> None:
    table = settings_table(ROOT)
    assert {"SKYSOLVE_DATA_DIR", "SKYSOLVE_JOB_TIMEOUT", "SKYSOLVE_HOST", "SKYSOLVE_PORT"} <= table


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        (
            "Engine: `skysolve solve` against `solve-field`",
            "engine-skysolve-solve-against-solve-field",
        ),
        (
            "The yardstick: a blind 1.5 × 1° field of 800×526",
            "the-yardstick-a-blind-15--1-field-of-800526",
        ),
        (
            "Where skysolve answers as nova's code does (NOVA-parity notes)",
            "where-skysolve-answers-as-novas-code-does-nova-parity-notes",
        ),
        ("Scale-out", "scale-out"),
    ],
)
def test_it_makes_githubs_anchors(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor


def test_the_readme_gives_the_accuracy_benchmarks_command() -> None:
    """#17: the accuracy benchmark is in the README with its command."""
    readme = (ROOT / "README.md").read_text()
    assert "make bench-accuracy" in readme and "bench/accuracy_bench.py --shared" in readme


def broken_tree(root: Path) -> Path:
    """A repository whose docs break every rule once."""
    (root / "docs").mkdir()
    (root / "skysolve").mkdir()
    (root / "tests").mkdir()
    (root / "Makefile").write_text(".PHONY: serve\nserve: setup\n\techo\nBIN := x\n")
    (root / "skysolve" / "settings.py").write_text(
        'import os\nA = os.environ.get("SKYSOLVE_READ")\n'
        'B = os.environ.get("SKYSOLVE_UNDOCUMENTED")\n'
        'MSG = "SKYSOLVE_READ is not a setting name alone"\n'
    )
    (root / "README.md").write_text(
        "# Title\n\nSee [the page](docs/page.md#there), [nothing](docs/gone.md),\n"
        "[a heading](docs/page.md#no-such-heading) and [web](https://example.org/x).\n\n"
        "```\nmake serve\nmake tset\n```\n\nRun `make\nbench`; `[not a link](nowhere.md)`.\n"
    )
    (root / "docs" / "page.md").write_text(
        "# Page\n\n## There\n\nSee `skysolve/settings.py`, `tests/missing.py`, `bench/gone.py`.\n\n"
        "## Configuration\n\n| variable | default |\n|---|---|\n"
        "| `SKYSOLVE_READ` | 1 |\n| `SKYSOLVE_UNREAD` | 2 |\n\n"
        "## Other\n\n`SKYSOLVE_TEST_ONLY` steers nothing.\n\n"
        "```\n.venv/bin/skysolve solve x.fits\nskysolve serve\n```\n\n"
        "`skysolve index fetchh --series 5200`, `skysolve index list`, `skysolve index`,\n"
        "`/srv/skysolve/bin`.\n"
    )
    return root


def test_it_catches_broken_links(tmp_path: Path) -> None:
    problems = broken_links(broken_tree(tmp_path))
    assert len(problems) == 2
    assert "docs/gone.md: no file" in problems[0]
    assert "docs/page.md#no-such-heading: no heading with anchor #no-such-heading" in problems[1]


def test_it_catches_missing_make_targets(tmp_path: Path) -> None:
    assert missing_make_targets(broken_tree(tmp_path)) == [
        "README.md: make tset",
        "README.md: make bench",
    ]


def test_it_catches_missing_skysolve_commands(tmp_path: Path) -> None:
    root = broken_tree(tmp_path)
    commands = {"solve": set(), "index": {"fetch", "list"}}
    assert missing_cli_commands(root, commands) == [
        "docs/page.md: skysolve serve",
        "docs/page.md: skysolve index fetchh",
    ]


def test_it_catches_missing_paths(tmp_path: Path) -> None:
    assert missing_paths(broken_tree(tmp_path)) == [
        "docs/page.md: tests/missing.py",
        "docs/page.md: bench/gone.py",
    ]


def test_it_catches_settings_read_but_undocumented_and_documented_but_unread(
    tmp_path: Path,
) -> None:
    broken_tree(tmp_path)
    (tmp_path / "docs" / "running.md").write_text((tmp_path / "docs" / "page.md").read_text())
    assert settings_problems(tmp_path) == [
        "SKYSOLVE_UNREAD: in the settings table, read nowhere in skysolve/",
        "SKYSOLVE_UNDOCUMENTED: read in skysolve/, missing from the settings table",
        f"SKYSOLVE_TEST_ONLY: named in the docs, used nowhere ({USERS})",
    ]
