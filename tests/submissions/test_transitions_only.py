"""Only ``submissions/transitions.py`` changes a job's state.

Every module under ``skysolve/`` is parsed with :mod:`ast` and searched for
the three ways a ``Job`` row gets written: an ``update`` of a queryset built
from ``Job.objects`` (directly, or through a name it was assigned to), a
``save`` of something called a job, and an assignment to one of a job's state
fields (``job.status = ...``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "skysolve"
ALLOWED = {ROOT / "submissions" / "transitions.py"}

#: Methods that write rows of a queryset or an instance.
WRITES = {"update", "bulk_update", "update_or_create", "save"}

#: A job's state: what the queue and the solve change (not its relations, not its id).
STATE_FIELDS = {
    "status", "stage", "queued_at", "started_at", "finished_at", "attempts", "worker_id",
    "lease_expires", "last_polled", "cancel_requested", "error_code", "error_message", "log",
    "result", "ra", "dec", "radius", "pixscale", "orientation", "parity", "width_arcsec",
    "height_arcsec", "sky_pixel", "sky_size",
}  # fmt: skip


def _from_job_objects(node: ast.AST, tainted: set[str]) -> bool:
    """Whether the method chain ``node`` starts at ``Job.objects`` or at a name bound to one."""
    while True:
        if isinstance(node, ast.Attribute):
            if node.attr == "objects" and isinstance(node.value, ast.Name):
                return node.value.id == "Job"
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return isinstance(node, ast.Name) and node.id in tainted


def _is_job_name(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return name == "job" or name.endswith("_job")


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    return [
        node
        for node in tree.body
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]


def job_writes(source: str, filename: str = "<source>") -> list[str]:
    """Where ``source`` writes a Job row, as ``file:line: code`` strings."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for scope in [ast.Module(body=_top_level(tree), type_ignores=[]), *scopes]:
        # Names bound (in this scope) to a queryset of jobs, in source order.
        tainted: set[str] = set()
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and _from_job_objects(node.value, tainted):
                tainted.update(t.id for t in node.targets if isinstance(t, ast.Name))
        for node in ast.walk(scope):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                if node.func.attr in WRITES and (
                    _from_job_objects(receiver, tainted)
                    or (node.func.attr == "save" and _is_job_name(receiver))
                ):
                    found.append(f"{filename}:{node.lineno}: {ast.unparse(node)[:80]}")
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in STATE_FIELDS
                    and _is_job_name(target.value)
                ):
                    found.append(
                        f"{filename}:{getattr(node, 'lineno', 0)}: {ast.unparse(node)[:80]}"
                    )
    return sorted(set(found))


def test_it_finds_every_kind_of_job_write() -> None:
    # The forms the worker, the services and the archive expansion used before
    # the transitions module existed.
    old = """
def claim(job_id):
    return Job.objects.filter(id=job_id, status=Job.QUEUED).update(status=Job.RUNNING)

def heartbeat(running):
    mine = Job.objects.filter(id=running.job_id)
    if not mine.update(lease_expires=None):
        return
    requested = mine.filter(cancel_requested=True)
    requested.update(error_code="x")

def by_hand(job):
    job.status = Job.FAILURE
    job.save()
    self.job.stage = "finished"
"""
    found = job_writes(old)
    assert sorted(int(line.split(":")[1]) for line in found) == [3, 7, 10, 13, 14, 15]


def test_it_leaves_reads_and_other_models_alone() -> None:
    fine = """
def read(job_id):
    jobs = Job.objects.filter(id=job_id)
    Submission.objects.filter(pk=1).update(error_message="")
    running.lost = True
    job.hung_up = True
    picture.save(path)
    return list(jobs.values_list("id", flat=True))
"""
    assert job_writes(fine) == []


@pytest.mark.parametrize(
    "path",
    sorted(p for p in ROOT.rglob("*.py") if "migrations" not in p.parts and p not in ALLOWED),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_it_finds_no_job_write_outside_the_transitions(path: Path) -> None:
    assert job_writes(path.read_text(), str(path.relative_to(ROOT))) == []
