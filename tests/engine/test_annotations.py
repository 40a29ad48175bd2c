"""Naming what is in a solved field.

The apod2 and apod4 WCS below are the headers ``solve-field`` 0.93 wrote for the
shared images (Debian Tycho-2 indexes), copied as numbers so no solve is needed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.engine.products import named_objects
from skysolve.engine.products.annotations import field_geometry, objects_in_field
from skysolve.engine.products.named_objects import load_catalogues
from skysolve.engine.results import Calibration
from skysolve.errors import BadInputError
from tests.gates import needs_binary

APOD2_SIZE = (800, 600)
APOD2_HEADER = {
    "CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP",
    "CRVAL1": 84.7075651116, "CRVAL2": -2.23589975842,
    "CRPIX1": 308.056650798, "CRPIX2": 323.427581787,
    "CD1_1": -1.14102841744e-05, "CD1_2": 0.00563266717525,
    "CD2_1": -0.00562953942637, "CD2_2": -2.8901813191e-05,
    "A_ORDER": 2, "A_0_2": -1.19965821422e-07, "A_1_1": -2.21908405469e-06,
    "A_2_0": 2.97601921832e-07,
    "B_ORDER": 2, "B_0_2": 1.26251113515e-06, "B_1_1": 1.69308173493e-06,
    "B_2_0": 4.55033751499e-07,
    "AP_ORDER": 2, "AP_0_0": -4.31657777624e-06, "AP_0_1": -2.78809884339e-07,
    "AP_0_2": 1.20120198903e-07, "AP_1_0": -3.77088850274e-08, "AP_1_1": 2.21793226404e-06,
    "AP_2_0": -2.97693314849e-07,
    "BP_ORDER": 2, "BP_0_0": -9.56145726695e-06, "BP_0_1": 2.99520259564e-07,
    "BP_0_2": -1.2624859726e-06, "BP_1_0": 1.71375813888e-07, "BP_1_1": -1.69274116719e-06,
    "BP_2_0": -4.54805575137e-07,
}  # fmt: skip

APOD4_SIZE = (719, 507)
APOD4_HEADER = {
    "CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP",
    "CRVAL1": 195.233661121, "CRVAL2": 60.3606064325,
    "CRPIX1": 333.82959493, "CRPIX2": 368.326039632,
    "CD1_1": 0.0195920507688, "CD1_2": 0.0428066924917,
    "CD2_1": -0.042961872041, "CD2_2": 0.0195563018109,
    "A_ORDER": 2, "A_0_2": -1.36850172083e-06, "A_1_1": -8.27372660625e-05,
    "A_2_0": 2.02337193861e-06,
    "B_ORDER": 2, "B_0_2": -8.32046023449e-05, "B_1_1": 2.95621841692e-06,
    "B_2_0": 1.8113362859e-07,
    "AP_ORDER": 2, "AP_0_0": -0.00592013565008, "AP_0_1": 4.83988643255e-05,
    "AP_0_2": 1.58942935755e-06, "AP_1_0": 0.000118600263491, "AP_1_1": 7.95954277142e-05,
    "AP_2_0": -1.93779213014e-06,
    "BP_ORDER": 2, "BP_0_0": 0.0430205989411, "BP_0_1": 8.23234961402e-07,
    "BP_0_2": 7.85649977857e-05, "BP_1_0": -8.80552267382e-06, "BP_1_1": -2.74070240586e-06,
    "BP_2_0": -1.7572290282e-07,
}  # fmt: skip


def wcs_from(cards: dict[str, object]) -> WCS:
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    return WCS(header)


def apod2_wcs() -> WCS:
    return wcs_from(APOD2_HEADER)


def apod4_wcs() -> WCS:
    return wcs_from(APOD4_HEADER)


def tan_wcs(ra: float, dec: float, arcsec_per_pixel: float, width: int, height: int) -> WCS:
    """North-up, east-left TAN WCS centred on the image."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(width + 1) / 2.0, (height + 1) / 2.0]
    s = arcsec_per_pixel / 3600.0
    wcs.wcs.cd = [[-s, 0.0], [0.0, s]]
    return wcs


def by_first_name(annotations: list) -> dict:
    return {a.names[0]: a for a in annotations}


def test_it_matches_the_reference_solutions() -> None:
    cal = Calibration.from_wcs(apod2_wcs(), *APOD2_SIZE)
    assert cal.ra == pytest.approx(84.57723, abs=1e-4)
    assert cal.dec == pytest.approx(-2.75567, abs=1e-4)
    cal4 = Calibration.from_wcs(apod4_wcs(), *APOD4_SIZE)
    # 169.70 is sqrt|det CD| at CRPIX; Calibration measures the scale at the
    # image centre, where this wide field's SIP terms make pixels 0.7% larger.
    assert cal4.pixscale == pytest.approx(169.70, rel=0.01)


