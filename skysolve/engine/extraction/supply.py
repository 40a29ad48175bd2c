"""The source supply of one solve: which list each solver gets, found when needed.

A fast solver looks only at the brightest few hundred sources; those are
found in milliseconds (:func:`~skysolve.engine.extraction.extract_bright_sources`)
and the full extraction waits until a solver needs it.  While sep finds the
full list, image2xy (a separate program) makes the list ``solve-field`` would
make, in a thread beside it: astrometry.net searches both at once, so it is
never worse off than ``solve-field`` on the same image
(:meth:`Supply.companions`).  The engine looks at field stars in list order.
It starts on sep's :data:`BRIGHTEST_FIRST` brightest sources in brightness
order (the index files hold the brightest stars of each patch of sky, and a
short list verifies quickly), and each engine process that runs through that
list without an answer goes on with sep's whole list, uniformized
(:meth:`Supply.engine_lists`): spreading the first stars over the whole image
(astrometry.net's ``--uniformize``) finds the fields whose brightest
detections crowd one corner (a nebula, glare).  The fast path's short list and
image2xy's list are uniformized too.  The final fit takes the same list
whichever solver answered (:meth:`Supply.fit_list`): the fast path's when it
is long enough, else sep's whole list.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from skysolve.engine.extraction.bright import extract_bright_sources
from skysolve.engine.extraction.choosing import extract_sources
from skysolve.engine.extraction.ordering import SOLVER_UNIFORMIZE_CELLS, resort, uniformize
from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SourceList
from skysolve.engine.solving.ladder import BRIGHTEST_LIST, Clock, EngineLists, LaterLists
from skysolve.errors import SolveError

Progress = Callable[[str, str], None]

#: Fewer detected sources than this cannot form a quad worth searching for.
MIN_SOURCES = 5
#: Head of the lists compared by :func:`shared_head` (the engine's first depths).
HEAD_SOURCES = 30
#: Share of image2xy's head found in sep's at or above which sep's list goes alone.
SAME_HEAD = 0.8
#: How many of sep's brightest sources, in brightness order, astrometry.net
#: searches first (see docs/benchmarks.md, "Against the faster peer, blind").
BRIGHTEST_FIRST = 150


class Supply:
    """The source lists of one image (or of a given star list) for one solve.

    ``image``: the loaded image, or None for a star list, whose
    ``sources`` are then the only list.  ``full`` is the full extraction once
    made (uniformized), ``by_flux`` sep's full extraction in brightness order.
    """

    def __init__(
        self,
        image: Any,
        sources: SourceList | None,
        params: SolveParameters,
        *,
        clock: Clock,
        note: Progress,
    ) -> None:
        if image is None and sources is None:
            raise ValueError("a source supply needs an image or a source list")
        self.full: SourceList | None = None
        if image is None:
            assert sources is not None
            self.full = uniformize(sources, cells=SOLVER_UNIFORMIZE_CELLS)
        self.image = image
        self.params = params
        self.clock = clock
        self.note = note
        self.bright: SourceList | None = None
        self.by_flux: SourceList | None = None
        self._companion: SourceList | None = None
        self._companion_job: Future[tuple[SourceList, float]] | None = None

    def sources_for(self, count: int | None, *, companion: bool = True) -> SourceList:
        """The full source list, or just the ``count`` brightest when that is all a
        solver needs and nothing else is known yet (found in milliseconds).
        ``companion``: start image2xy's list beside a full extraction (for
        astrometry.net; the final fit needs only sep's)."""
        if self.full is not None:
            return self.full
        image, params = self.image, self.params
        if count is not None and params.effective_extractor == "sep":
            if self.bright is None:
                self._extract_bright(count)
                assert self.bright is not None
                self.note("extracting", f"{len(self.bright)} brightest sources for the fast path")
            if len(self.bright) >= MIN_SOURCES:
                return self.bright
        self.note("extracting", f"extracting sources with {params.effective_extractor}")
        if companion:
            self._start_companion()
        with self.clock.step("extract"):
            if params.effective_extractor == "image2xy":
                full = self._solve_field_list(image.data)
            else:
                found = extract_sources(
                    image.data,
                    method=params.effective_extractor,
                    max_sources=params.max_sources,
                    downsample=params.downsample_factor,
                    invert=params.invert,
                    timeout=max(1.0, self.clock.remaining),
                ).sorted_by_flux()
                self.by_flux = found
                full = uniformize(found, cells=SOLVER_UNIFORMIZE_CELLS)
        self.full = full
        self.note("extracting", f"{len(full)} sources")
        return full

    def fit_list(self, count: int, *, enough: int) -> SourceList:
        """The final fit's sources, the same whichever solver answered.

        The ``count`` brightest (the fast path's list, found in milliseconds
        when no solver asked for it) when at least ``enough`` were found, else
        the full list (a star list: the whole of it).  A fast-path answer never
        waits for the full extraction, and an astrometry.net answer of the same
        image is refitted to the same sources: before, it took sep's whole list
        and ended elsewhere (``apod2.jpg``: 0.35 px from the reference against
        the fast path's 0.15).
        """
        if self.image is None or self.params.effective_extractor != "sep":
            return self.sources_for(None, companion=False)
        # Found already by the fast path, or now (no fast path, a hinted field
        # too narrow for it): the list it would have had.
        bright = self.bright
        if bright is None:
            bright = self._extract_bright(count, step="extract_bright_fit")
        if len(bright) >= enough:
            return bright
        return self.sources_for(None, companion=False)

    def engine_lists(self) -> EngineLists:
        """The lists a solver of several lists (astrometry.net) starts on, and the
        ones each of its processes goes on with when it has searched those without
        an answer.

        From sep's extraction of an image: its :data:`BRIGHTEST_FIRST` brightest
        in brightness order, then the whole list uniformized.  Otherwise (a star
        list, image2xy's extraction) the full list alone.
        """
        full = self.sources_for(None, companion=False)
        if self.by_flux is None or len(self.by_flux) < MIN_SOURCES:
            return [("sep", full)], []
        return [(BRIGHTEST_LIST, self.by_flux.head(BRIGHTEST_FIRST))], [("sep", full)]

    def companions(self) -> LaterLists | None:
        """solve-field's own source list, for astrometry.net to search beside sep's.

        Only for images whose sources sep found (the default extractor): with
        both lists the engine is never worse off than ``solve-field`` on the
        same image.  Returns what the engine polls while it runs on sep's list:
        None until image2xy is done, then the list to add (none when image2xy
        failed, or when its first stars are sep's anyway).
        """
        if self.image is None or self.params.effective_extractor != "sep":
            return None
        self._start_companion()
        return self._poll_companion

    def _extract_bright(self, count: int, *, step: str = "extract_bright") -> SourceList:
        """The ``count`` brightest sources (``bright``), uniformized as the solvers
        see them; timed as ``step``."""
        with self.clock.step(step):
            self.bright = uniformize(
                extract_bright_sources(
                    self.image.data,
                    count=count,
                    downsample=self.params.downsample_factor,
                    invert=self.params.invert,
                ),
                cells=SOLVER_UNIFORMIZE_CELLS,
            )
        return self.bright

    def _poll_companion(self) -> list[tuple[str, SourceList]] | None:
        if self._companion is None:
            job = self._companion_job
            assert job is not None
            if not job.done():
                return None
            try:
                found, seconds = job.result()
                self.clock.timings["extract_image2xy"] = seconds
            except SolveError as exc:
                # Missing program, crash, its own time limit: sep's list goes on alone.
                self.note("extracting", f"image2xy's list left out: {exc}")
                none = np.zeros(0)
                found = SourceList(none, none, none, self.image.width, self.image.height)
            self._companion = found
            self.note("extracting", f"{len(found)} sources from image2xy (solve-field's)")
        if len(self._companion) < MIN_SOURCES:
            return []
        assert self.full is not None
        shared = shared_head(self.full, self._companion)
        if shared >= SAME_HEAD:
            # The same stars lead both lists (clean star fields): a second
            # search would only take the cores from the first.
            self.note(
                "solving", f"image2xy's list starts with sep's stars ({shared:.0%}): not added"
            )
            return []
        self.note("solving", "adding image2xy's list (solve-field's) beside sep's")
        return [("image2xy", self._companion)]

    def _start_companion(self) -> None:
        """Start image2xy (a separate program) while sep runs: the list is ready sooner."""
        if (
            self.image is None
            or self.params.effective_extractor != "sep"
            or self._companion_job is not None
        ):
            return
        data = self.image.data

        def run() -> tuple[SourceList, float]:
            started = time.monotonic()
            return self._solve_field_list(data), time.monotonic() - started

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image2xy")
        self._companion_job = pool.submit(run)
        pool.shutdown(wait=False)

    def _solve_field_list(self, data: Any) -> SourceList:
        """The list ``solve-field`` makes: image2xy, astrometry.net's resort, uniformize.

        image2xy keeps more than ``max_sources`` before the resort so that the
        raw-flux ranking sees the stars the flux ranking puts last.
        """
        params = self.params
        found = extract_sources(
            data,
            method="image2xy",
            max_sources=min(100_000, 2 * params.max_sources),
            downsample=params.downsample_factor,
            invert=params.invert,
            timeout=max(1.0, self.clock.remaining),
        )
        return uniformize(resort(found).head(params.max_sources), cells=SOLVER_UNIFORMIZE_CELLS)


def shared_head(ours: SourceList, theirs: SourceList, *, head: int = HEAD_SOURCES) -> float:
    """Share of the first ``head`` sources of ``theirs`` within 2 px of one of the
    first ``2 * head`` of ``ours``.

    The engine builds its quads from the head of a list; where two lists of one
    image start with the same stars, searching both costs twice and finds nothing
    more.  On pictures with nebulae or saturated stars they start differently.
    """
    a = np.column_stack([ours.x[: 2 * head], ours.y[: 2 * head]]).astype(float)
    b = np.column_stack([theirs.x[:head], theirs.y[:head]]).astype(float)
    if len(a) == 0 or len(b) == 0:
        return 0.0
    distance = np.hypot(b[:, None, 0] - a[None, :, 0], b[:, None, 1] - a[None, :, 1])
    return float(np.mean(distance.min(axis=1) <= 2.0))


__all__ = [
    "BRIGHTEST_FIRST",
    "HEAD_SOURCES",
    "MIN_SOURCES",
    "SAME_HEAD",
    "Supply",
    "shared_head",
]
