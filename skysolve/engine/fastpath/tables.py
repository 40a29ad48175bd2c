"""The fast path's ``corr.fits`` and ``rdls.fits``: binary tables with astrometry.net's columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skysolve.engine.fastpath.database import Stars
from skysolve.engine.fastpath.refit import REFIT_SOURCES, _Refined
from skysolve.engine.fastpath.tansip import _card
from skysolve.engine.fastpath.verification import _references_in_field
from skysolve.engine.results import SourceList


def _write_files(
    workdir: Path, sources: SourceList, refined: _Refined, stars: Stars
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
    _, _, rows = _references_in_field(model, w, h, stars, limit=2 * len(src), near=refined.near)
    rdls_path = workdir / "field.rdls"
    write_fits_table(
        rdls_path,
        [
            ("RA", "D", "deg", np.asarray(stars.ra)[rows]),
            ("DEC", "D", "deg", np.asarray(stars.dec)[rows]),
        ],
    )
    return {"corr": corr_path, "rdls": rdls_path}


_FITS_TYPES = {"D": ">f8", "E": ">f4", "J": ">i4"}


def _block(cards: list[str]) -> bytes:
    text = "".join(cards) + "END".ljust(80)
    return (text + " " * (-len(text) % 2880)).encode("ascii")


def write_fits_table(path: Path, columns: list[tuple[str, str, str, np.ndarray]]) -> Path:
    """Write a FITS file with one binary table (formats D, E, J only).

    astropy takes tens of milliseconds for a small table; the fast path's whole
    budget is about that, and these tables are plain.
    """
    n = len(columns[0][3]) if columns else 0
    dtype = np.dtype([(name, _FITS_TYPES[form]) for name, form, _, _ in columns])
    rows = np.zeros(n, dtype=dtype)
    for name, _, _, values in columns:
        rows[name] = values
    primary = [_card("SIMPLE", True), _card("BITPIX", 8), _card("NAXIS", 0), _card("EXTEND", True)]
    table = [
        _card("XTENSION", "BINTABLE"),
        _card("BITPIX", 8),
        _card("NAXIS", 2),
        _card("NAXIS1", dtype.itemsize),
        _card("NAXIS2", n),
        _card("PCOUNT", 0),
        _card("GCOUNT", 1),
        _card("TFIELDS", len(columns)),
    ]
    for k, (name, form, unit, _) in enumerate(columns, start=1):
        table += [_card(f"TTYPE{k}", name), _card(f"TFORM{k}", "1" + form)]
        if unit:
            table.append(_card(f"TUNIT{k}", unit))
    data = rows.tobytes()
    with open(path, "wb") as fh:
        fh.write(_block(primary))
        fh.write(_block(table))
        fh.write(data + b"\0" * (-len(data) % 2880))
    return path
