import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from skysolve.engine.indexes.catalog import (
    StarCatalog,
    default_catalog,
    densest_index,
    index_cone,
    index_scale_range,
    radec_to_xyz,
    read_index_stars,
)
from skysolve.errors import BadInputError, ConfigurationError, CorruptFileError
from tests.gates import needs_file

INDEX_DIR = Path("/usr/share/astrometry")
SMALL_INDEX = INDEX_DIR / "index-tycho2-19.littleendian.fits"
DENSE_INDEX = INDEX_DIR / "index-tycho2-07.littleendian.fits"

pytestmark = [needs_file(SMALL_INDEX), needs_file(DENSE_INDEX)]

# J2000 positions and V magnitudes of bright Tycho-2 stars (Vega, Sirius and
# Polaris are not in Tycho-2's main catalogue, so not in the index files).
BRIGHT_STARS = {
    "Rigel": (78.6345, -8.2016, 0.13),
    "Spica": (201.2983, -11.1613, 0.97),
    "Antares": (247.3519, -26.4320, 1.06),
    "Betelgeuse": (88.7929, 7.4071, 0.50),
    "Capella": (79.1723, 45.9980, 0.08),
}


def separation_deg(cat: StarCatalog, ra: float, dec: float) -> np.ndarray:
    v = radec_to_xyz(np.array([ra]), np.array([dec]))[0]
    return np.degrees(np.arccos(np.clip(cat.xyz @ v, -1.0, 1.0)))


def test_it_reads_all_stars_of_an_index_as_unit_vectors() -> None:
    cat = read_index_stars(SMALL_INDEX)
    assert len(cat) == 1080
    assert cat.source == str(SMALL_INDEX)
    assert np.allclose(np.linalg.norm(cat.xyz, axis=1), 1.0, atol=1e-9)
    assert cat.ra.min() >= 0.0 and cat.ra.max() < 360.0
    assert cat.dec.min() >= -90.0 and cat.dec.max() <= 90.0
    # A uniformised all-sky index has stars in both hemispheres and all around.
    assert (cat.dec > 30).sum() > 100 and (cat.dec < -30).sum() > 100
    assert np.histogram(cat.ra, bins=12, range=(0, 360))[0].min() > 30


def test_it_reads_magnitudes_in_the_same_order_as_the_stars() -> None:
    cat = read_index_stars(SMALL_INDEX)
    assert cat.mag is not None and cat.mag.dtype == np.float64
    assert 0.0 < cat.mag.min() < 0.5 and 4.0 < cat.mag.max() < 7.0
    brightest = int(np.argmin(cat.mag))
    # The brightest entry is alpha Centauri (Tycho-2 V_T 0.137).
    assert separation_deg(cat, 219.90, -60.835)[brightest] < 0.05


def test_it_puts_bright_stars_at_their_known_positions() -> None:
    cat = default_catalog()
    assert cat.source == str(DENSE_INDEX)
    assert len(cat) == 1871011
    assert cat.mag is not None
    for name, (ra, dec, vmag) in BRIGHT_STARS.items():
        sep = separation_deg(cat, ra, dec)
        nearest = int(np.argmin(sep))
        assert sep[nearest] * 3600 < 30, name  # proper motion only
        assert abs(cat.mag[nearest] - vmag) < 0.8, name


def test_it_caches_the_default_catalog() -> None:
    assert default_catalog() is default_catalog([INDEX_DIR])


def test_it_finds_the_stars_in_a_cone() -> None:
    cat = read_index_stars(SMALL_INDEX)
    for ra, dec, radius in [(10.0, 20.0, 15.0), (359.0, -89.0, 10.0), (180.0, 0.0, 0.5)]:
        inside = cat.cone(ra, dec, radius)
        expected = np.flatnonzero(separation_deg(cat, ra, dec) <= radius)
        assert len(inside) == len(expected)
        assert np.array_equal(inside.ra, cat.ra[expected])
        assert inside.mag is not None and cat.mag is not None
        assert np.array_equal(inside.mag, cat.mag[expected])
    assert len(cat.cone(0.0, 0.0, 180.0)) == len(cat)


