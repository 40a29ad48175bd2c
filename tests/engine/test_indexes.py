"""Index files (engine/indexes/): the choice rule, tiles, verified resumable fetches."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from skysolve.engine.indexes.choosing import select_indexes
from skysolve.engine.indexes.fetch import fetch, parse_mirrors, partial_path
from skysolve.engine.indexes.files import find_indexes
from skysolve.engine.indexes.healpix import healpixes_within
from skysolve.engine.indexes.installed import remove, verify_file
from skysolve.engine.indexes.series import (
    QUAD_ARCMIN,
    SERIES,
    field_of_camera,
    files_for,
    recommend,
)
from skysolve.errors import (
    ConfigurationError,
    IndexFetchError,
    InvalidParameterError,
    NoIndexError,
)
from tests.indexfixtures import (
    FIELD_DEC,
    FIELD_RA,
    TILE,
    Behaviour,
    SyntheticSky,
    mirror_handler,
)
from tests.localhttp import serve_http

#: Field widths from 5 arcmin to 60 degrees, and the scales astrometry.net's
#: rule (quads of 10% to 100% of the field) gives for each, worked out by hand
#: from the quad table (scale s: 2-2.8' ... 1400-2000'); required: quads of a
#: quarter to half the field.
RULE_TABLE = [
    # (field arcmin, recommended scales, required scales)
    (5.0, [0, 1, 2], [0]),
    (12.0, [0, 1, 2, 3, 4, 5], [1, 2, 3]),
    (30.0, [1, 2, 3, 4, 5, 6, 7, 8], [3, 4, 5]),
    (60.0, [3, 4, 5, 6, 7, 8, 9, 10], [5, 6, 7, 8]),
    (120.0, [5, 6, 7, 8, 9, 10, 11, 12], [7, 8, 9, 10]),
    (300.0, [7, 8, 9, 10, 11, 12, 13, 14], [10, 11, 12]),
    (600.0, [9, 10, 11, 12, 13, 14, 15, 16], [12, 13, 14]),
    (1200.0, [11, 12, 13, 14, 15, 16, 17, 18], [14, 15, 16]),
    (3600.0, [15, 16, 17, 18, 19], [17, 18, 19]),
]


@pytest.mark.parametrize(("fov_arcmin", "expected", "required"), RULE_TABLE)
def test_it_recommends_quads_of_10_to_100_percent_of_the_field(
    fov_arcmin: float, expected: list[int], required: list[int]
) -> None:
    rec = recommend(fov_arcmin / 60.0)
    scales = [item.scale for item in rec.items]
    assert scales == expected
    for scale, (qlo, qhi) in QUAD_ARCMIN.items():
        overlaps = qhi >= 0.1 * fov_arcmin and qlo <= fov_arcmin
        assert (scale in scales) == overlaps, scale
    assert [item.scale for item in rec.items if item.required] == required
    for item in rec.items:
        assert item.series == (5200 if item.scale < 7 else 4100)
        assert len(item.files) == (48 if item.series == 5200 else 1)
        assert item.bytes > 0


def test_it_counts_only_the_tiles_of_a_region_and_what_is_installed(
    synthetic_sky: SyntheticSky,
) -> None:
    installed = find_indexes([synthetic_sky.mirror])
    rec = recommend(0.2, center=(FIELD_RA, FIELD_DEC), radius=0.5, installed=installed)
    by_scale = {item.scale: item for item in rec.items}
    assert by_scale[3].files == (f"index-5203-{TILE:02d}.fits",)
    assert by_scale[3].installed == by_scale[3].files and not by_scale[3].missing
    assert by_scale[5].missing == (f"index-5205-{TILE:02d}.fits",)
    assert rec.commands() == [
        "skysolve index fetch --series 5200 --scales 5 --ra 157.6200 --dec 0.2700 --radius 0.5"
    ]
    # Near a tile corner a region touches several tiles.
    assert len(healpixes_within(135.0, 0.0, 3.0, 2)) > 1
    assert healpixes_within(FIELD_RA, FIELD_DEC, 0.5, 2) == (TILE,)


def test_it_turns_a_camera_into_a_field_size() -> None:
    w, h = field_of_camera(focal_mm=2000.0, pixel_um=3.76, pixels=(4000, 3000))
    assert w == pytest.approx(4000 * 206.264806 * 3.76 / 2000.0 / 3600.0)
    assert h / w == pytest.approx(0.75)
    with pytest.raises(InvalidParameterError, match="positive"):
        field_of_camera(focal_mm=0.0, pixel_um=3.76, pixels=(4000, 3000))


def test_it_names_files_as_astrometry_net_does() -> None:
    assert files_for(4100, [7, 19]) == ["index-4107.fits", "index-4119.fits"]
    assert files_for(5200, [3], center=(FIELD_RA, FIELD_DEC), radius=0.1) == ["index-5203-25.fits"]
    assert len(files_for(4200, [0])) == 48 and len(files_for(4200, [6])) == 12
    assert files_for(4200, [12]) == ["index-4212.fits"]
    with pytest.raises(InvalidParameterError, match="scales 0-6"):
        files_for(5200, [7])
    assert SERIES[5200].file_name(3, 7) == "index-5203-07.fits"


def test_it_reads_mirror_settings() -> None:
    mirrors = parse_mirrors("5200=http://10.0.0.5/5200/, 4100=https://m.example/4100/")
    assert mirrors[5200] == "http://10.0.0.5/5200/"
    assert mirrors[4200].startswith("http://data.astrometry.net/")
    with pytest.raises(ConfigurationError, match="SERIES=URL"):
        parse_mirrors("5300=http://x/")
    with pytest.raises(ConfigurationError, match="not an http"):
        parse_mirrors("5200=ftp://x/")


def test_it_verifies_whole_index_files_only(synthetic_sky: SyntheticSky, tmp_path: Path) -> None:
    good = synthetic_sky.mirror / "index-5203-25.fits"
    check = verify_file(good)
    assert check.ok and check.index is not None and check.index.index_id == 5203
    assert check.index.healpix == TILE and check.index.nside == 2
    cut = tmp_path / "index-5203-25.fits"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size - 2880])
    assert not verify_file(cut).ok and "bytes" in verify_file(cut).problem
    renamed = tmp_path / "index-5204-25.fits"
    shutil.copyfile(good, renamed)
    assert "name says index 5204" in verify_file(renamed).problem
    html = tmp_path / "index-5202-25.fits"
    html.write_text("<html></html>\n" * 400)
    assert "not a FITS file" in verify_file(html).problem


def test_it_fetches_verifies_and_installs_atomically(
    synthetic_sky: SyntheticSky, tmp_path: Path
) -> None:
    behaviour = Behaviour()
    dest = tmp_path / "indexes"
    with serve_http(mirror_handler(synthetic_sky.mirror, behaviour)) as url:
        report = fetch(list(synthetic_sky.files), mirror=url, dest=dest)
        assert not report.failed and len(report.installed) == len(synthetic_sky.files)
        again = fetch(list(synthetic_sky.files), mirror=url, dest=dest)
    assert again.skipped == list(synthetic_sky.files) and not again.installed
    # Installed elsewhere under another name (as Debian names the 4100 files): skipped too.
    elsewhere = fetch(["index-4119.fits"], mirror="http://127.0.0.1:9/", dest=tmp_path / "x",
                      installed=find_indexes([Path("/usr/share/astrometry")]))  # fmt: skip
    assert elsewhere.skipped == ["index-4119.fits"] and not elsewhere.failed
    for name in synthetic_sky.files:
        assert (dest / name).read_bytes() == (synthetic_sky.mirror / name).read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == sorted(synthetic_sky.files)


def test_it_resumes_an_interrupted_download_with_a_range_request(
    synthetic_sky: SyntheticSky, tmp_path: Path
) -> None:
    name = "index-5200-25.fits"
    size = (synthetic_sky.mirror / name).stat().st_size
    behaviour = Behaviour(cut_after={name: size // 3})
    dest = tmp_path / "indexes"
    with serve_http(mirror_handler(synthetic_sky.mirror, behaviour)) as url:
        first = fetch([name], mirror=url, dest=dest)
        assert "interrupted" in first.failed[name] and "resume" in first.failed[name]
        assert not (dest / name).exists(), "a half-written file was installed"
        assert find_indexes([dest], allow_empty=True) == ()
        kept = partial_path(dest, name).stat().st_size
        assert 0 < kept < size
        second = fetch([name], mirror=url, dest=dest)
    assert not second.failed and second.bytes == size - kept
    assert (name, f"bytes={kept}-") in behaviour.requests
    assert (dest / name).read_bytes() == (synthetic_sky.mirror / name).read_bytes()
    assert not partial_path(dest, name).exists()


def test_it_starts_again_when_the_mirror_ignores_ranges(
    synthetic_sky: SyntheticSky, tmp_path: Path
) -> None:
    name = "index-5201-25.fits"
    size = (synthetic_sky.mirror / name).stat().st_size
    behaviour = Behaviour(cut_after={name: size // 2}, no_ranges=True)
    dest = tmp_path / "indexes"
    with serve_http(mirror_handler(synthetic_sky.mirror, behaviour)) as url:
        assert fetch([name], mirror=url, dest=dest).failed
        second = fetch([name], mirror=url, dest=dest)
    assert not second.failed and second.bytes == size
    assert (dest / name).read_bytes() == (synthetic_sky.mirror / name).read_bytes()


@pytest.mark.parametrize("fault", ["truncated", "not_fits", "wrong_sum"])
def test_it_never_installs_a_bad_download(
    synthetic_sky: SyntheticSky, tmp_path: Path, fault: str
) -> None:
    name = "index-5202-25.fits"
    size = (synthetic_sky.mirror / name).stat().st_size
    behaviour = Behaviour()
    if fault == "truncated":
        behaviour.truncate_to[name] = size - 5000  # an honest length for a short file
    elif fault == "not_fits":
        behaviour.not_fits.add(name)
    else:
        behaviour.wrong_sum.add(name)
    dest = tmp_path / "indexes"
    with serve_http(mirror_handler(synthetic_sky.mirror, behaviour)) as url:
        report = fetch([name, "index-5203-25.fits"], mirror=url, dest=dest)
    expected = {"truncated": "FITS headers describe", "not_fits": "not a FITS file",
                "wrong_sum": "is not the mirror's"}[fault]  # fmt: skip
    assert expected in report.failed[name] and "not installed" in report.failed[name]
    assert not (dest / name).exists() and not partial_path(dest, name).exists()
    assert [p.name for p in report.installed] == ["index-5203-25.fits"]
    assert [ix.name for ix in find_indexes([dest])] == ["index-5203-25.fits"]


def test_it_refuses_names_that_are_not_index_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="not an astrometry.net index file name"):
        fetch(["../etc/passwd"], mirror="http://127.0.0.1:9/", dest=tmp_path)
    with pytest.raises(IndexFetchError, match="SHA256SUMS"):
        fetch(["index-5203-25.fits"], mirror="http://127.0.0.1:9/", dest=tmp_path)
    assert not list(tmp_path.iterdir())


def test_it_sees_new_files_without_a_restart_and_removes_them(
    synthetic_sky: SyntheticSky, tmp_path: Path
) -> None:
    dest = tmp_path / "indexes"
    dest.mkdir()
    assert find_indexes([dest], allow_empty=True) == ()
    shutil.copyfile(synthetic_sky.mirror / "index-5203-25.fits", dest / "index-5203-25.fits")
    assert [ix.name for ix in find_indexes([dest])] == ["index-5203-25.fits"]
    removed = remove(["index-5203-25.fits"], [dest])
    assert removed == [dest / "index-5203-25.fits"] and not os.listdir(dest)
    with pytest.raises(InvalidParameterError, match="not installed"):
        remove(["index-5203-25.fits"], [dest])


def test_it_chooses_tiles_by_position_and_names_the_fix(synthetic_sky: SyntheticSky) -> None:
    indexes = find_indexes([synthetic_sky.mirror, Path("/usr/share/astrometry")])
    common: dict[str, Any] = dict(width=800.0, height=600.0, scale_low=0.8, scale_high=1.0)
    near = select_indexes(indexes, center=(FIELD_RA, FIELD_DEC), radius=1.0, **common)
    assert {ix.name for ix in near} >= {"index-5202-25.fits", "index-5203-25.fits"}
    assert all(ix.series == 5200 for ix in near)
    with pytest.raises(NoIndexError) as caught:
        select_indexes(indexes, center=(300.0, -60.0), radius=1.0, **common)
    message = caught.value.message
    assert "a field 10.7' to 13.3' wide" in message
    assert "cover fields of about 2' to" in message
    assert "skysolve index fetch --series 5200 --scales 0,1,2,3 --ra 300.0000 --dec -60.0000" in (
        message
    )
    without_tiles = [ix for ix in indexes if ix.series == 4100]
    with pytest.raises(NoIndexError, match="skysolve index fetch --series 5200 --scales 0,1,2,3$"):
        select_indexes(without_tiles, **common)


def test_it_says_which_fields_the_indexes_cover_when_a_blind_solve_fails(
    synthetic_sky: SyntheticSky, tmp_path: Path
) -> None:
    import numpy as np

    from skysolve.engine.params import SolveParameters
    from skysolve.engine.pipeline import EngineConfig, solve
    from skysolve.engine.results import SourceList
    from skysolve.errors import SolveTimeoutError

    wide_only = tmp_path / "wide"
    wide_only.mkdir()
    os.symlink("/usr/share/astrometry/index-tycho2-19.littleendian.fits",
               wide_only / "index-tycho2-19.littleendian.fits")  # fmt: skip
    rng = np.random.default_rng(1)
    stars = SourceList(x=rng.uniform(1, 800, 12), y=rng.uniform(1, 600, 12),
                       flux=rng.uniform(1, 10, 12), width=800, height=600)  # fmt: skip
    config = EngineConfig(index_dirs=(wide_only,), make_pictures=False, write_files=False)
    result = solve(stars, SolveParameters(timeout=60), tmp_path / "a", config=config)
    assert not result.solved and result.failure is not None
    assert result.failure.message == (
        "no solution found (blind): the installed index files cover fields of about 23.3 deg to "
        "180 deg (quads of 23.3 deg to 33.3 deg); a field outside that range needs other index "
        "files (`skysolve index recommend --fov-deg WIDTH`)"
    )
    hinted = SolveParameters(timeout=60, scale_units="degwidth", scale_lower=30, scale_upper=40)
    assert solve(stars, hinted, tmp_path / "c", config=config).failure.message == (  # type: ignore[union-attr]
        "no solution found"
    )
    # The 0.2 degree field, blind, against all of Debian's files runs out of time.
    debian = EngineConfig(make_pictures=False, write_files=False)
    with pytest.raises(SolveTimeoutError, match="cover fields of about 22' to 180 deg"):
        solve(synthetic_sky.field, SolveParameters(timeout=2), tmp_path / "b", config=debian)


def test_it_refuses_a_second_fetch_of_a_file_being_fetched(
    synthetic_sky: SyntheticSky, tmp_path: Path
) -> None:
    import fcntl

    name = "index-5204-25.fits"
    dest = tmp_path / "indexes"
    dest.mkdir()
    with partial_path(dest, name).open("ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with serve_http(mirror_handler(synthetic_sky.mirror, Behaviour())) as url:
            report = fetch([name], mirror=url, dest=dest)
    assert "another fetch of this file is running" in report.failed[name]
    assert not (dest / name).exists()


def test_it_builds_one_file_per_healpix_tile_a_catalogue_touches(tmp_path: Path) -> None:
    import numpy as np
    from astropy.io import fits

    from skysolve.engine.indexes.build import build

    # 4000 stars within 0.8 degrees of RA 157.5, Dec 19.47: a corner of tile 25.
    rng = np.random.default_rng(5)
    ra = 157.5 + rng.uniform(-0.8, 0.8, 4000)
    dec = 19.47 + rng.uniform(-0.8, 0.8, 4000)
    cols = [fits.Column(name="RA_ICRS", format="D", array=ra),
            fits.Column(name="DE_ICRS", format="D", array=dec),
            fits.Column(name="Gmag", format="E", array=rng.uniform(8, 14, 4000))]  # fmt: skip
    catalogue = tmp_path / "edge.fits"
    fits.BinTableHDU.from_columns(cols).writeto(catalogue)
    built = build(catalogue, tmp_path / "out", scales=[6], index_id=9200, nside=2)
    tiles = sorted(int(p.name[11:13]) for p in built)
    expected = sorted({healpixes_within(float(a), float(d), 0.0, 2)[0] for a, d in
                       zip(ra[::50], dec[::50], strict=True)})  # fmt: skip
    assert len(expected) > 1 and tiles == expected
    for path in built:
        check = verify_file(path)
        assert check.ok and check.index is not None and check.index.index_id == 9206
