"""The result files of a solve, and its pictures.

Every file a solve writes is named in :data:`FILE_NAMES` (relative to the
solve's ``out_dir``): the WCS header, the image with it (``new-image.fits``),
the source list (``axy.fits``), the matched pairs with their residuals
(``corr.fits``), the catalogue stars in the field (``rdls.fits``), the KML
overlay, the log, an all-sky frame's lens model and, when its time and site
are known, its pixels' altitude and azimuth (``altaz.fits``).  :func:`draw_result_pictures`
is the picture step, the same for a solve here and for an image whose sources
were solved elsewhere (:mod:`skysolve.engine.offload`).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from skysolve.engine.results import SolveResult, SourceList
from skysolve.engine.solving.axyfile import source_table

if TYPE_CHECKING:
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.engine.fitting.final import FinalFit

#: Names of the files a solve may write, relative to ``out_dir``.
FILE_NAMES: dict[str, str] = {
    "wcs": "wcs.fits",
    "new_fits": "new-image.fits",
    "rdls": "rdls.fits",
    "axy": "axy.fits",
    "corr": "corr.fits",
    "kml": "field.kml",
    "log": "solve.log",
    "lens": "lens.json",
    "altaz": "altaz.fits",
}


def matched_pairs(
    final: FinalFit, wcs: Any, sources: SourceList
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Source rows, catalogue rows, catalogue (x, y) under ``wcs`` and the catalogue
    positions (RA, Dec rows) of the final fit's stars; None without a refit."""
    refit = final.refit
    if refit is None or final.verdict == "implausible" or final.stars is None:
        return None
    rows, cat = refit.source_rows, refit.star_rows
    sky = np.column_stack([np.asarray(final.stars.ra)[cat], np.asarray(final.stars.dec)[cat]])
    xy = np.asarray(wcs.all_world2pix(sky, 1), dtype=float).reshape(-1, 2)
    return rows, cat, xy[:, 0], xy[:, 1], sky


def write_corr(
    path: Path, final: FinalFit, wcs: Any, sources: SourceList, pixscale: float
) -> Path | None:
    """``corr.fits`` of the final fit: the matched pairs with their residuals."""
    from skysolve.engine.fitting.quality import write_corr as write_corr_table

    pairs = matched_pairs(final, wcs, sources)
    if pairs is None:
        return None
    rows, cat, ix, iy, sky = pairs
    fx, fy = np.asarray(sources.x, float)[rows], np.asarray(sources.y, float)[rows]
    field_sky = np.asarray(wcs.all_pix2world(np.column_stack([fx, fy]), 1), dtype=float)
    mag = final.stars.mag if final.stars is not None else None
    return write_corr_table(
        path,
        field_x=fx, field_y=fy, field_ra=field_sky[:, 0], field_dec=field_sky[:, 1],
        index_x=ix, index_y=iy, index_ra=sky[:, 0], index_dec=sky[:, 1],
        index_id=cat, field_id=rows, flux=np.asarray(sources.flux, float)[rows],
        index_mag=np.full(len(rows), np.nan) if mag is None else np.asarray(mag, float)[cat],
        pixscale=pixscale,
    )  # fmt: skip


def residual_arrows(final: FinalFit, wcs: Any, sources: SourceList) -> np.ndarray | None:
    """Rows of (x, y, dx, dy): each matched source and its residual under ``wcs``."""
    pairs = matched_pairs(final, wcs, sources)
    if pairs is None:
        return None
    rows, _, ix, iy, _ = pairs
    fx, fy = np.asarray(sources.x, float)[rows], np.asarray(sources.y, float)[rows]
    return np.column_stack([fx, fy, ix - fx, iy - fy])


def catalog_xy(rdls: Path | None, wcs: WCS) -> np.ndarray | None:
    """The catalogue stars of ``rdls.fits`` in pixels under ``wcs``; None without the file."""
    if rdls is None or not rdls.exists():
        return None
    from astropy.io import fits

    with fits.open(rdls) as hdul:
        table = hdul[1].data
        if table is None or len(table) == 0:
            return np.zeros((0, 2))
        ra = np.asarray(table["RA"], dtype=float)
        dec = np.asarray(table["DEC"], dtype=float)
    xy = wcs.all_world2pix(np.column_stack([ra, dec]), 1)
    return np.asarray(xy)


def write_sources(path: Path, sources: SourceList) -> None:
    """``axy.fits``: the source list, with the image size in its header."""
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    primary.header["IMAGEW"] = sources.width
    primary.header["IMAGEH"] = sources.height
    fits.HDUList([primary, source_table(sources)]).writeto(path, overwrite=True)


