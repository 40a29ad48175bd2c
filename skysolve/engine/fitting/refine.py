"""The final fit: grow the matched stars from the centre out, reject outliers, fit, repeat.

A solver's verified WCS is right near the stars it used and may be pixels off
elsewhere (an order-2 tweak through the 15 stars of one index, a TAN model of a
wide-angle lens).  Matching the whole frame against it at once would pair the
edge stars with wrong neighbours, so the matched region grows from the centre
outwards in rings, each fit extrapolating a little further than the last; then
the whole frame is matched with a radius set by the fit's own scatter until
the matched set stops changing.  Where no ring around the centre holds a fit
(the start was verified on the stars of one corner and is off at the centre),
the rings grow again from where the start explains the most stars.  The answer
depends only on the final set, not on which solver, index or process found
the field.  Given the sources' fluxes, each star is weighted by its expected
centroid error (:mod:`~skysolve.engine.fitting.weights`): faint stars scatter
more.

Kept whole: the growth, its second start and the fainter stars' pass share the
catalogue's projection at each radius (one closure over the stars and sources);
apart, each would take a dozen arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from skysolve.engine.fitting.matching import match_one_to_one, pairs_within
from skysolve.engine.fitting.wcsfit import (
    MAX_ORDER,
    Pairs,
    WcsFit,
    choose_order_of,
    design_matrix,
    fit_wcs_of,
    highest_order,
    loo_errors,
    squared_residuals,
    usable_order,
)
from skysolve.engine.fitting.weights import candidate_radius, centroid_errors, centroid_weights
from skysolve.engine.solving.fastpath.database import Stars
from skysolve.engine.solving.fastpath.tansip import gnomonic
from skysolve.engine.solving.fastpath.verification import binomial_tail

#: Fewer matched stars than this cannot refit (and cannot judge) an answer.
MIN_STARS = 8
#: Sources matched at most (the brightest of the list).
MAX_SOURCES = 1000
#: Catalogue stars considered per source matched.
STARS_PER_SOURCE = 2.0
#: Shares of the frame matched while the region grows (of the distance from where
#: it starts to the farthest corner: the half-diagonal from the centre).
GROWTH = (0.35, 0.5, 0.65, 0.8, 1.0)
#: Match radius while growing, pixels (times the positional error).
GROW_RADIUS = 5.0
#: The final match radius is this many times the fit's scatter...
RADIUS_SIGMAS = 5.0
#: ... but at least this, pixels (times the positional error).
MIN_RADIUS = 1.5
#: Residuals beyond this many sigma (of a 2-D Gaussian's radial distance) are outliers
#: (a good star lands there once in 3000).
CLIP_SIGMAS = 4.0
#: Catalogue stars are taken, brightest first, until a source dropped at random
#: would land within the match radius of one with this probability.
CHANCE_PER_SOURCE = 0.02
#: A growth step that moves no star in the frame by more than this share of the
#: match radius ends the growth.
STABLE_SHARE = 0.2
#: Iterations of the whole-frame match at most.
MAX_ROUNDS = 10
#: A refit whose matches are likelier than this to be chance says the answer is wrong.
MAX_CHANCE = 1e-4
#: Once the fit has settled on the bright stars, the sources it left unmatched
#: are matched once more against this many catalogue stars per source: a
#: corner may hold only fainter ones...
DEEP_STARS_PER_SOURCE = 8.0
#: ... each to the one star within this many sigmas of the settled fit (at
#: most ``MIN_RADIUS``: fainter stars only where the fit is sharp)...
DEEP_SIGMAS = 3.0
#: ... when no other star or source lies within this many times that radius.
DEEP_AMBIGUITY = 2.0
#: The fit with them is taken only when it predicts the stars it shares with the
#: settled fit (each from all the others) better: by this share in RMS...
DEEP_GAIN = 0.01
#: ... and star by star by this many standard errors of the mean.
DEEP_SIGNIFICANCE = 0.5
#: Pairs are sought this much wider in the undistorted plane, then measured exactly.
SLACK = 1.5


#: Star positions (ICRS degrees, at the catalogue's epoch), magnitudes and unit
#: vectors: an index file's :class:`~skysolve.engine.indexes.catalog.StarCatalog`
#: (Tycho-2, J2000) or the fast path's reference stars (Gaia, J2016.0); the fast
#: path's verification reads the same.
Catalogue = Stars


class Projection(Protocol):
    """What the refit needs of the starting WCS (astropy's WCS or a TanSip)."""

    def all_pix2world(self, *args: Any, **kwargs: Any) -> Any: ...
    def all_world2pix(self, *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Refit:
    """The result of :func:`refit`.

    ``source_rows`` index the source list given, ``star_rows`` the catalogue;
    ``fit`` is the WCS through them.  ``order_scores``: cross-validated RMS by
    order (empty when the order was requested).  ``stars_in_field``: catalogue
    stars considered; ``chance``: the probability that as many sources would
    land as close to them by accident.
    """

    fit: WcsFit
    source_rows: np.ndarray
    star_rows: np.ndarray
    radius: float
    order_requested: bool
    order_scores: dict[int, float] = field(default_factory=dict)
    stars_in_field: int = 0
    sources_used: int = 0
    chance: float = 0.0
    rounds: int = 0
    #: Catalogue rows of the stars a count of matches is made against: the
    #: frame's that the refit matched against, and the fainter ones it took.
    field_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))

    @property
    def plausible(self) -> bool:
        return self.chance <= MAX_CHANCE