def test_it_names_the_horsehead_region() -> None:
    names, annotations = objects_in_field(apod2_wcs(), *APOD2_SIZE)
    assert names[0] == "Part of the constellation Orion (Ori)"
    for expected in (
        "The star Alnitak (ζ Ori / 50 Ori)",
        "The star Alnilam (ε Ori / 46 Ori)",
        "IC 434",
        "Flame Nebula",
        "Orion B",
        "NGC 2024",
        "NGC 2023",
        "Horsehead Nebula",
        "NGC 1977",
    ):
        assert expected in names
    # M 42 is just south of this field.
    assert "M 42" not in names
    assert len(names) == len(set(names))
    found = by_first_name(annotations)
    ic434 = found["IC 434"]
    assert ic434.type == "ic"
    # OpenNGC calls IC 434 the Flame Nebula too; the Flame is NGC 2024 (COMMON_NAME_FIXES).
    assert ic434.names == ["IC 434", "Orion B"]
    assert found["NGC 2024"].names == ["NGC 2024", "Flame Nebula"]
    # plot-constellations 0.93 on the same WCS: (346.291, 420.359), radius 133.188.
    assert ic434.pixelx == pytest.approx(346.291, abs=0.05)
    assert ic434.pixely == pytest.approx(420.359, abs=0.05)
    assert ic434.radius == pytest.approx(133.2, abs=0.5)
    assert found["NGC 2024"].type == "ngc"
    alnitak = found["Alnitak"]
    assert alnitak.type == "bright"
    assert alnitak.radius == 0.0
    assert alnitak.vmag == pytest.approx(1.74, abs=0.05)
    assert (alnitak.pixelx, alnitak.pixely) == pytest.approx((255.515, 408.868), abs=0.01)
    orion = found["Orion"]
    assert orion.type == "constellation"
    assert 0.5 <= orion.pixelx <= 800.5 and 0.5 <= orion.pixely <= 600.5


def test_it_lists_only_objects_inside_the_image() -> None:
    _, annotations = objects_in_field(apod2_wcs(), *APOD2_SIZE)
    for a in annotations:
        inside = 0.5 <= a.pixelx <= 800.5 and 0.5 <= a.pixely <= 600.5
        assert inside or a.radius > 0, a


def test_it_names_the_big_dipper_with_sip() -> None:
    names, annotations = objects_in_field(apod4_wcs(), *APOD4_SIZE)
    assert names[0] == "Part of the constellation Ursa Major (UMa)"
    joined = "\n".join(names)
    for star in ("Dubhe", "Merak", "Phecda", "Megrez", "Alioth", "Mizar", "Alkaid", "Alcor"):
        assert f"The star {star}" in joined
    for messier in ("M 51", "M 101", "M 97", "M 108", "M 109"):
        assert messier in names
    # plot-constellations extrapolates the SIP inverse and puts κ Hya here; we do not.
    assert "Hya" not in joined


def test_it_keeps_wide_fields_readable() -> None:
    names, annotations = objects_in_field(apod4_wcs(), *APOD4_SIZE, max_stars=10, max_deep_sky=5)
    kinds = [a.type for a in annotations]
    assert kinds.count("bright") == 10
    assert sum(k in ("ngc", "ic", "m", "other") for k in kinds) == 5
    vmags = [a.vmag for a in annotations if a.type == "bright" and a.vmag is not None]
    assert vmags == sorted(vmags)
    # The default size cut leaves out small unnamed galaxies in a 33 degree field.
    all_names, _ = objects_in_field(apod4_wcs(), *APOD4_SIZE)
    assert len(all_names) < 100


def test_it_limits_stars_by_magnitude() -> None:
    _, annotations = objects_in_field(apod4_wcs(), *APOD4_SIZE, max_stars_vmag=2.5)
    stars = [a for a in annotations if a.type == "bright"]
    assert stars and all(a.vmag is not None and a.vmag <= 2.5 for a in stars)
    first = {a.names[0].split(" / ")[0] for a in stars}
    assert {"Alioth", "Dubhe", "Mizar"} <= first


def test_it_handles_the_ra_wrap() -> None:
    wcs = tan_wcs(0.5, 29.0, 60.0, 800, 600)
    names, annotations = objects_in_field(wcs, 800, 600)
    assert "The star Alpheratz / Sirrah (α And / 21 And / δ Peg)" in names
    assert any("Pegasus" in n for n in names) and any("Andromeda" in n for n in names)
    stars = [a for a in annotations if a.type == "bright"]
    # Stars on both sides of RA 0 are found.
    ras = wcs.all_pix2world([[a.pixelx, a.pixely] for a in stars], 1)[:, 0]
    assert (ras > 350).any() and (ras < 10).any()


def test_it_handles_the_north_celestial_pole() -> None:
    names, annotations = objects_in_field(tan_wcs(30.0, 88.0, 60.0, 800, 600), 800, 600)
    assert "Part of the constellation Ursa Minor (UMi)" in names
    assert "Part of the constellation Cepheus (Cep)" in names
    polaris = by_first_name(annotations)
    assert any(n.startswith("Polaris") for n in polaris)