def write_new_fits(path: Path, image: Any, wcs_header: fits.Header) -> Path:
    """``new-image.fits``: the image's pixels with its own header cards and the WCS."""
    from astropy.io import fits

    from skysolve.engine.inputs.fitscards import astropy_header

    header = fits.Header()
    if image.header is not None:
        for card in astropy_header(image.header).cards:
            if card.keyword in ("SIMPLE", "BITPIX", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT"):
                continue
            if card.keyword.startswith("NAXIS") or card.keyword in ("BSCALE", "BZERO"):
                continue
            try:
                header.append(card)
            except (ValueError, KeyError):  # pragma: no cover - unusual cards are skipped
                continue
    for card in wcs_header.cards:
        if card.keyword in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "COMMENT", "HISTORY", ""):
            continue
        header[card.keyword] = (card.value, card.comment)
    fits.PrimaryHDU(data=np.asarray(image.data, dtype=np.float32), header=header).writeto(
        path, overwrite=True
    )
    return path


def write_wcs_file(result: SolveResult, out_dir: Path) -> Path:
    """``wcs.fits``: the answer's WCS header, part of the answer itself."""
    from astropy.io import fits

    header = result.wcs_header
    assert header is not None
    path = out_dir / FILE_NAMES["wcs"]
    fits.PrimaryHDU(header=header).writeto(path, overwrite=True)
    result.files["wcs"] = path
    return path


def write_result_files(
    result: SolveResult,
    solver_files: Mapping[str, Path],
    final: FinalFit,
    wcs: Any,
    image: Any,
    fit_sources: SourceList,
    out_dir: Path,
    *,
    kml_wcs: WCS | None,
) -> None:
    """The files that follow the answer, added to ``result.files``.

    ``corr.fits`` of the final fit (else the solver's), the solver's
    ``rdls.fits``, lens model and altitude/azimuth planes, ``new-image.fits`` (an image only) and
    ``field.kml`` (when ``kml_wcs`` is given).
    """
    assert result.calibration is not None
    corr = write_corr(
        out_dir / FILE_NAMES["corr"], final, wcs, fit_sources, result.calibration.pixscale
    )
    if corr is not None:
        result.files["corr"] = corr
    for key in ("rdls", "corr", "lens", "altaz"):
        if key in result.files:
            continue
        if key in solver_files and solver_files[key].exists():
            target = out_dir / FILE_NAMES[key]
            shutil.copyfile(solver_files[key], target)
            result.files[key] = target
    if image is not None:
        assert result.wcs_header is not None
        result.files["new_fits"] = write_new_fits(
            out_dir / FILE_NAMES["new_fits"], image, result.wcs_header
        )
    if kml_wcs is not None:
        from skysolve.engine.products.kml import write_kml

        result.files["kml"] = write_kml(
            kml_wcs,
            result.image_width,
            result.image_height,
            image_name="annotated_display.jpg",
            out_path=out_dir / FILE_NAMES["kml"],
            bottom_up=bool(image is not None and image.bottom_up),
        )


def draw_result_pictures(
    result: SolveResult,
    image: Any,
    sources: SourceList,
    wcs: WCS | None,
    catalog_xy: np.ndarray | None,
    annotations: list[Any],
    out_dir: Path,
    *,
    residuals: np.ndarray | None = None,
    lines: Sequence[Any] = (),
) -> None:
    """Draw the pictures of ``result`` into ``out_dir`` and add them to its files.

    ``image``: the loaded image, or None for a star list (drawn on a dark
    canvas of the image's size, when that is at most 2000 pixels); ``wcs``
    and ``catalog_xy`` (see :func:`catalog_xy`) None when not solved;
    ``residuals``: rows of (x, y, dx, dy) (:func:`residual_arrows`); ``lines``:
    overlay polylines (an all-sky frame's curved figures).
    """
    from skysolve.engine.products.pictures import make_pictures

    if image is not None:
        data, color, bottom_up = image.data, image.color, image.bottom_up
    else:
        # A star list has no pixels: draw on a dark canvas of the image's size.
        scale = min(1.0, 2000.0 / max(result.image_width, result.image_height))
        data = np.zeros(
            (max(1, int(result.image_height * scale)), max(1, int(result.image_width * scale))),
            dtype=np.float32,
        )
        if scale < 1.0:
            return
        color, bottom_up = None, False
    result.files.update(
        make_pictures(
            data,
            color=color,
            bottom_up=bottom_up,
            wcs=wcs,
            sources=sources,
            catalog_xy=catalog_xy,
            annotations=annotations,
            out_dir=out_dir,
            residuals=residuals,
            overlay=lines,
        )
    )