@dataclass(frozen=True)
class _Grown:
    """One growth's settled fit (see :func:`refit`)."""

    fit: WcsFit
    source_rows: np.ndarray
    star_rows: np.ndarray
    scores: dict[int, float]
    radius: float
    rounds: int
    #: The fit before the fainter stars (:func:`_deepen`) and whether a ring
    #: short of the whole frame held it.
    settled: WcsFit
    ringed: bool


def refit(
    x: np.ndarray,
    y: np.ndarray,
    *,
    width: int,
    height: int,
    start: Projection,
    stars: Catalogue,
    order: int | None = None,
    positional_error: float = 1.0,
    max_order: int = MAX_ORDER,
    flux: np.ndarray | None = None,
) -> Refit | None:
    """Refit a verified WCS to every star it explains.

    Parameters
    ----------
    x, y : ndarray
        1-based pixel positions of the detected sources, brightest first.
    width, height : int
        Image size.
    start : Projection
        The verified WCS.
    stars : Catalogue
        Reference stars, brightest first or not (they are sorted here).
    order : int, optional
        SIP order to fit (nova's ``tweak_order``; 0 and 1 both mean TAN).
        ``None``: the order the stars support, by cross-validation.
    positional_error : float
        Expected centroid error, pixels: widens the match radii.
    max_order : int
        Highest order tried when choosing.
    flux : ndarray, optional
        The sources' fluxes: each star is then weighted by its expected
        centroid error, and a fainter star matched last is judged by its own.
        None: every star alike.

    Returns
    -------
    Refit or None
        None when fewer than ``MIN_STARS`` stars could be matched.
    """
    x = np.asarray(x, float)[:MAX_SOURCES]
    y = np.asarray(y, float)[:MAX_SOURCES]
    fl = None if flux is None else np.asarray(flux, float)[:MAX_SOURCES]
    pos_err = max(1.0, float(positional_error))
    cx, cy = (width + 1) / 2.0, (height + 1) / 2.0
    corners = np.array([[cx, cy], [0.5, 0.5], [width + 0.5, 0.5], [0.5, height + 0.5]])
    corners = np.vstack([corners, [[width + 0.5, height + 0.5]]])
    sky = np.asarray(start.all_pix2world(corners, 1), dtype=float)
    if not np.all(np.isfinite(sky)):
        return None
    centre = (float(sky[0, 0]), float(sky[0, 1]))
    reach = float(np.max(_separation(centre, sky[1:, 0], sky[1:, 1])))
    rows = cone(stars, centre, min(90.0, reach * 1.1 + 0.01))
    if len(rows) < MIN_STARS:
        return None
    most = max(50, int(STARS_PER_SOURCE * len(x)))
    # The brightest in the cone, with room for the part outside the frame.
    candidates = rows[: 4 * most]
    ra = np.asarray(stars.ra, float)[candidates]
    dec = np.asarray(stars.dec, float)[candidates]
    # Stars well outside the frame are dropped once, by the start: a SIP
    # polynomial evaluated far outside the stars it was fitted to diverges.
    with np.errstate(all="ignore"):
        xy = np.asarray(start.all_world2pix(np.column_stack([ra, dec]), 1, quiet=True), float)
    pad_x, pad_y = 0.15 * width, 0.15 * height
    near = np.flatnonzero(
        (xy[:, 0] > 0.5 - pad_x)
        & (xy[:, 0] < width + 0.5 + pad_x)
        & (xy[:, 1] > 0.5 - pad_y)
        & (xy[:, 1] < height + 0.5 + pad_y)
    )
    candidates, ra, dec = candidates[near], ra[near], dec[near]
    # Fainter stars of the cone, for one last match with the settled fit.
    # (The cone holds about twice the stars of the frame.)
    fainter = rows[4 * most : 2 * int(DEEP_STARS_PER_SOURCE * len(x))]

    def project(model: Projection, radius: float) -> tuple[np.ndarray, np.ndarray]:
        limit = catalogue_depth(len(x), width, height, radius)
        with np.errstate(all="ignore"):
            xy = model.all_world2pix(np.column_stack([ra, dec]), 1, quiet=True)
        xy = np.asarray(xy, float).reshape(-1, 2)
        px, py = xy[:, 0], xy[:, 1]
        inside = (px > 0.5) & (px < width + 0.5) & (py > 0.5) & (py < height + 0.5)
        # Only the brightest ``limit`` stars inside the frame take part.
        beyond = np.flatnonzero(inside)[limit:]
        inside[beyond] = False
        return np.where(inside, px, np.nan), np.where(inside, py, np.nan)

    catalogue_rows = np.concatenate([candidates, fainter])
    deep_ra = np.asarray(stars.ra, float)[catalogue_rows]
    deep_dec = np.asarray(stars.dec, float)[catalogue_rows]

    def grow(seed: tuple[float, float]) -> _Grown | None:
        reach = float(np.max(np.hypot(corners[1:, 0] - seed[0], corners[1:, 1] - seed[1])))
        dist_seed = np.hypot(x - seed[0], y - seed[1])
        model: Projection = start
        fitted: WcsFit | None = None
        chosen_order = 1 if order is None else max(1, int(order))
        scores: dict[int, float] = {}
        src_rows = star_rows = np.zeros(0, dtype=np.intp)
        radius = GROW_RADIUS * pos_err
        previous: tuple[bytes, bytes] | None = None
        rounds = 0
        schedule: list[float | None] = [*GROWTH, *([None] * MAX_ROUNDS)]
        last_xy: tuple[np.ndarray, np.ndarray] | None = None
        ringed = False
        for share in schedule:
            if share is not None:
                radius = GROW_RADIUS * pos_err
                region = dist_seed <= share * reach
            else:
                sigma = fitted.sigma_px if fitted is not None else math.inf
                radius = min(
                    GROW_RADIUS * pos_err, max(MIN_RADIUS * pos_err, RADIUS_SIGMAS * sigma)
                )
                region = np.ones(len(x), dtype=bool)
            px, py = project(model, radius)
            if share is not None and last_xy is not None and share < 1.0:
                # The fit through the first rings puts every star in the frame where
                # the model before it did: the start was good, growing further is moot.
                with np.errstate(invalid="ignore"):
                    moved = np.hypot(px - last_xy[0], py - last_xy[1])
                if np.any(np.isfinite(moved)) and np.nanmax(moved) < STABLE_SHARE * radius:
                    continue
            last_xy = (px, py)
            sel = np.flatnonzero(region)
            s_rows, c_rows = match_one_to_one(x[sel], y[sel], px, py, radius)
            s_rows = sel[s_rows]
            if len(s_rows) < MIN_STARS:
                if share is not None and share < 1.0:
                    continue  # too few near the seed: grow
                break
            key = (s_rows.tobytes(), c_rows.tobytes())
            if share is None:
                rounds += 1
                if key == previous:
                    break
            previous = key
            pairs = Pairs.of(
                x[s_rows], y[s_rows], ra[c_rows], dec[c_rows], width=width, height=height,
                crval=_centre_of(model, cx, cy),
                order=highest_order(len(s_rows), max_order) if order is None else order,
            )  # fmt: skip
            attempt = _fit_clipped(
                pairs, order=order, max_order=max_order, flux=None if fl is None else fl[s_rows]
            )
            if attempt is None:
                if share is not None and share < 1.0:
                    continue  # too few left after clipping: grow
                break
            fitted, keep, chosen_order, scores = attempt
            src_rows, star_rows = s_rows[keep], c_rows[keep]
            model = fitted.model
            ringed = ringed or (share is not None and share < 1.0)
        if fitted is None or len(src_rows) < MIN_STARS:
            return None
        settled = fitted
        if DEEP_STARS_PER_SOURCE > STARS_PER_SOURCE:
            deeper = _deepen(
                x, y, fitted, src_rows, star_rows, deep_ra, deep_dec, width, height,
                centre=_centre_of(model, cx, cy), order=chosen_order,
                max_radius=MIN_RADIUS * pos_err, flux=fl,
            )  # fmt: skip
            if deeper is not None:
                fitted, src_rows, star_rows = deeper
        return _Grown(fitted, src_rows, star_rows, scores, radius, rounds, settled, ringed)

    best = grow((cx, cy))
    if best is None or not best.ringed:
        # No ring around the centre held a fit: the start is not right there (a
        # solver's WCS is right near the stars it was verified on, and an order-2
        # tweak through one index's stars in a corner can be pixels off at the
        # centre), and the whole frame matched at once lets chance pairs on the
        # far side hold the fit.  The rings grow again from where the start
        # explains the most stars; the growth keeping more stars, then fitting
        # them better, is taken.
        seed = _seed(x, y, *project(start, GROW_RADIUS * pos_err), GROW_RADIUS * pos_err,
                     ring=GROWTH[0] * math.hypot(width, height) / 2.0, centre=(cx, cy))  # fmt: skip
        other = grow(seed) if seed != (cx, cy) else None
        if other is not None and (best is None or _better(other, best)):
            best = other
    if best is None:
        return None
    fitted, src_rows, star_rows = best.fit, best.source_rows, best.star_rows
    # The chance that random sources would land as close to as many stars.
    px, py = project(best.settled.model, best.radius)
    in_frame = int(np.count_nonzero(np.isfinite(px)))
    n_src = len(x)
    p = min(1.0, in_frame * math.pi * best.radius**2 / (width * height))
    chance = binomial_tail(len(best.settled.residual_x), n_src, p)
    # The stars a count of matches is made against, whichever WCS counts:
    # those of the frame the refit matched, and the fainter ones it took.
    field_rows = np.union1d(catalogue_rows[np.flatnonzero(np.isfinite(px))],
                            catalogue_rows[star_rows])  # fmt: skip
    return Refit(
        fit=fitted,
        source_rows=src_rows,
        star_rows=catalogue_rows[star_rows],
        radius=best.radius,
        order_requested=order is not None,
        order_scores=best.scores,
        stars_in_field=in_frame,
        sources_used=n_src,
        chance=chance,
        rounds=best.rounds,
        field_rows=field_rows,
    )


