"""astrometry.net's ``astrometry-engine`` as a :class:`~skysolve.engine.solving.base.Solver`.

``solve-field`` and nova try one index file after another in one process.  Here
the indexes that can match the allowed scale range are dealt out to one engine
process per core; each process checks its indexes "in parallel" (the engine's
``inparallel`` mode: all indexes at each depth of field stars before going
deeper), and the first process to solve stops the others.  Given several
source lists of one image (:meth:`AstrometryNetSolver.solve_lists`: skysolve's
own extraction and the list ``solve-field`` would make), the processes are
shared between the lists, each list searching every index, so the engine
is never worse off than ``solve-field`` with its own list.  A process that
searched its indexes with a list to the end without an answer searches them
again with the fallback lists (skysolve's brightest sources first, then its
whole list).  Parameters travel
in the header of the augmented star list (``.axy``) that we write, exactly as
``augment-xylist`` would, and the engine is always started with an argument
list, never through a shell.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from skysolve.engine.indexes.choosing import narrow_indexes, select_indexes, split_for_processes
from skysolve.engine.indexes.files import DEFAULT_INDEX_DIRS, IndexFile, find_indexes
from skysolve.engine.indexes.series import index_catalogue
from skysolve.engine.results import DeferredHeader, SourceList
from skysolve.engine.solving.axyfile import write_axy
from skysolve.engine.solving.base import SolveConstraints, Solver, SolverOutcome
from skysolve.errors import (
    ConfigurationError,
    SolveCancelledError,
    SolverFailedError,
    SolveTimeoutError,
)

if TYPE_CHECKING:
    from astropy.io import fits

#: How often the watcher checks processes, cancel flags and the clock.
POLL_SECONDS = 0.01

_SOLVED_WITH = re.compile(r"solved with index (\S+?)\.?$", re.MULTILINE)


@dataclass(frozen=True)
class AstrometryConfig:
    """How to run the engine: binary, index directories, processes."""

    binary: str = "astrometry-engine"
    index_dirs: tuple[Path, ...] = DEFAULT_INDEX_DIRS
    processes: int = 2
    #: Depths of field stars to try, in steps (astrometry.net's ANDPL/ANDPU pairs).
    depths: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 80, 100, 150, 200)
    #: Log-odds ratio needed to accept a match (astrometry.net's default is 1e9).
    odds_to_solve: float = 1e9
    #: Seconds after which the fallback lists (:meth:`AstrometryNetSolver.solve_lists`)
    #: are searched beside the first ones on every index not yet given them: a
    #: blind search of 150 sources with no answer in them runs past 40 s.
    fallback_after: float = 10.0
    #: Seconds the narrow indexes' process searches alone when the field is
    #: likely narrower than the others' quads (a fast-path blind miss,
    #: :attr:`~skysolve.engine.solving.base.SolveConstraints.narrower_than`),
    #: unless it ends sooner: on two cores the wide ones' processes took half
    #: its CPU (``panoptes_unsolved``: the narrow process answers in 0.08-0.12 s
    #: alone, 0.14-0.18 s beside them; docs/benchmarks.md).
    narrow_head_start: float = 0.25


def write_engine_config(path: Path, indexes: list[IndexFile], *, cpu_limit: float) -> Path:
    """An engine config naming exactly these indexes, checked in parallel."""
    lines = ["# written by skysolve", "inparallel", f"cpulimit {max(1, int(np.ceil(cpu_limit)))}"]
    lines += [f"index {ix.path}" for ix in indexes]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class _Run:
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    outputs: dict[str, Path]
    command: list[str]
    indexes: list[IndexFile]
    #: Which source list this process searches, and the list itself.
    label: str = ""
    sources: SourceList | None = None
    #: The lists the same indexes are searched with when this run ends unsolved.
    then: list[tuple[str, SourceList]] = field(default_factory=list)


class AstrometryNetSolver(Solver):
    """Solve with Debian's ``astrometry-engine`` and the installed index files."""

    name: ClassVar[str] = "astrometry.net"
    several_lists: ClassVar[bool] = True

    def __init__(self, config: AstrometryConfig | None = None) -> None:
        self.config = config or AstrometryConfig()

    def solve(
        self,
        sources: SourceList,
        constraints: SolveConstraints,
        workdir: Path,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> SolverOutcome:
        return self.solve_lists(
            [("sources", sources)], constraints, workdir, timeout=timeout, cancel=cancel
        )

    def solve_lists(
        self,
        lists: Sequence[tuple[str, SourceList]],
        constraints: SolveConstraints,
        workdir: Path,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
        later: Callable[[], list[tuple[str, SourceList]] | None] | None = None,
        fallback: Sequence[tuple[str, SourceList]] = (),
    ) -> SolverOutcome:
        """Search several source lists of one image at once; the first solution wins.

        The engine processes are shared out between the lists (at least one
        each); each list's processes split the indexes between them.  ``later``
        is polled while the engine runs: None while a list is still being
        made, then the lists to add (each with as many processes again), so
        a list that takes longer to extract does not hold back the others.
        ``fallback``: when a process of ``lists`` ends without an answer, its
        indexes are searched again with these, one process each, in its place
        (no more processes than cores while it runs); after
        ``fallback_after`` seconds (the configuration's) beside it on the
        indexes not yet given them.  When the field is likely narrow
        (``constraints.narrower_than``), the narrow indexes' processes start
        first and the others after ``narrow_head_start`` seconds (the
        configuration's), or as soon as those end without an answer (a list
        from ``later`` starts on all its indexes at once).  The outcome's
        ``sources`` is the list that solved, ``source_list`` its label.
        """
        if not lists:
            raise ValueError("solve_lists needs at least one source list")
        started = time.monotonic()
        first = lists[0][1]
        indexes = select_indexes(
            find_indexes(self.config.index_dirs),
            width=first.width,
            height=first.height,
            scale_low=constraints.scale_low or 0.0,
            scale_high=constraints.scale_high if constraints.scale_high is not None else np.inf,
            center=_center(constraints),
            radius=constraints.radius,
        )
        per_list = max(1, self.config.processes // len(lists))
        workdir.mkdir(parents=True, exist_ok=True)
        runs: list[_Run] = []
        several = len(lists) > 1 or later is not None or bool(fallback)

        def start_one(label: str, sources: SourceList, group: list[IndexFile]) -> _Run:
            remaining = max(0.5, timeout - (time.monotonic() - started))
            run = self._start(len(runs), group, sources, constraints, workdir, remaining)
            run.label = label if several else ""
            run.sources = sources
            runs.append(run)
            return run

        groups = split_for_processes(indexes, per_list, narrower_than=constraints.narrower_than)
        # When split_for_processes gave the narrow indexes a group of their
        # own (the first), its process starts first, the others after its head start.
        narrow_first = len(groups) > 1 and groups[0] == narrow_indexes(
            indexes, constraints.narrower_than
        )
        held: list[tuple[str, SourceList, list[IndexFile]]] = []

        def start(new_lists: Sequence[tuple[str, SourceList]], *, hold: bool = False) -> list[_Run]:
            """Runs for ``new_lists``; ``hold``: the wide groups wait in ``held``."""
            if hold and narrow_first:
                held.extend(
                    (label, sources, group) for label, sources in new_lists for group in groups[1:]
                )
                return [start_one(label, sources, groups[0]) for label, sources in new_lists]
            return [
                start_one(label, sources, group) for label, sources in new_lists for group in groups
            ]

        def wide() -> list[_Run] | None:
            """The held wide groups, once the narrow process has had its head
            start or ended (None: not yet)."""
            ended = [run for run in leaders if run.process.poll() is not None]
            if any(_answered(run) for run in ended):
                return []  # the watch takes its answer
            if len(ended) < len(leaders) and (
                time.monotonic() - started < self.config.narrow_head_start
            ):
                return None
            released = [start_one(label, sources, group) for label, sources, group in held]
            for run in released:
                run.then = list(fallback)
            held.clear()
            return released

        def more() -> list[_Run] | None:
            assert later is not None
            found = later()
            return None if found is None else start(found)

        def follow(run: _Run) -> list[_Run]:
            """The fallback lists on the indexes of ``run``, which ended unsolved."""
            then, run.then = run.then, []
            return [start_one(label, sources, run.indexes) for label, sources in then]

        def due() -> list[_Run] | None:
            """Once ``fallback_after`` has passed, the fallback lists beside the
            first ones still searching."""
            waiting = [run for run in runs if run.then]
            if not waiting:
                return []
            if time.monotonic() - started < self.config.fallback_after:
                return None
            return [new for run in waiting for new in follow(run)]

        try:
            leaders = start(lists, hold=True)
            for run in leaders:
                run.then = list(fallback)
            polls = [poll for poll, used in ((more, later), (due, fallback)) if used]
            winner = self._watch(
                list(runs),
                started=started,
                timeout=timeout,
                cancel=cancel,
                more=([wide] if held else []) + polls,
                follow=follow,
            )
        finally:
            for run in runs:
                _stop(run.process)
        log = _collect_logs(runs)
        elapsed = time.monotonic() - started
        if winner is None:
            failed = [r for r in runs if r.process.returncode not in (0, None)]
            if failed and len(failed) == len(runs):
                tail = "\n".join(log.strip().splitlines()[-15:])
                raise SolverFailedError(
                    f"astrometry-engine exited with status {failed[0].process.returncode}: {tail}"
                )
            return SolverOutcome(
                solved=False,
                solver=self.name,
                log=log,
                command=runs[0].command if runs else [],
                seconds=elapsed,
            )
        files = {
            name: path
            for name, path in winner.outputs.items()
            if name in ("wcs", "corr", "rdls", "match") and path.exists()
        }
        files["axy"] = winner.workdir / "field.axy"
        header = _read_wcs_header(files["wcs"])
        index = _solved_index(winner)
        # Its WCS is fitted to the stars of the index file that solved.
        catalogue, epoch = index_catalogue(index)
        return SolverOutcome(
            solved=True,
            solver=self.name,
            wcs_header=header,
            index=index,
            catalogue=catalogue,
            epoch=epoch,
            files=files,
            log=log,
            command=winner.command,
            seconds=elapsed,
            sources=winner.sources if several else None,
            source_list=winner.label if several else "",
        )

    # -- process management --------------------------------------------------

    def _start(
        self,
        k: int,
        group: list[IndexFile],
        sources: SourceList,
        constraints: SolveConstraints,
        workdir: Path,
        timeout: float,
    ) -> _Run:
        # The engine runs inside its directory (cwd=pdir): every path it is
        # given, in its command and in the .axy, must not be relative to ours.
        pdir = Path(workdir).absolute() / f"engine-{k}"
        pdir.mkdir(parents=True, exist_ok=True)
        outputs = {
            name: pdir / f"field.{name}" for name in ("solved", "match", "rdls", "wcs", "corr")
        }
        outputs["cancel"] = pdir / "field.cancel"
        axy = write_axy(
            pdir / "field.axy",
            sources,
            constraints,
            outputs=outputs,
            cpu_limit=timeout + 5,
            depths=self.config.depths,
            odds_to_solve=self.config.odds_to_solve,
        )
        cfg = write_engine_config(pdir / "engine.cfg", group, cpu_limit=timeout + 5)
        command = [self.config.binary, "--config", str(cfg), str(axy)]
        log_path = pdir / "engine.log"
        try:
            with log_path.open("wb") as log:
                process = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=pdir,
                    start_new_session=True,
                )
        except FileNotFoundError:
            raise ConfigurationError(
                f"{self.config.binary} not found: install the Debian package astrometry.net"
            ) from None
        return _Run(process, pdir, log_path, outputs, command, group)

    def _watch(
        self,
        runs: list[_Run],
        *,
        started: float,
        timeout: float,
        cancel: threading.Event | None,
        more: Sequence[Callable[[], list[_Run] | None]] = (),
        follow: Callable[[_Run], list[_Run]] | None = None,
    ) -> _Run | None:
        """The first run to solve, or None.  ``more``: polled until each returns
        the runs it started (None: not yet); ``follow``: the runs to start when
        one ends unsolved."""
        pending = list(runs)
        polls = list(more)
        while pending or polls:
            if cancel is not None and cancel.is_set():
                raise SolveCancelledError("the solve was cancelled")
            if time.monotonic() - started > timeout:
                raise SolveTimeoutError(f"no solution within the time limit of {timeout:g} s")
            for poll in list(polls):
                added = poll()
                if added is not None:
                    pending += added
                    polls.remove(poll)
            for run in list(pending):
                if run.process.poll() is None:
                    continue
                pending.remove(run)
                if _answered(run):
                    return run
                if follow is not None:
                    pending += follow(run)
            time.sleep(POLL_SECONDS)
        return None


def _answered(run: _Run) -> bool:
    """Whether an ended engine process left an answer (its solved flag and WCS)."""
    return run.outputs["solved"].exists() and run.outputs["wcs"].exists()


def _center(constraints: SolveConstraints) -> tuple[float, float] | None:
    if constraints.center_ra is None or constraints.center_dec is None:
        return None
    return (constraints.center_ra, constraints.center_dec)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill the engine and anything it started; reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
        pass


def _collect_logs(runs: list[_Run]) -> str:
    parts = []
    for k, run in enumerate(runs):
        try:
            text = run.log_path.read_text(errors="replace")
        except OSError:
            text = ""
        names = ", ".join(ix.name for ix in run.indexes)
        of = f"{run.label} list, " if run.label else ""
        parts.append(f"== astrometry-engine process {k} ({of}indexes: {names})\n{text}")
    return "\n".join(parts)


def _solved_index(run: _Run) -> str | None:
    try:
        text = run.log_path.read_text(errors="replace")
    except OSError:
        return None
    found = _SOLVED_WITH.findall(text)
    if found:
        return Path(found[-1]).name
    return None


def _read_wcs_header(path: Path) -> fits.Header | DeferredHeader:
    """astrometry.net's ``wcs.fits`` header: read without astropy, built as
    astropy's header when first asked for (its cards let the final fit start
    without astropy: :func:`~skysolve.engine.solving.answer.start_wcs`); by
    astropy when a card is not plain."""
    from skysolve.engine.inputs.fitscards import HeaderCards

    with open(path, "rb") as fh:
        cards = HeaderCards.read(fh)
    if cards is None:
        from astropy.io import fits

        return fits.getheader(path, 0)
    # The text, not the file: the solve's work directory is gone by the time
    # a result's header may be read.
    return DeferredHeader(cards.to_astropy, cards=cards)
