"""The solver interface: a source list and constraints in, a WCS (or nothing) out.

Solvers are interchangeable behind :class:`Solver`: astrometry.net's engine
(:mod:`skysolve.engine.solving.astrometry`) and, in front of it, a pattern-hash fast
path.  The pipeline resolves user parameters and automatic hints into one
:class:`SolveConstraints` before calling any of them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
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
    #: A camera's remembered wide-angle lens for the fast path: its radial
    #: distortion ``k`` and the widest side's field (deg) undistorted
    #: (:mod:`skysolve.engine.solving.fastpath.lens`); None: none remembered.
    lens: tuple[float, float] | None = None
    #: Degrees: a quick solver's blind search of fields from this wide up missed,
    #: so the field is likely narrower (astrometry.net then gives the indexes of
    #: such fields a process of their own); None: nothing known.
    narrower_than: float | None = None

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
    #: The catalogue the solver's WCS was fitted to ("gaia", "tycho2", or a
    #: fast-path database's "tycho2:INDEX-FILE"), and its stars' epoch (Julian
    #: year); None where the solver does not know (an index file not of
    #: astrometry.net's Tycho-2 series, a star file made before the stamp).
    catalogue: str | None = None
    epoch: float | None = None


class Solver(ABC):
    """Finds a WCS for a source list."""

    name: ClassVar[str]
    #: How many of the brightest sources the solver looks at; ``None``: the whole
    #: list.  A solver that needs only the brightest few hundred lets the
    #: pipeline find just those (milliseconds) and leave the full extraction to
    #: the solvers after it.
    bright_sources: ClassVar[int | None] = None
    #: Answers within about a second or gives up (the fast path): the pipeline
    #: tries it before the all-sky search of a frame that looks like a fisheye
    #: (a vignetted wide field looks like one too).
    quick: ClassVar[bool] = False
    #: Searches several source lists of one image at once (:meth:`solve_lists`
    #: with ``later``): the pipeline offers it solve-field's own list beside
    #: skysolve's.  Others are given one list, in :meth:`solve`.
    several_lists: ClassVar[bool] = False

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
        """Search several labelled source lists of one image; the first solution wins.

        ``later`` is polled while the search runs: None while a list is still
        being made, then the lists to add.  ``fallback``: the lists searched
        where a search of ``lists`` ended without an answer.  The outcome's
        ``sources`` is the list that solved and ``source_list`` its label.
        This default searches only the first list (for solvers without
        :attr:`several_lists`).
        """
        if not lists:
            raise ValueError("solve_lists needs at least one source list")
        return self.solve(lists[0][1], constraints, workdir, timeout=timeout, cancel=cancel)

    def prefetch(self, constraints: SolveConstraints, width: int, height: int) -> bool:
        """Start loading, in the background, what a solve with ``constraints`` of
        a ``width`` x ``height`` image will need; whether a load was started.

        The pipeline then loads the annotation catalogues beside it.  Default:
        nothing to load.
        """
        return False

    def narrowest_blind_fov(self) -> float | None:
        """The narrowest field (degrees, widest side) this solver's blind search
        looks for, when it looks for a limited range: a blind miss then says
        the field is likely narrower (:attr:`SolveConstraints.narrower_than`).
        Default: None (any field).
        """
        return None

    def too_narrow(self, widest_fov_deg: float) -> bool:
        """Whether a field at most ``widest_fov_deg`` wide (its widest side) is
        too narrow for this solver to find blind: a blind attempt then leaves it
        out.  Default: no field is.
        """
        return False