def _better(a: _Grown, b: _Grown) -> bool:
    """Whether growth ``a`` keeps more stars than ``b``, or as many fitted better."""
    return (len(a.source_rows), -a.fit.rms_px) > (len(b.source_rows), -b.fit.rms_px)


def _seed(
    x: np.ndarray,
    y: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    radius: float,
    *,
    ring: float,
    centre: tuple[float, float],
) -> tuple[float, float]:
    """Where the growth starts: the matched source with the most other matched
    sources within ``ring`` (the first ring's radius), the start's stars
    matched within ``radius``; the nearest such to ``centre`` on ties, and
    ``centre`` itself when fewer than ``MIN_STARS`` match."""
    s_rows, _ = match_one_to_one(x, y, px, py, radius)
    if len(s_rows) < MIN_STARS:
        return centre
    mx, my = x[s_rows], y[s_rows]
    near = np.hypot(mx[:, None] - mx[None, :], my[:, None] - my[None, :]) <= ring
    count = np.count_nonzero(near, axis=1)
    best = np.flatnonzero(count == count.max())
    k = best[np.argmin(np.hypot(mx[best] - centre[0], my[best] - centre[1]))]
    return float(mx[k]), float(my[k])


def _deepen(
    x: np.ndarray,
    y: np.ndarray,
    fitted: WcsFit,
    src_rows: np.ndarray,
    star_rows: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    width: int,
    height: int,
    *,
    centre: tuple[float, float],
    order: int,
    max_radius: float,
    flux: np.ndarray | None = None,
) -> tuple[WcsFit, np.ndarray, np.ndarray] | None:
    """The settled fit, refitted at its order with the fainter stars it pairs unambiguously.

    Only sources it left unmatched take part, each with the one catalogue star
    (``ra``, ``dec``: the settled fit's and fainter ones) within ``DEEP_SIGMAS`` of the fit
    when no other star lies within ``DEEP_AMBIGUITY`` times that radius, nor
    another unmatched source near that star.  None when nothing was added, or when the
    new fit does not predict the stars it shares with the settled one (each
    from all the others) significantly better: stars that are only fitted,
    not explained, must not bend the corners.  With ``flux`` each candidate's
    radius is ``DEEP_SIGMAS`` times its own expected error: its centroid's at
    its flux plus the settled fit's where it lies (a faint star alone in a
    corner of a weighted fit); the test stays unweighted, each shared star's
    prediction counted alike.
    """
    radius = min(max_radius, DEEP_SIGMAS * fitted.sigma_px)
    if not radius > 0 or len(src_rows) < MIN_STARS:
        return None
    settled = Pairs.of(
        x[src_rows], y[src_rows], ra[star_rows], dec[star_rows], width=width, height=height,
        crval=centre, order=order,
    )  # fmt: skip
    errors = None
    if flux is not None:
        errors = centroid_errors(squared_residuals(settled, order), flux[src_rows])
        radius = max_radius
    model = fitted.model
    star_free = np.ones(len(ra), dtype=bool)
    star_free[star_rows] = False
    free = np.ones(len(x), dtype=bool)
    free[src_rows] = False
    sel = np.flatnonzero(free)
    # Candidates in the undistorted pixel plane (linear algebra for every star,
    # the forward SIP for the few free sources), then exact distances for them.
    with np.errstate(invalid="ignore"):
        uv = np.linalg.solve(model.cd, gnomonic(ra, dec, *model.crval).T)
        s_ra, s_dec = model.pix2world(x[sel], y[sel])
        su, sv = np.linalg.solve(model.cd, gnomonic(s_ra, s_dec, *model.crval).T)
    reach = DEEP_AMBIGUITY * radius
    uu = np.where(star_free, uv[0], np.nan)
    src, star, _ = pairs_within(su, sv, uu, uv[1], SLACK * reach)
    if len(src) == 0:
        return None
    px, py = model.world2pix(ra[star], dec[star])
    dist = np.hypot(px - x[sel[src]], py - y[sel[src]])
    pair_radius = np.full(len(src), radius)
    if errors is not None and flux is not None:
        cx, cy = (width + 1) / 2.0, (height + 1) / 2.0
        scale = max(width, height) / 2.0
        pair_radius = candidate_radius(
            errors, flux[sel[src]], settled.design(order), centroid_weights(errors, flux[src_rows]),
            design_matrix(x[sel[src]] - cx, y[sel[src]] - cy, order, scale),
            sigmas=DEEP_SIGMAS, most=max_radius,
        )  # fmt: skip
    close = dist <= DEEP_AMBIGUITY * pair_radius
    src, star, dist, pair_radius = src[close], star[close], dist[close], pair_radius[close]
    near_src = np.bincount(src, minlength=len(sel))
    near_star = np.bincount(star, minlength=len(ra))
    take = (dist <= pair_radius) & (near_src[src] == 1) & (near_star[star] == 1)
    if not np.any(take):
        return None
    s_rows = np.concatenate([src_rows, sel[src[take]]])
    c_rows = np.concatenate([star_rows, star[take]])
    deeper = Pairs.of(
        x[s_rows], y[s_rows], ra[c_rows], dec[c_rows], width=width, height=height,
        crval=centre, order=order,
    )  # fmt: skip
    attempt = _fit_clipped(
        deeper, order=order, max_order=order, flux=None if flux is None else flux[s_rows]
    )
    if attempt is None:
        return None
    new_fit, keep, used, _ = attempt
    # The stars both fits keep, each predicted from all the others.
    shared = keep[keep < len(src_rows)]
    if len(shared) < MIN_STARS:
        return None
    before = loo_errors(settled, order)[shared]
    after = loo_errors(deeper.rows(keep), used)[: len(shared)]
    gain = before**2 - after**2
    spread = float(np.std(gain, ddof=1)) / math.sqrt(len(gain))
    if not float(np.mean(gain)) > DEEP_SIGNIFICANCE * spread:
        return None
    if math.sqrt(float(np.mean(after**2))) > math.sqrt(float(np.mean(before**2))) * (1 - DEEP_GAIN):
        return None
    by_source = np.argsort(s_rows[keep], kind="stable")
    return new_fit, s_rows[keep][by_source], c_rows[keep][by_source]


