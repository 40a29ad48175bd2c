"""The fast path's ``corr.fits`` and ``rdls.fits``: binary tables with astrometry.net's columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skysolve.engine.results import SourceList
from skysolve.engine.solving.axyfile import write_fits_table
from skysolve.engine.solving.fastpath.database import Stars
from skysolve.engine.solving.fastpath.refit import REFIT_SOURCES, Refined
from skysolve.engine.solving.fastpath.verification import references_in_field


def write_files(
    workdir: Path, sources: SourceList, refined: Refined, stars: Stars
) -> dict[str, Path]:
    """``corr.fits`` and ``rdls.fits`` with astrometry.net's columns."""
    w, h = sources.width, sources.height
    model = refined.model
    src = sources.head(REFIT_SOURCES)
    fx = np.asarray(src.x, float)[refined.source_rows]
    fy = np.asarray(src.y, float)[refined.source_rows]
    fra, fdec = model.pix2world(fx, fy)
    ira = np.asarray(stars.ra)[refined.star_rows]
    idec = np.asarray(stars.dec)[refined.star_rows]
    ix, iy = model.world2pix(ira, idec)
    weight = np.exp(-((ix - fx) ** 2 + (iy - fy) ** 2) / 2.0)
    corr_path = workdir / "field.corr"
    write_fits_table(
        corr_path,
        [
            ("field_x", "D", "pixels", fx),
            ("field_y", "D", "pixels", fy),
            ("field_ra", "D", "degrees", fra),
            ("field_dec", "D", "degrees", fdec),
            ("index_x", "D", "pixels", ix),
            ("index_y", "D", "pixels", iy),
            ("index_ra", "D", "degrees", ira),
            ("index_dec", "D", "degrees", idec),
            ("index_id", "J", "none", refined.star_rows),
            ("field_id", "J", "none", refined.source_rows),
            ("match_weight", "D", "none", weight),
            ("FLUX", "E", "", np.asarray(src.flux)[refined.source_rows]),
        ],
    )
    _, _, rows = references_in_field(model, w, h, stars, limit=2 * len(src), near=refined.near)
    rdls_path = workdir / "field.rdls"
    write_fits_table(
        rdls_path,
        [
            ("RA", "D", "deg", np.asarray(stars.ra)[rows]),
            ("DEC", "D", "deg", np.asarray(stars.dec)[rows]),
        ],
    )
    return {"corr": corr_path, "rdls": rdls_path}
