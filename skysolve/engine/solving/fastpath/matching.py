"""The pattern-hash solver: tetra3rs proposes, the verification and the refit decide."""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

from skysolve.engine.results import DeferredHeader, SourceList
from skysolve.engine.solving.base import SolveConstraints, Solver, SolverOutcome
from skysolve.engine.solving.fastpath.confirm import confirm
from skysolve.engine.solving.fastpath.crop import (
    CROP_FOV,
    CROP_PATTERNS,
    Crop,
    crop_centroids,
    crop_fraction,
    crop_guesses,
)
from skysolve.engine.solving.fastpath.database import (
    DatabaseInfo,
    FastpathDatabase,
    band_paths,
    is_loaded,
    load_database,
    read_info,
)
from skysolve.engine.solving.fastpath.guesses import WIDE_PATTERNS, Guess, fov_guesses
from skysolve.engine.solving.fastpath.lens import (
    BARREL_FROM,
    BARREL_K,
    LENS_FOV_ERROR,
    MIN_K,
    undistort,
)
from skysolve.engine.solving.fastpath.refit import REFIT_SOURCES, Refined
from skysolve.engine.solving.fastpath.tables import write_files
from skysolve.engine.solving.fastpath.verification import VERIFY_RADIUS
from skysolve.errors import ConfigurationError, SolveCancelledError

#: A band database is used for a hinted range at least this factor inside its FOV range
#: (fields at the very edge of a database's range are found less reliably).
BAND_MARGIN = 1.05
#: Why :meth:`PatternHashSolver._search` stopped when the time was up.
OUT_OF_TIME = "out of time"
#: Sources handed to tetra3rs (our own verification and refit use more).
TETRA_CENTROIDS = 100
#: A blind field is left to the next solver when its file says it is narrower than
#: this share of the database's smallest FOV: the ladder's first guess (1.2 times
#: that FOV) finds fields down to about 0.7 times its width, 0.84 of the smallest.
BLIND_REACH = 0.7
#: The databases to search in turn, each with its guesses and the radial distortion k
#: undone on the centroids first (0: none).
Plan = list[tuple[Path, list[Guess], float]]


