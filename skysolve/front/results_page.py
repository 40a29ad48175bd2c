"""The results page: a solved job's calibration, quality, objects, licence and files."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from skysolve.community.tags import image_tag_texts
from skysolve.engine.inputs.formats import sniff_format
from skysolve.front import originals
from skysolve.front.astro import angle_text, dec_dms, ra_hms
from skysolve.front.listings import file_url
from skysolve.front.maps import sky_plot
from skysolve.front.status_page import log_tail, pictures_pending, status_label
from skysolve.submissions.logs import shown_log
from skysolve.submissions.models import Job, Submission

#: Most tags the results page shows.
TAGS_SHOWN = 100

#: The overlays the results page can switch between (display-size pictures).
OVERLAYS: list[tuple[str, str, str]] = [
    ("annotated_display", "annotated_display", "objects"),
    ("extraction_display", "extraction_image_display", "sources"),
    ("red_green_display", "red_green_image_display", "catalogue stars"),
    ("grid_display", "grid_display", "grid"),
    ("residuals_display", "residuals_display", "fit residuals"),
]

#: Result files and the nova URL the API serves each one at.
RESULT_FILES: list[tuple[str, str, str]] = [
    ("wcs", "wcs_file", "WCS header (wcs.fits)"),
    ("new_fits", "new_fits_file", "image with WCS (new-image.fits)"),
    ("rdls", "rdls_file", "catalogue stars in the field (rdls.fits)"),
    ("axy", "axy_file", "detected sources (axy.fits)"),
    ("corr", "corr_file", "matched star pairs (corr.fits)"),
    ("kml", "kml_file", "Google Earth sky overlay (KML)"),
    ("lens", "lens_file", "all-sky lens model and matched stars (lens.json)"),
    ("altaz", "altaz_file", "altitude and azimuth of every pixel (altaz.fits)"),
    ("annotated_full", "annotated_full", "annotated image, full size"),
    ("red_green_full", "red_green_image_full", "sources vs catalogue, full size"),
    ("extraction_full", "extraction_image_full", "detected sources, full size"),
    ("grid_full", "grid_full", "RA/Dec grid, full size"),
    ("residuals_full", "residuals_full", "fit residuals as arrows, full size"),
    ("log", "joblog", "solver log"),
]


#: How the final fit's order was chosen (``order_chosen_by``), in the page's words.
ORDER_CHOSEN_BY = {
    "request": "requested",
    "cross-validation": "chosen by cross-validation",
    "the verified answer's order": "that of the verified answer, which fits its stars better",
    "the solver": "as the solver found it",
}


@dataclass(frozen=True)
class CalibrationRow:
    label: str
    value: str


def calibration_rows(job: Job) -> list[CalibrationRow]:
    cal = job.calibration_dict()
    nova = job.nova_calibration()
    if cal is None or nova is None:
        return []
    parity = "positive (+1, not flipped)" if cal["parity"] >= 0 else "negative (−1, flipped)"
    return [
        CalibrationRow("Centre RA", f"{cal['ra']:.6f}° = {ra_hms(cal['ra'])}"),
        CalibrationRow("Centre Dec", f"{cal['dec']:+.6f}° = {dec_dms(cal['dec'])}"),
        CalibrationRow("Pixel scale", f"{cal['pixscale']:.4g} arcsec/pixel"),
        CalibrationRow(
            "Field size",
            f"{angle_text(cal['width_arcsec'] / 3600)} × {angle_text(cal['height_arcsec'] / 3600)}",
        ),
        CalibrationRow("Radius", f"{angle_text(cal['radius'])} (half-diagonal)"),
        CalibrationRow("Orientation", f"{nova['orientation']:.2f}° East of North"),
        CalibrationRow("Parity", parity),
    ]


def object_groups(job: Job) -> list[list[str]]:
    """The objects in the field, one list of names per object ("NGC 5194", "M 51", "Whirlpool
    Galaxy" are one galaxy), in ``objects_in_field``'s order."""
    group_of: dict[str, int] = {}
    groups: list[list[str]] = []
    for annotation in job.annotations():
        names = [str(name) for name in annotation.get("names") or []]
        if len(names) > 1 and annotation.get("type") not in ("bright", "constellation"):
            for name in names:
                group_of.setdefault(name, len(groups))
            groups.append(names)
    shown: list[list[str]] = []
    seen: set[int] = set()
    for name in job.objects_in_field():
        index = group_of.get(name)
        if index is None:
            shown.append([name])
        elif index not in seen:
            seen.add(index)
            shown.append(groups[index])
    return shown


def quality_rows(job: Job) -> list[CalibrationRow]:
    """How good the calibration is, in words and numbers: when nothing was
    measured, only why the solver's WCS was kept and whose stars it was fitted
    to (empty without either)."""
    q = job.quality()
    if not q:
        return []
    reference = reference_rows(q)
    kept = []
    if q.get("refit") is False:
        why = q.get("kept_reason") or "the refit was not better"
        kept = [CalibrationRow("Final fit", f"{why}: the solver's WCS kept")]
    if not q.get("matched_stars"):
        # Nothing measured (no catalogue to match against): only why, and whose the WCS is.
        return reference + kept if kept else []

    def number(key: str, fmt: str, unit: str = "") -> str:
        value = q.get(key)
        return "—" if value is None else f"{value:{fmt}}{unit}"

    order = q.get("sip_order") or 0
    # Why a WCS was kept is the "Final fit" row's, once.
    how = ORDER_CHOSEN_BY.get(q.get("order_chosen_by") or "", "chosen by cross-validation")
    band = f" ({q['band']} catalogue)" if q.get("band") else ""
    distortion = f"SIP order {order} ({how})" if order else f"none ({how})"
    if q.get("lens_projection"):
        terms = q.get("lens_terms") or []
        more = f" with {', '.join(terms)}" if terms else ""
        distortion = f"all-sky lens model, {q['lens_projection']} projection{more} (lens file)"
    rows = [
        CalibrationRow("Matched stars", f"{q['matched_stars']}{band}"),
        *reference,
        CalibrationRow(
            "Residuals",
            f"RMS {number('rms_px', '.3f', ' px')} = {number('rms_arcsec', '.2f', '″')}, "
            f"median {number('median_px', '.3f', ' px')} = {number('median_arcsec', '.2f', '″')}",
        ),
        CalibrationRow("Distortion", distortion),
        CalibrationRow(
            "Centre uncertainty (1σ)",
            f"RA {number('ra_error_arcsec', '.3g', '″')}, "
            f"Dec {number('dec_error_arcsec', '.3g', '″')}",
        ),
        CalibrationRow(
            "Scale, rotation uncertainty (1σ)",
            f"{number('pixscale_error', '.2g', ' arcsec/pixel')}, "
            f"{number('rotation_error_deg', '.2g', '°')}",
        ),
        CalibrationRow("Faintest matched star", number("limiting_mag", ".2f", " mag")),
    ]
    if q.get("zero_point") is not None:
        rows.append(
            CalibrationRow(
                "Photometric zero point",
                f"{q['zero_point']:.2f} ± {number('zero_point_scatter', '.2f')} mag "
                f"({q.get('zero_point_stars')} stars; mag + 2.5 log10 flux)",
            )
        )
    if q.get("fwhm_px") is not None:
        rows.append(
            CalibrationRow(
                "Star shapes",
                f"FWHM {q['fwhm_px']:.2f} px, elongation {number('elongation', '.2f')} "
                f"(median of {q.get('shape_stars')} stars)",
            )
        )
    bottom_up = (job.result or {}).get("image_format") == "fits"
    for key, label in (("fwhm_grid", "FWHM across the frame (px)"),
                       ("elongation_grid", "Elongation across the frame")):  # fmt: skip
        if q.get(key):
            rows.append(CalibrationRow(label, grid_text(q[key], bottom_up=bottom_up)))
    return rows + kept


def reference_rows(q: dict[str, Any]) -> list[CalibrationRow]:
    """The stars the WCS was fitted to and their epoch, which is the WCS's (none
    for answers recorded before the quality said so)."""
    if "reference_epoch" not in q:
        return []
    # Unnamed, they are the final fit's stars for a refit (an index file of
    # another series), the solver's for a kept WCS (answer.reference_fields).
    whose = "the final fit's catalogue" if q.get("refit") else "the solver's catalogue"
    catalogue = q.get("reference_catalogue") or whose
    epoch = q["reference_epoch"]
    if epoch is None:
        why = q.get("reference_epoch_reason") or "not stated"
        return [CalibrationRow("Fitted to", f"{catalogue}, epoch unknown: {why}")]
    return [CalibrationRow("Fitted to", f"{catalogue} stars at epoch J{epoch:.1f}")]


def grid_text(grid: list[list[float | None]], *, bottom_up: bool) -> str:
    """A 3 x 3 grid of star shapes (rows from y = 1) as the picture shows it:
    rows from the top, "·" where too few stars were measured."""
    rows = list(reversed(grid)) if bottom_up else list(grid)
    cells = [" ".join("·" if v is None else f"{v:.2f}" for v in row) for row in rows]
    return " / ".join(cells) + " (rows top to bottom, as shown)"


def display_up(job: Job, orientation: float) -> float:
    """Position angle (degrees East of North, in [0, 360)) of the displayed picture's up.

    ``orientation`` is the +y axis's; FITS pictures are shown with +y up, every
    other input (and a star list's canvas) with +y down.
    """
    bottom_up = (job.result or {}).get("image_format") == "fits"
    return (orientation if bottom_up else orientation + 180.0) % 360.0


def reproduce_command(job: Job) -> str:
    command = [str(part) for part in (job.result or {}).get("command") or []]
    filename = job.user_image.original_filename
    if len(command) >= 3 and command[:2] == ["skysolve", "solve"] and filename:
        # The engine saw the stored upload's generated name; people have their own file.
        command[2] = filename
    return shlex.join(command)


@dataclass(frozen=True)
class Licence:
    """The Creative Commons licence an image is offered under, or none."""

    code: str  # "by-nc-sa"; "" when the owner chose none
    name: str
    url: str


#: (commercial use, modifications) -> the Creative Commons licence nova offers for it.
_CC_CODES = {
    ("y", "y"): "by",
    ("y", "sa"): "by-sa",
    ("y", "n"): "by-nd",
    ("n", "y"): "by-nc",
    ("n", "sa"): "by-nc-sa",
    ("n", "n"): "by-nc-nd",
}
_CC_NAMES = {"by": "Attribution", "nc": "NonCommercial", "sa": "ShareAlike", "nd": "NoDerivatives"}


def licence(submission: Submission) -> Licence:
    """The submission's licence: its own choice, else its owner's default.

    "Default" all the way down means nobody chose a licence: all rights stay
    with the owner.  Only one of the two chosen: the other is read as "not
    allowed", the reading that grants nothing the owner did not say.
    """
    commercial, modifications = submission.allow_commercial_use, submission.allow_modifications
    owner = submission.user
    if owner is not None and "d" in (commercial, modifications):
        profile = getattr(owner, "profile", None)
        if profile is not None:
            if commercial == "d":
                commercial = profile.default_allow_commercial_use
            if modifications == "d":
                modifications = profile.default_allow_modifications
    if commercial == "d" and modifications == "d":
        return Licence("", "no licence chosen: all rights reserved by the owner", "")
    key = (commercial if commercial != "d" else "n", modifications if modifications != "d" else "n")
    code = _CC_CODES.get(key, "by-nc-nd")
    words = "-".join(_CC_NAMES[part] for part in code.split("-"))
    return Licence(
        code,
        f"CC {code.upper()} 4.0 ({words})",
        f"https://creativecommons.org/licenses/{code}/4.0/",
    )


def results(job: Job) -> dict[str, Any]:
    """Everything the results page shows about one job."""
    image = job.user_image
    submission = image.submission
    files = (job.result or {}).get("files") or {}
    overlays = [
        {"key": key, "url": file_url(prefix, job.id), "label": label}
        for key, prefix, label in OVERLAYS
        if key in files
    ]
    downloads = [
        {"url": file_url(prefix, job.id), "label": label}
        for key, prefix, label in RESULT_FILES
        if key in files
    ]
    original = originals.original_path(image)
    if (original is not None and sniff_format(original)) or image.star_list or submission.star_list:
        # nova's "original": the upload itself, rendered for the browser.
        overlays.append(
            {"key": "original", "url": f"/user_images/{image.id}/display", "label": "original"}
        )
    if job.log and "log" not in files:
        downloads.append({"url": file_url("joblog", job.id), "label": "solver log"})
    sky_map = sky_plot(job)
    owner = submission.user
    return {
        "job": job,
        "image": image,
        "submission": submission,
        "owner": owner.username if owner is not None else "anonymous",
        "public": image.is_public and submission.is_public,
        "calibration": calibration_rows(job),
        "quality": quality_rows(job),
        "overlays": overlays,
        "downloads": downloads,
        "objects": object_groups(job),
        "tags": image_tag_texts(image, machine=False, limit=TAGS_SHOWN),
        "original_url": f"/user_images/{image.id}/original" if original is not None else "",
        "sky_map": sky_map,
        "command": reproduce_command(job),
        "status_label": status_label(job),
        "licence": licence(submission),
        "pictures_pending": pictures_pending(job),
        "error_message": shown_log(job.error_message),
        "log_tail": log_tail(job.log),
        "index_fix": index_fix(job),
    }


#: How the engine's no_index message introduces the command that fixes it.
INDEX_FIX_PREFIX = "Install index files for it with: "


def index_fix(job: Job) -> str:
    """For a job that failed for want of index files, the command that installs them."""
    if job.error_code != "no_index" or INDEX_FIX_PREFIX not in job.error_message:
        return ""
    return job.error_message.split(INDEX_FIX_PREFIX, 1)[1].strip()
