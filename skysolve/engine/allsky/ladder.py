"""The first match of a blind all-sky search: guessed lenses, tangent planes, the fast path.

A guess of the lens (the axis at the image circle's centre, an equidistant
projection of some scale) maps the central stars onto a tangent plane, a
field of 55-70 degrees the pattern-hash fast path can match.  A guessed scale
is rarely right, so the plane's true field is searched in a few narrow
windows around the guessed one: tetra3rs's cost grows with the width of the
field range it sweeps (measured on ``iallsky_thin_clouds_plane``: its plane
matched within 1000 patterns in a window of +-15 % and not within 200 000 in
one of +-60 %).  Each window is bounded by a count of image patterns checked,
not by seconds, so what the ladder finds is the same on a quiet and a busy
machine; only the whole search's time limit depends on the clock.
"""

from __future__ import annotations

import math
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from skysolve.engine.allsky.model import LensModel, radec_to_xyz
from skysolve.engine.results import SourceList

Note = Callable[[str], None]

#: The guesses tried, in order: (scale relative to "the horizon at the image
#: circle's edge", radius in degrees of the central field mapped onto the
#: tangent plane).  27 degrees makes a field of 55, inside the fast path's
#: range with room to spare; 35 (71) holds more bright stars when the frame's
#: centre is poor in them.  1.11, 0.79 and 1.57 are where an equisolid, a
#: stereographic and an orthographic lens put the horizon at the circle's edge.
GUESSES: tuple[tuple[float, float], ...] = (
    (1.0, 27.0), (1.11, 27.0), (1.0, 35.0), (0.79, 27.0), (1.3, 27.0),
    (1.57, 27.0), (0.87, 27.0), (1.15, 35.0), (0.65, 27.0),
)  # fmt: skip
#: The field tetra3rs is told, relative to the plane's: each is one pass over
#: the brightest stars' patterns (about 10 000, 10-30 ms), matched at about
#: 0.75-0.85 of the plane's width (a guessed lens of the wrong scale bends the
#: plane, and a pinhole a little narrower unbends it best), in runs of 3-6
#: degrees: so every 2 degrees, nearest that first.
FOV_CENTRE = 0.82
#: Step between the fields told, degrees.
FOV_STEP = 2.0
#: The fields told span this range, degrees (the pattern database's, 20-70, and a
#: little more).
FOV_RANGE = (40.0, 77.0)
#: Image patterns tetra3rs may check in one pass: more than one pass over the
#: 24 brightest stars' C(24, 4) = 10 626, so a pass ends by its own exhaustion,
#: never by this, and never by the clock.
PATTERN_BUDGET = 20_000
#: The match's scale must be within this factor of the guess's.
SCALE_TOLERANCE = 1.6
#: The fast path's fields are at most this wide (degrees): wider windows are clipped.
WIDEST_PLANE = 77.0


def kabsch(camera: np.ndarray, sky: np.ndarray) -> tuple[np.ndarray, float]:
    """The rotation R (sky to camera) minimising |camera - R sky|, and the RMS left."""
    h = sky.T @ camera
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    left = camera - sky @ rotation.T
    return rotation, float(np.sqrt(np.mean(np.sum(left**2, axis=1))))


def allsky_db_path() -> Path:
    """The pattern database the ladder searches: the 20-70 degree band when built.

    Its stars (to magnitude 6.6) are the ones an all-sky camera's centre
    shows, and it is a tenth of the whole database's load; the whole database
    when there is no band.  Fixed per installation, so a service worker that
    has the whole database loaded searches the same patterns as a new process.
    """
    from skysolve.engine.solving.fastpath.database import band_paths, default_db_path, read_info

    main = default_db_path()
    for band in band_paths(main):
        info = read_info(band)
        if info is not None and info.min_fov <= 30.0 and info.max_fov >= 70.0:
            return band
    return main


def fov_estimates(widest: float) -> tuple[float, ...]:
    """The fields tetra3rs is told for a plane ``widest`` degrees wide, in order."""
    lo, hi = FOV_RANGE
    start = min(max(FOV_CENTRE * widest, lo), hi)
    steps = range(-int((start - lo) / FOV_STEP), int((hi - start) / FOV_STEP) + 1)
    fovs = sorted((start + k * FOV_STEP for k in steps), key=lambda f: (abs(f - start), f))
    return tuple(fovs)