def test_it_reads_one_cone_of_an_index_without_the_rest() -> None:
    """What the final fit reads: the same stars as the whole catalogue's cone."""
    cat = read_index_stars(SMALL_INDEX)
    for ra, dec, radius in [(10.0, 20.0, 15.0), (359.0, -89.0, 10.0)]:
        part = index_cone(SMALL_INDEX, ra, dec, radius)
        whole = cat.cone(ra, dec, radius)
        assert np.allclose(part.ra, whole.ra) and np.allclose(part.dec, whole.dec)
        assert part.mag is not None and whole.mag is not None
        assert np.array_equal(part.mag, whole.mag)
        assert np.allclose(part.xyz, radec_to_xyz(part.ra, part.dec))


def test_it_rejects_a_cone_off_the_sky() -> None:
    cat = read_index_stars(SMALL_INDEX)
    with pytest.raises(BadInputError, match="not a sky position"):
        cat.cone(0.0, 95.0, 1.0)
    with pytest.raises(BadInputError, match="radius"):
        cat.cone(0.0, 0.0, -1.0)


def test_it_reports_the_quad_scale_range_in_arcminutes() -> None:
    assert index_scale_range(DENSE_INDEX) == pytest.approx((22.0, 30.0))
    assert index_scale_range(SMALL_INDEX) == pytest.approx((1400.0, 2000.0))


def test_it_rejects_files_that_are_not_index_files(tmp_path: Path) -> None:
    image = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((4, 4), dtype=np.float32)).writeto(image)
    with pytest.raises(BadInputError, match="not an astrometry.net index file"):
        read_index_stars(image)
    with pytest.raises(BadInputError, match="SCALE_L"):
        index_scale_range(image)
    text = tmp_path / "notes.fits"
    text.write_text("hello\n" * 1000)
    with pytest.raises(BadInputError, match="not a readable FITS file"):
        read_index_stars(text)
    with pytest.raises(BadInputError, match="no such index file"):
        read_index_stars(tmp_path / "missing.fits")


def test_it_rejects_a_truncated_index_file(tmp_path: Path) -> None:
    damaged = tmp_path / "index-damaged.fits"
    data = SMALL_INDEX.read_bytes()
    damaged.write_bytes(data[: len(data) - 20000])
    with pytest.raises(CorruptFileError, match="truncated"):
        read_index_stars(damaged)


def test_it_picks_the_densest_index_in_the_given_directories(tmp_path: Path) -> None:
    for n in ("18", "19"):
        shutil.copy(INDEX_DIR / f"index-tycho2-{n}.littleendian.fits", tmp_path)
    (tmp_path / "index-broken.fits").write_text("not fits")
    cat = default_catalog([tmp_path])
    assert Path(cat.source).name == "index-tycho2-18.littleendian.fits"
    assert densest_index([tmp_path]).name == "index-tycho2-18.littleendian.fits"
    assert len(cat) == 1920


def test_it_raises_a_configuration_error_without_index_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no astrometry.net index files"):
        default_catalog([tmp_path, tmp_path / "absent"])


def test_it_does_not_share_arrays_between_a_catalogue_and_its_cone() -> None:
    cat = read_index_stars(SMALL_INDEX)
    before = cat.ra.copy()
    sub = cat.cone(100.0, 0.0, 30.0)
    assert len(sub) > 0 and math.isclose(float(cat.ra.sum()), float(before.sum()))
    assert not np.shares_memory(sub.ra, cat.ra)


def test_the_index_reads_the_same_without_astropy_as_through_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The headers are read without astropy (its import is a quarter of a second
    of a narrow field's final fit); astropy's reading gives the same stars."""
    from skysolve.engine.indexes import catalog

    plain = read_index_stars(SMALL_INDEX)
    count = catalog._star_count(SMALL_INDEX)
    headers = catalog.read_headers(SMALL_INDEX)
    assert headers is not None and len(headers) > 5  # the plain reading was taken
    monkeypatch.setattr(catalog, "read_headers", lambda path: None)
    through = read_index_stars(SMALL_INDEX)
    np.testing.assert_array_equal(plain.xyz, through.xyz)
    assert plain.mag is not None and through.mag is not None
    np.testing.assert_array_equal(plain.mag, through.mag)
    assert count == catalog._star_count(SMALL_INDEX) == len(plain)