def test_it_gives_only_the_constellation_for_an_empty_patch() -> None:
    # 20 arcmin of Leo Minor with no NGC/IC object or named star in it.
    names, annotations = objects_in_field(tan_wcs(151.0, 32.0, 2.0, 600, 400), 600, 400)
    assert names == ["Part of the constellation Leo Minor (LMi)"]
    assert [a.type for a in annotations] == ["constellation"]


def test_it_rejects_bad_input() -> None:
    with pytest.raises(BadInputError, match="celestial WCS"):
        objects_in_field(WCS(naxis=2), 100, 100)
    with pytest.raises(BadInputError, match="size must be positive"):
        objects_in_field(apod2_wcs(), 0, 600)
    with pytest.raises(BadInputError, match="must not be negative"):
        objects_in_field(apod2_wcs(), 800, 600, max_stars=-1)


def test_it_does_not_change_the_wcs() -> None:
    wcs = apod4_wcs()
    before = wcs.to_header(relax=True).tostring()
    objects_in_field(wcs, *APOD4_SIZE)
    assert wcs.to_header(relax=True).tostring() == before


def test_it_measures_the_field() -> None:
    geometry = field_geometry(apod2_wcs(), *APOD2_SIZE)
    assert geometry.radius_deg == pytest.approx(2.8156, abs=0.01)
    assert geometry.pixscale_deg * 3600 == pytest.approx(20.272, abs=0.001)


@needs_binary("plot-constellations")
def test_it_uses_plot_constellations_pixel_convention(tmp_path: Path) -> None:
    """Star positions agree with what nova's plot-constellations prints (1-based)."""
    header = apod2_wcs().to_header(relax=True)
    header["IMAGEW"], header["IMAGEH"] = APOD2_SIZE
    path = tmp_path / "apod2.wcs"
    fits.PrimaryHDU(header=header).writeto(path)
    done = subprocess.run(
        ["plot-constellations", "-w", str(path), "-L", "-B", "-J"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    stderr = done.stderr.decode("utf-8")
    theirs = json.loads(stderr[stderr.index("{") : stderr.rindex("}") + 1])["annotations"]
    _, annotations = objects_in_field(apod2_wcs(), *APOD2_SIZE)
    ours = {a.names[0]: a for a in annotations if a.type == "bright"}
    assert {t["names"][0] for t in theirs} == set(ours)
    for t in theirs:
        a = ours[t["names"][0]]
        assert np.hypot(a.pixelx - t["pixelx"], a.pixely - t["pixely"]) < 0.01


def test_it_loads_the_catalogues() -> None:
    n_deep_sky, n_stars = load_catalogues()
    assert n_deep_sky > 13000
    assert n_stars > 3000


def test_a_background_load_reads_each_catalogue_once_and_names_the_same_objects() -> None:
    """A solve starts the load in a thread; annotating before it is done waits
    for that read rather than reading the tables a second time."""
    wcs = apod2_wcs()
    before = objects_in_field(wcs, *APOD2_SIZE)
    named_objects._deep_sky_catalogue.cache_clear()  # as in a new process
    named_objects._star_catalogue.cache_clear()
    thread = named_objects.load_catalogues_in_background()
    named_objects.deep_sky_catalogue()  # while the thread reads it
    during = objects_in_field(wcs, *APOD2_SIZE)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert named_objects._deep_sky_catalogue.cache_info().misses == 1
    assert named_objects._star_catalogue.cache_info().misses == 1
    assert during == before


def test_the_deep_sky_cache_gives_back_the_table_it_was_built_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built from pyongc once, then read from an .npz (a JSON took 50-60 ms of
    the interpreter beside every solve's extraction): the same table either way,
    and a damaged cache file is rebuilt, not trusted."""
    monkeypatch.setenv("SKYSOLVE_CACHE_DIR", str(tmp_path))
    named_objects._deep_sky_catalogue.cache_clear()
    try:
        built = named_objects.deep_sky_catalogue()
        (cache,) = tmp_path.glob("openngc-*-v3.npz")
        named_objects._deep_sky_catalogue.cache_clear()
        read = named_objects.deep_sky_catalogue()
        assert read is not built
        for column in ("xyz", "ra", "dec", "radius_deg", "messier", "named", "mag"):
            assert np.array_equal(getattr(read, column), getattr(built, column)), column
            assert getattr(read, column).dtype == getattr(built, column).dtype, column
        assert read.names == built.names and read.types == built.types
        assert ["NGC 224", "M 31", "Andromeda Galaxy"] in read.names
        assert np.isinf(read.mag).any() and not np.isnan(read.mag).any()
        cache.write_bytes(cache.read_bytes()[:1000])
        named_objects._deep_sky_catalogue.cache_clear()
        assert named_objects.deep_sky_catalogue().names == built.names
        assert cache.stat().st_size > 100_000  # written again, whole
    finally:
        named_objects._deep_sky_catalogue.cache_clear()  # the next test reads the real cache