def _fit_clipped(
    pairs: Pairs,
    *,
    order: int | None,
    max_order: int,
    flux: np.ndarray | None = None,
) -> tuple[WcsFit, np.ndarray, int, dict[int, float]] | None:
    """Fit, drop residuals beyond ``CLIP_SIGMAS`` robust sigmas, refit until none are.

    ``pairs``: the matched stars about the frame's centre, expanded up to the
    highest order a fit may take (``order``, or when that is None the
    :func:`~skysolve.engine.fitting.wcsfit.highest_order` up to ``max_order``).
    With ``flux`` every fit (and the order's choice) is weighted by the stars'
    expected centroid errors, the error model fitted each round to the
    unweighted residuals of the stars kept.  Returns the fit, the rows of the
    stars kept, the order and the order scores.
    """
    keep = np.arange(len(pairs.x))
    scores: dict[int, float] = {}
    used = 1
    for attempt in range(8):
        if len(keep) < MIN_STARS:
            return None
        kept = pairs if attempt == 0 else pairs.rows(keep)
        if attempt > 0:
            used = usable_order(len(keep), used)
        elif order is None:
            used, scores = choose_order_of(kept, max_order=max_order)
        else:
            used = usable_order(len(keep), order)
        weights = None
        if flux is not None:
            errors = centroid_errors(squared_residuals(kept, used), flux[keep])
            weights = centroid_weights(errors, flux[keep])
            # Every weight 1 (the error model found no faint stars' excess):
            # the weighted choice is the one just made, to the bit.
            if attempt == 0 and order is None and not np.all(weights == 1.0):
                used, scores = choose_order_of(kept, max_order=max_order, weights=weights)
        fit = fit_wcs_of(kept, used, weights=weights)
        distance = np.hypot(fit.residual_x, fit.residual_y)
        # The median radial distance of a 2-D Gaussian is 1.1774 sigma.
        sigma = float(np.median(distance)) / 1.1774
        bad = distance > max(CLIP_SIGMAS * sigma, 1e-3)
        if not np.any(bad) or attempt == 7:
            break
        keep = keep[~bad]
    return fit, keep, used, scores