class PatternHashSolver(Solver):
    """tetra3rs's pattern hash, verified and refitted against the catalogue."""

    name: ClassVar[str] = "pattern-hash"
    bright_sources: ClassVar[int | None] = REFIT_SOURCES
    quick: ClassVar[bool] = True

    def __init__(
        self,
        db_path: Path,
        *,
        pattern_budget: int | None = None,
        fov_estimates: tuple[float, ...] | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        #: At most this many image patterns checked per FOV guess (None: tetra3rs's
        #: default): a search bounded by work, whose outcome no load can change.
        self.pattern_budget = pattern_budget
        #: When given, the FOV guesses (widest side, degrees) tried in this order,
        #: each unbounded in error, instead of those the constraints make.
        self.fov_estimates = fov_estimates

    def prefetch(self, constraints: SolveConstraints, width: int, height: int) -> bool:
        """Start loading the database a solve with ``constraints`` will search.

        The load (0.1-0.2 s for the whole default database, in tetra3rs, which
        lets other threads run) goes on in a background thread while the
        caller reads hints and finds the brightest sources; :meth:`solve`
        then finds it loaded, or waits for the rest.  Returns whether a load
        was started (nothing to do: no database, a scale it does not cover, or
        already loaded).
        """
        try:
            info = read_info(self.db_path)
            if info is None:
                return False
            guesses = fov_guesses(info, constraints, max(width, height))
            if not guesses:
                return False
            path = self._search_plan(guesses)[0][0]
        except (OSError, ConfigurationError):
            return False
        if is_loaded(path):
            return False

        def load() -> None:
            try:
                load_database(path)
            except ConfigurationError:
                pass  # solve() reports it and leaves the field to the next solver

        threading.Thread(target=load, name="fastpath-load", daemon=True).start()
        return True

    def narrowest_blind_fov(self) -> float | None:
        """The database's narrowest field; None when its description cannot be read."""
        try:
            info = read_info(self.db_path)
        except (OSError, ConfigurationError):
            return None
        return None if info is None else info.min_fov

    def too_narrow(self, widest_fov_deg: float) -> bool:
        """Whether a field at most ``widest_fov_deg`` wide (its widest side) is too
        narrow for this database: its blind ladder could not find it, and trying
        costs the load of the whole database and the ladder (0.3-0.7 s measured
        on 1.3-degree Seestar frames) before the next solver starts.

        False when the database's description cannot be read (then the fast
        path is tried, as always).
        """
        try:
            info = read_info(self.db_path)
        except (OSError, ConfigurationError):
            return False
        return info is not None and widest_fov_deg < BLIND_REACH * info.min_fov

    def solve(
        self,
        sources: SourceList,
        constraints: SolveConstraints,
        workdir: Path,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
    ) -> SolverOutcome:
        started = time.monotonic()
        log: list[str] = []

        def note(message: str) -> None:
            log.append(f"pattern-hash [{(time.monotonic() - started) * 1000:8.1f} ms] {message}")

        def give_up(reason: str) -> SolverOutcome:
            note(f"not solved: {reason}; leaving the field to the next solver")
            return SolverOutcome(
                solved=False,
                solver=self.name,
                index=self.db_path.name,
                log="\n".join(log) + "\n",
                seconds=time.monotonic() - started,
            )

        w, h = sources.width, sources.height
        try:
            # The JSON description tells the FOV range without loading anything,
            # so a field the database cannot cover costs nothing.
            info = read_info(self.db_path) or load_database(self.db_path).info
            guesses: list[Guess] = (
                [(fov, None, None) for fov in self.fov_estimates]
                if self.fov_estimates is not None
                else fov_guesses(info, constraints, max(w, h))
            )
            # Fields the caller told (the all-sky ladder's planes, already
            # undistorted by its lens guess) are searched as they are.
            told = self.fov_estimates is not None
            first, last = ([], []) if told else crop_guesses(info, constraints, max(w, h))
            if not guesses and not first + last:
                return give_up(
                    f"the scale range is outside the database's FOV range "
                    f"{info.min_fov:g}-{info.max_fov:g} deg"
                )
            plan: Plan = [(path, part, 0.0) for path, part in self._search_plan(guesses)]
            if not told and guesses:
                plan = self._lens_plan(plan, info, constraints, max(w, h))
        except ConfigurationError as exc:
            return give_up(str(exc))
        cx, cy = (w + 1) / 2.0, (h + 1) / 2.0
        # tetra3rs builds patterns from the brightest two dozen and checks a
        # match against all it is given: the first hundred of the (uniformized)
        # list are plenty, and the search takes half as long as with 300.
        head = sources.head(TETRA_CENTROIDS)
        centroids = np.column_stack(
            [
                np.asarray(head.x, float) - cx,
                np.asarray(head.y, float) - cy,
                np.asarray(head.flux, float),
            ]
        )
        pos_err = max(1.0, float(constraints.positional_error))
        radius = VERIFY_RADIUS * pos_err
        refined: Refined | None = None
        reason = "no pattern matched"

        def search_crops(
            crops: list[Crop], reason: str
        ) -> tuple[FastpathDatabase, Refined | None, str]:
            """The central crops of ``crops``' frame guesses, searched in the whole database."""
            whole = load_database(self.db_path)
            return (whole,) + self._search_crops(
                whole, crops, centroids, sources, constraints, radius, note, reason,
                started=started, timeout=timeout, cancel=cancel,
            )  # fmt: skip

        try:
            # A camera remembered wider than the database: its crop before the ladder.
            if first:
                loaded, refined, reason = search_crops(first, reason)
            for number, (path, part, k) in enumerate(plan):
                if refined is not None or reason == OUT_OF_TIME:
                    break
                loaded = load_database(path)
                later = " (over the part of the hinted range it covers; the whole database next)"
                partial = number < len(plan) - 1 and k == 0.0 and plan[number + 1][2] == 0.0
                note(f"database {loaded.info.describe()}{later if partial else ''}")
                if k != 0.0:
                    note(f"centroids undistorted with the radial distortion k = {k:+.4f}")
                undone = _undistorted(centroids, k, w, h)
                refined, reason = self._search(
                    loaded, part, undone, sources, constraints, radius, note, reason,
                    started=started, timeout=timeout, cancel=cancel, k=k,
                )  # fmt: skip
            # Frames wider than the database that the scale allows (every one
            # for a blind solve): their crops after the ladder.
            if refined is None and reason != OUT_OF_TIME and last:
                loaded, refined, reason = search_crops(last, reason)
        except ConfigurationError as exc:
            # Only the loads raise it: a database removed under a running
            # service costs speed, not the solve.
            return give_up(str(exc))
        if refined is None:
            return give_up(reason)
        workdir.mkdir(parents=True, exist_ok=True)
        files = write_files(workdir, sources, refined, loaded.stars)
        note("wrote corr and rdls")
        return SolverOutcome(
            solved=True,
            solver=self.name,
            # Built when read: a solve that writes no files never imports astropy.
            wcs_header=DeferredHeader(functools.partial(refined.model.to_header, w, h)),
            wcs_model=refined.model,
            index=loaded.info.path.name,
            catalogue=loaded.stars.catalogue or None,
            epoch=loaded.stars.epoch,
            files=files,
            log="\n".join(log) + "\n",
            seconds=time.monotonic() - started,
        )

    def _search(
        self,
        loaded: FastpathDatabase,
        guesses: list[Guess],
        centroids: np.ndarray,
        sources: SourceList,
        constraints: SolveConstraints,
        radius: float,
        note: Callable[[str], None],
        reason: str,
        *,
        started: float,
        timeout: float,
        cancel: threading.Event | None,
        k: float = 0.0,
    ) -> tuple[Refined | None, str]:
        """tetra3rs on one database, FOV guess after guess: the verified refit, or why not."""
        w, h = sources.width, sources.height
        for widest, error, own_budget in guesses:
            budgets = [b for b in (own_budget, self.pattern_budget) if b is not None]
            budget = min(budgets) if budgets else None
            remaining = _time_left(started, timeout, cancel)
            if remaining <= 0:
                return None, OUT_OF_TIME
            # tetra3rs takes the horizontal FOV.
            horizontal = widest * w / max(w, h)
            attempt = loaded.database.solve_from_centroids(
                centroids,
                fov_estimate_deg=horizontal,
                fov_max_error_deg=None if error is None else error * w / max(w, h),
                image_width=w,
                image_height=h,
                solve_timeout_ms=max(1, int(min(remaining, 5.0) * 1000)),
                **({} if budget is None else {"max_patterns_checked": budget}),
            )
            err_text = "any" if error is None else f"{error:.2f}"
            if not attempt:
                note(f"FOV guess {widest:.2f} deg (+/- {err_text}): {attempt.status}")
                continue
            note(
                f"FOV guess {widest:.2f} deg (+/- {err_text}): tetra3rs matched RA "
                f"{attempt.ra_deg:.4f} Dec {attempt.dec_deg:.4f} FOV {attempt.fov_deg:.3f} deg, "
                f"{attempt.num_matches} stars, probability {attempt.probability:.2g}"
            )
            candidate = confirm(attempt, sources, loaded, constraints, radius, note, k=k)
            if isinstance(candidate, str):
                reason = candidate
                note(f"rejected: {candidate}")
                continue
            return candidate, reason
        return None, reason

    def _search_crops(
        self,
        loaded: FastpathDatabase,
        crops: list[Crop],
        centroids: np.ndarray,
        sources: SourceList,
        constraints: SolveConstraints,
        radius: float,
        note: Callable[[str], None],
        reason: str,
        *,
        started: float,
        timeout: float,
        cancel: threading.Event | None,
    ) -> tuple[Refined | None, str]:
        """tetra3rs on the central crop of each guessed frame width
        (:mod:`~skysolve.engine.solving.fastpath.crop`): the verified refit, or why not."""
        w, h = sources.width, sources.height
        # The caller's budget bounds the crops as it bounds the ladder (0 too).
        caller = self.pattern_budget
        budget = CROP_PATTERNS if caller is None else min(CROP_PATTERNS, caller)
        for frame_fov, k in crops:
            remaining = _time_left(started, timeout, cancel)
            if remaining <= 0:
                return None, OUT_OF_TIME
            undone = _undistorted(centroids, k, w, h)
            part, cw, ch = crop_centroids(undone, frame_fov, w, h, limit=TETRA_CENTROIDS)
            lens = f", radial distortion k = {k:+.4f} undone" if k != 0.0 else ""
            label = (
                f"frame guess {frame_fov:.1f} deg{lens}: the central {cw}x{ch} px "
                f"({len(part)} sources) as a {CROP_FOV:g} deg field"
            )
            attempt = loaded.database.solve_from_centroids(
                part,
                fov_estimate_deg=CROP_FOV * cw / max(cw, ch),
                image_width=cw,
                image_height=ch,
                solve_timeout_ms=max(1, int(min(remaining, 5.0) * 1000)),
                max_patterns_checked=budget,
            )
            if not attempt:
                note(f"{label}: {attempt.status}")
                continue
            note(
                f"{label}: tetra3rs matched RA {attempt.ra_deg:.4f} Dec {attempt.dec_deg:.4f}, "
                f"{attempt.num_matches} stars, probability {attempt.probability:.2g}"
            )
            share = crop_fraction(frame_fov)
            candidate = confirm(
                attempt, sources, loaded, constraints, radius, note, k=k, share=share
            )
            if isinstance(candidate, str):
                reason = candidate
                note(f"rejected: {candidate}")
                continue
            return candidate, reason
        return None, reason

    def _lens_plan(
        self, plan: Plan, info: DatabaseInfo, constraints: SolveConstraints, widest_px: int
    ) -> Plan:
        """``plan`` with the camera's remembered lens first (when the scale
        constraints allow its field) and, for a blind search, the wide guesses
        again with barrel distortion undone last."""
        out = list(plan)
        if constraints.lens is not None:
            k, fov = constraints.lens
            lo = (constraints.scale_low or 0.0) * widest_px / 3600.0 / 1.2
            hi = (constraints.scale_high or math.inf) * widest_px / 3600.0 * 1.2
            if info.min_fov / 1.1 <= fov <= info.max_fov * 1.1 and lo <= fov <= hi:
                k = k if abs(k) >= MIN_K else 0.0
                out.insert(0, (self.db_path, [(fov, LENS_FOV_ERROR * fov, WIDE_PATTERNS)], k))
        if constraints.scale_low is None and constraints.scale_high is None:
            wide: list[Guess] = [
                (g, None, WIDE_PATTERNS) for g, _, _ in plan[-1][1] if g >= BARREL_FROM
            ]
            if wide:
                out.append((plan[-1][0], wide, BARREL_K))
        return out

    def _search_plan(self, guesses: list[Guess]) -> list[tuple[Path, list[Guess]]]:
        """The databases to search, in turn, each with its FOV guesses.

        A process that has the whole database loaded already (a service
        worker) keeps using it.  A new process (``skysolve solve``) with a
        hinted range loads the smallest band that covers it, a tenth of the
        load time.  When no band covers the whole range but one covers its
        middle (a 10-degree field hinted +-10 %: the 9-30 degree band, 32 MB,
        against the whole 178 MB database), that band is searched first over
        the part it covers, and the whole database after it over the whole
        range, so what the fast path finds is the same, only sooner.
        """
        main = self.db_path
        whole = [(main, guesses)]
        if len(guesses) != 1 or guesses[0][1] is None or is_loaded(main):
            return whole
        fov, error, _ = guesses[0]
        assert error is not None
        lo, hi = fov - error, fov + error
        bands = [info for band in band_paths(main) if (info := read_info(band)) is not None]
        covering = [
            info
            for info in bands
            if info.min_fov * BAND_MARGIN <= lo and hi * BAND_MARGIN <= info.max_fov
        ]
        if covering:
            return [(min(covering, key=lambda info: info.size_bytes).path, guesses)]
        middle = [
            info
            for info in bands
            if info.min_fov * BAND_MARGIN <= fov and fov * BAND_MARGIN <= info.max_fov
        ]
        if not middle:
            return whole
        band = min(middle, key=lambda info: info.size_bytes)
        part_lo, part_hi = max(lo, band.min_fov * BAND_MARGIN), min(hi, band.max_fov / BAND_MARGIN)
        part: list[Guess] = [((part_lo + part_hi) / 2.0, (part_hi - part_lo) / 2.0, None)]
        return [(band.path, part), *whole]


def _time_left(started: float, timeout: float, cancel: threading.Event | None) -> float:
    """Seconds left of a solve started at ``started`` (``time.monotonic``) with
    ``timeout``; raises :class:`SolveCancelledError` when ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise SolveCancelledError("the solve was cancelled")
    return timeout - (time.monotonic() - started)


def _undistorted(centroids: np.ndarray, k: float, width: int, height: int) -> np.ndarray:
    """``centroids`` (rows of x, y offsets from the image centre, flux) with the
    radial distortion ``k`` undone on their x, y: a copy, or themselves when k is 0."""
    if k == 0.0:
        return centroids
    undone = centroids.copy()
    undone[:, :2] = undistort(centroids[:, 0], centroids[:, 1], k, width, height)
    return undone
