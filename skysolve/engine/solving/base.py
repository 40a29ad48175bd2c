"""The solver interface: a source list and constraints in, a WCS (or nothing) out.

Solvers are interchangeable behind :class:`Solver`: astrometry.net's engine
(:mod:`skysolve.engine.solving.astrometry`) and, in front of it, a pattern-hash fast
path.  The pipeline resolves user parameters and automatic hints into one
:class:`SolveConstraints` before calling any of them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from skysolve.engine.results import HeaderField, SourceList

if TYPE_CHECKING:
    from astropy.io import fits


@dataclass(frozen=True)
class SolveConstraints:
    """What the solver may assume: scale in arcsec/pixel, position in degrees.

    ``parity`` follows nova and astrometry.net's ``--parity``: 0 "pos", 1 "neg",
    2 both.
    """

    scale_low: float | None = None
    scale_high: float | None = None
    center_ra: float | None = None
    center_dec: float | None = None
    radius: float | None = None
    parity: int = 2
    tweak_order: int = 2
    crpix_center: bool = False
    positional_error: float = 1.0

    @property
    def has_position(self) -> bool:
        return self.center_ra is not None and self.center_dec is not None


@dataclass
class SolverOutcome:
    """What one solver run produced.  ``files`` holds whatever it wrote."""

    solved: bool
    solver: str
    #: The WCS header; a solver may give a DeferredHeader, built when first read.
    wcs_header: fits.Header | None = HeaderField()
    index: str | None = None
    files: dict[str, Path] = field(default_factory=dict)
    log: str = ""
    command: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: The source list that solved, when the solver was given several of the
    #: same image (None: the one it was given), and that list's name.
    sources: SourceList | None = None
    source_list: str = ""
    #: The WCS as a model with astropy's celestial-WCS methods (the fast path's
    #: TAN-SIP), when the solver has one: the pipeline computes the calibration
    #: and the objects in the field from it without building an astropy WCS.
    wcs_model: Any = None


class Solver(ABC):
    """Finds a WCS for a source list."""

    name: ClassVar[str]
    #: How many of the brightest sources the solver looks at; ``None``: the whole
    #: list.  A solver that needs only the brightest few hundred lets the
    #: pipeline find just those (milliseconds) and leave the full extraction to
    #: the solvers after it.
    bright_sources: ClassVar[int | None] = None

    @abstractmethod
    def solve(
        self,
        sources: SourceList,
        constraints: SolveConstraints,
        workdir: Path,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> SolverOutcome:
        """Solve or report failure; raise only for timeouts, cancels and crashes.

        Raises
        ------
        SolveTimeoutError
            The wall-clock ``timeout`` (seconds) passed.
        SolveCancelledError
            ``cancel`` was set.
        SolverFailedError
            The solver crashed (retryable).
        """