def _centre_of(model: Projection, cx: float, cy: float) -> tuple[float, float]:
    sky = np.asarray(model.all_pix2world(np.array([[cx, cy]]), 1), dtype=float)
    return float(sky[0, 0]), float(sky[0, 1])


def catalogue_depth(n_sources: int, width: int, height: int, radius: float) -> int:
    """How many of the brightest catalogue stars inside the frame a match of
    ``n_sources`` sources within ``radius`` pixels takes: a catalogue denser
    than the match radius allows pairs sources with the wrong stars, so the
    depth follows the radius."""
    limit = int(CHANCE_PER_SOURCE * width * height / (math.pi * radius**2))
    return max(30, min(max(50, int(STARS_PER_SOURCE * n_sources)), limit))


def cone(stars: Catalogue, centre: tuple[float, float], radius: float) -> np.ndarray:
    """Rows of the stars within ``radius`` degrees of ``centre``, brightest first."""
    r, d = math.radians(centre[0]), math.radians(centre[1])
    axis = np.array([math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d)])
    rows = np.flatnonzero(np.asarray(stars.xyz) @ axis >= math.cos(math.radians(radius)))
    if stars.mag is not None:
        mag = np.asarray(stars.mag, float)[rows]
        rows = rows[np.argsort(np.where(np.isfinite(mag), mag, np.inf), kind="stable")]
    return rows


def _separation(centre: tuple[float, float], ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r0, d0 = math.radians(centre[0]), math.radians(centre[1])
    r, d = np.radians(ra), np.radians(dec)
    c = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(r - r0)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))
