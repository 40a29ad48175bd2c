"""Deciding on tetra3rs's candidate: refitted against the catalogue, then verified.

tetra3rs's answer is only a candidate (see the package's description): its TAN
WCS is refitted through our catalogue's stars (holding a lens's distortion when
the centroids were undistorted, grown outward first when only a crop was
matched) and verified independently; the refit, or why not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from skysolve.engine.results import SourceList
from skysolve.engine.solving.base import SolveConstraints
from skysolve.engine.solving.fastpath.crop import GROW_ORDER, edge_problem, grow
from skysolve.engine.solving.fastpath.database import FastpathDatabase
from skysolve.engine.solving.fastpath.guesses import WIDE_FROM
from skysolve.engine.solving.fastpath.lens import RETRY_RMS, START_ORDER, start_model
from skysolve.engine.solving.fastpath.refit import MAX_RMS, Refined, refine
from skysolve.engine.solving.fastpath.tansip import TanSip
from skysolve.engine.solving.fastpath.verification import (
    VERIFY_RADIUS,
    Neighbourhood,
    constraint_problem,
    describe,
    verify_calibration,
)


def tetra_model(result: Any, width: int, height: int) -> TanSip:
    """The TAN WCS tetra3rs found, in skysolve's pixel convention."""
    off = np.asarray(result.crpix, dtype=float)
    return TanSip(
        crval=(float(result.crval_ra_deg), float(result.crval_dec_deg)),
        crpix=((width + 1) / 2.0 + float(off[0]), (height + 1) / 2.0 + float(off[1])),
        cd=np.degrees(np.asarray(result.cd_matrix, dtype=float)),
    )


def confirm(
    attempt: Any,
    sources: SourceList,
    loaded: FastpathDatabase,
    constraints: SolveConstraints,
    radius: float,
    note: Callable[[str], None],
    *,
    k: float = 0.0,
    share: float = 1.0,
) -> Refined | str:
    """Refit tetra3rs's answer against our catalogue and verify it, or say why not.

    The refit comes first: when the FOV guess was far off, tetra3rs's own
    WCS can be several pixels out at the edges although the match is right.
    """
    w, h = sources.width, sources.height
    near = Neighbourhood()
    start, order, loose = tetra_model(attempt, w, h), constraints.tweak_order, 1
    if k != 0.0:
        # tetra3rs's WCS is of the undistorted frame: the real pixels' model
        # holds the distortion (a cubic), kept through the loose matches.
        start = start_model(start, k, w, h)
        order = loose = max(order, START_ORDER)
    if share < 1.0:
        # A crop's match holds the centre only: grown out to the edges
        # first, and then fitted as a lens is (see crop.py).
        start = grow(sources, start, loaded.stars, share=share, radius=radius, near=near)
        order = loose = max(order, GROW_ORDER)
    refined = refine(
        sources, start, loaded.stars, order=order, radius=radius, near=near, loose_order=loose
    )
    if share < 1.0:
        # A grown fit has the freedom of a lens's: it must fit as one does
        # (RETRY_RMS) and explain the edges as well as the centre.
        verdict = judge(refined, sources, loaded, constraints, radius, note, max_rms=RETRY_RMS)
        if isinstance(verdict, str):
            return verdict
        return edge_problem(sources, refined.source_rows, share) or verdict
    verdict = judge(refined, sources, loaded, constraints, radius, note)
    wide = math.degrees(max(w, h) * math.sqrt(abs(np.linalg.det(np.radians(start.cd)))))
    if isinstance(verdict, str) and order < START_ORDER and wide >= WIDE_FROM:
        # A wide lens's barrel distortion is a cubic: the right match of a
        # pinhole guess leaves a quadratic refit 1.5 px out at the edges.
        # The cubic's freedom can also bend a poor start onto a third of
        # the stars (a 66-degree frame with 12 % barrel: RMS 1.4 px, the
        # centre 10 px out), so it must fit as a lens does: RETRY_RMS.
        refined = refine(
            sources, refined.model, loaded.stars, order=START_ORDER, radius=radius,
            near=near, loose_order=START_ORDER,
        )  # fmt: skip
        verdict = judge(refined, sources, loaded, constraints, radius, note, max_rms=RETRY_RMS)
    return verdict


def judge(
    refined: Refined,
    sources: SourceList,
    loaded: FastpathDatabase,
    constraints: SolveConstraints,
    radius: float,
    note: Callable[[str], None],
    *,
    max_rms: float = MAX_RMS,
) -> Refined | str:
    """The refit verified, within ``max_rms`` (times the positional error)
    and the constraints, or why not."""
    w, h = sources.width, sources.height
    pos_err = radius / VERIFY_RADIUS
    kind = f"TAN-SIP order {refined.model.order}" if refined.model.order >= 2 else "TAN"
    note(f"refit {kind} through {len(refined.source_rows)} stars: RMS {refined.rms:.3f} px")
    check = verify_calibration(
        sources, refined.model, loaded.stars, radius=radius, near=refined.near
    )
    note(describe(check))
    if not check.accepted:
        return "the match failed verification"
    if not refined.rms <= max_rms * pos_err:
        return f"the refit leaves an RMS of {refined.rms:.2f} px"
    return constraint_problem(refined.model, constraints, w, h) or refined