def central_plane(
    guess: LensModel, sources: SourceList, central_deg: float
) -> tuple[SourceList, np.ndarray, np.ndarray, np.ndarray] | None:
    """The sources within ``central_deg`` of the guessed axis on a gnomonic plane.

    Returns the plane's sources and, per source, its angle off the guessed
    axis, its azimuth and its row in ``sources``; None when fewer than 12.
    """
    x, y = np.asarray(sources.x), np.asarray(sources.y)
    u, v = x - guess.center_x, y - guess.center_y  # a guess has no shear and parity +1
    theta = guess.theta(np.hypot(u, v) / guess.focal)
    central = np.flatnonzero(np.isfinite(theta) & (theta < math.radians(central_deg)))[:150]
    if len(central) < 12:
        return None
    t, phi = theta[central], np.arctan2(v[central], u[central])
    # At the scale of the frame's centre, so the fast path's pixel tolerances
    # mean what they mean on an ordinary frame.
    half = guess.focal * math.tan(math.radians(central_deg)) * 1.02
    side = int(2 * half) + 2
    tx = half + 1.0 + guess.focal * np.tan(t) * np.cos(phi)
    ty = half + 1.0 + guess.focal * np.tan(t) * np.sin(phi)
    plane = SourceList(tx, ty, np.asarray(sources.flux)[central], side, side)
    return plane, t, phi, central


def first_match(
    guess: LensModel,
    sources: SourceList,
    central_deg: float,
    *,
    timeout: float,
    cancel: threading.Event | None,
    note: Note,
    budget: int = PATTERN_BUDGET,
) -> LensModel | None:
    """The central stars through ``guess`` onto a tangent plane, solved by the fast path.

    ``timeout`` is a safety net (the seconds left of the whole search): the
    passes' pattern budgets bound the work.  Returns ``guess`` pointed at
    the sky (scale, rotation and parity from the match), or None.
    """
    from skysolve.engine.solving.base import SolveConstraints
    from skysolve.engine.solving.fastpath.matching import PatternHashSolver

    found_plane = central_plane(guess, sources, central_deg)
    if found_plane is None:
        note(f"too few sources within {central_deg:g} deg of the guessed axis")
        return None
    plane, t, phi, central = found_plane
    widest = 2.0 * math.degrees(math.atan(plane.width / 2.0 / guess.focal))
    solver = PatternHashSolver(
        allsky_db_path(), pattern_budget=budget, fov_estimates=fov_estimates(widest)
    )
    with tempfile.TemporaryDirectory(prefix="skysolve-allsky-") as work:
        outcome = solver.solve(
            plane, SolveConstraints(tweak_order=3), Path(work), timeout=timeout, cancel=cancel
        )
    if not outcome.solved or outcome.wcs_model is None:
        note(f"tangent plane of {len(central)} central stars: not matched")
        return None
    wcs = outcome.wcs_model
    ra, dec = wcs.pix2world(np.asarray(plane.x), np.asarray(plane.y))
    sky = radec_to_xyz(ra, dec)
    # The match also measured the scale: the tangent plane's true degrees per
    # pixel against the guessed ones; the central stars' angles off axis follow.
    found = math.sqrt(abs(float(np.linalg.det(np.asarray(wcs.cd, dtype=float)))))
    ratio = math.degrees(1.0 / guess.focal) / found
    if not 1.0 / SCALE_TOLERANCE <= ratio <= SCALE_TOLERANCE:
        note(f"tangent plane matched at {ratio:.2f} times the guessed scale: not this guess")
        return None
    guess = replace(guess, focal=guess.focal * ratio)
    t = np.arctan(np.tan(t) / ratio)
    camera = np.stack([np.sin(t) * np.cos(phi), np.sin(t) * np.sin(phi), np.cos(t)], axis=-1)
    best: tuple[float, np.ndarray, int] | None = None
    for parity in (1, -1):
        cam = camera * np.array([parity, 1.0, 1.0])
        rotation, rms = kabsch(cam, sky)
        if best is None or rms < best[0]:
            best = (rms, rotation, parity)
    assert best is not None
    rms, rotation, parity = best
    note(
        f"tangent plane of {len(central)} central stars matched by the fast path "
        f"(parity {parity:+d}, {math.degrees(rms) * 60:.1f} arcmin RMS)"
    )
    return guess.with_rotation(rotation, parity=parity)
