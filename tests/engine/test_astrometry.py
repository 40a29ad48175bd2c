"""astrometry-engine as a solver: parameters, parallel processes, limits."""

import math
import threading
from pathlib import Path

import pytest
from astropy.io import fits

from skysolve.engine.indexes.choosing import select_indexes, split_for_processes
from skysolve.engine.indexes.files import find_indexes
from skysolve.engine.results import Calibration, wcs_from_header
from skysolve.engine.solving.astrometry import AstrometryConfig, AstrometryNetSolver, write_axy
from skysolve.engine.solving.base import SolveConstraints
from skysolve.errors import (
    ConfigurationError,
    NoIndexError,
    SolveCancelledError,
    SolverFailedError,
    SolveTimeoutError,
)
from testfields.synthetic import FieldSpec, make_field
from tests.gates import needs_binary

pytestmark = needs_binary("astrometry-engine")


#: The Tycho-2 indexes whose quads fit a field narrower than 4 degrees.
NARROW = ("tycho2-07", "tycho2-08", "tycho2-09")


def field(parity: int = 1, **kw: float):
    spec = dict(ra=200.0, dec=-30.0, pixscale=30.0, width=800, height=600, rotation=20.0)
    spec.update(kw)
    return make_field(FieldSpec(parity=parity, seed=2, **spec), render=False)  # type: ignore[arg-type]


def test_it_writes_every_parameter_into_the_axy(tmp_path: Path) -> None:
    f = field()
    c = SolveConstraints(
        scale_low=1.5,
        scale_high=2.5,
        center_ra=0.0,
        center_dec=0.0,
        radius=3.0,
        parity=1,
        tweak_order=0,
        crpix_center=True,
        positional_error=2.0,
    )
    outputs = {"wcs": tmp_path / "x.wcs", "solved": tmp_path / "x.solved"}
    path = write_axy(
        tmp_path / "f.axy",
        f.sources,
        c,
        outputs=outputs,
        cpu_limit=9.2,
        depths=(10, 20),
        odds_to_solve=1e9,
    )
    with fits.open(path) as hdul:
        h = hdul[0].header
        assert (h["IMAGEW"], h["IMAGEH"]) == (800, 600)
        assert (h["ANAPPL1"], h["ANAPPU1"]) == (1.5, 2.5)
        assert (h["ANERA"], h["ANEDEC"], h["ANERAD"]) == (0.0, 0.0, 3.0)
        assert h["ANPARITY"] == "NEG" and h["ANTWEAK"] is False and h["ANCRPIXC"] is True
        assert h["ANPOSERR"] == 2.0 and h["ANCLIM"] == 10
        assert (h["ANDPL1"], h["ANDPU1"], h["ANDPL2"], h["ANDPU2"]) == (1, 10, 11, 20)
        assert h["ANWCS"] == str(tmp_path / "x.wcs")
        assert len(hdul[1].data) == len(f.sources)


def test_it_chooses_only_indexes_that_fit_the_scale() -> None:
    indexes = find_indexes()
    wide = select_indexes(indexes, width=800, height=600, scale_low=100, scale_high=120)
    narrow = select_indexes(indexes, width=800, height=600, scale_low=5, scale_high=6)
    assert all(ix.scale_upper >= 0.1 * 600 * 100 for ix in wide)
    assert max(ix.scale_lower for ix in narrow) <= 1000 * 6
    assert "index-tycho2-19.littleendian.fits" not in {ix.name for ix in narrow}
    with pytest.raises(NoIndexError, match="installed index files cover fields"):
        select_indexes(indexes, width=800, height=600, scale_low=0.01, scale_high=0.02)


def test_it_deals_indexes_out_alternately() -> None:
    indexes = find_indexes()
    groups = split_for_processes(indexes, 2)
    assert len(groups) == 2
    assert sorted(ix.name for g in groups for ix in g) == sorted(ix.name for ix in indexes)
    assert groups[0][0].scale_lower < groups[1][0].scale_lower < groups[0][1].scale_lower


def test_a_field_likely_narrower_gives_its_indexes_a_process_of_their_own() -> None:
    """After the fast path's blind miss (fields of 4 degrees up): quads up to 80'."""
    indexes = find_indexes()
    names = [[ix.name[6:15] for ix in g] for g in split_for_processes(indexes, 2, narrower_than=4)]
    assert names[0] == ["tycho2-07", "tycho2-08", "tycho2-09"]
    # The wider ones keep the two processes they would have had.
    assert names[1] == [f"tycho2-{n:02d}" for n in range(10, 20, 2)]
    assert names[2] == [f"tycho2-{n:02d}" for n in range(11, 20, 2)]
    three = split_for_processes(indexes, 3, narrower_than=4)
    assert [ix.name[6:15] for ix in three[0]] == names[0]
    assert len(three) == 4
    assert three[1][0].scale_lower < three[2][0].scale_lower < three[3][0].scale_lower
    # One process, or no index that narrow, or none wider: as without.
    assert split_for_processes(indexes, 1, narrower_than=4) == split_for_processes(indexes, 1)
    assert split_for_processes(indexes, 2, narrower_than=0.1) == split_for_processes(indexes, 2)
    assert split_for_processes(indexes, 2, narrower_than=1e3) == split_for_processes(indexes, 2)


def test_a_likely_narrow_field_is_searched_by_the_narrow_indexes_alone_first(
    tmp_path: Path,
) -> None:
    """After a fast-path blind miss: a 2-degree field is found by the narrow
    indexes' process while the others have not started."""
    f = field(pixscale=10.0, width=700, height=700)
    solver = AstrometryNetSolver(AstrometryConfig(processes=2, narrow_head_start=math.inf))
    out = solver.solve_lists(
        [("stars", f.sources)], SolveConstraints(narrower_than=4.0), tmp_path, timeout=60
    )
    assert out.solved and out.index is not None and out.index[6:15] in NARROW
    assert out.log.count("== astrometry-engine process") == 1
    assert not (tmp_path / "engine-1").exists()


def test_the_other_indexes_join_after_the_narrow_head_start(tmp_path: Path) -> None:
    """A 6.7-degree field the narrow indexes find only slowly (index 09, 2 s):
    the wide indexes join when the head start is over and answer first."""
    f = field()
    for head_start, narrow_answers in ((math.inf, True), (0.25, False)):
        solver = AstrometryNetSolver(AstrometryConfig(processes=2, narrow_head_start=head_start))
        out = solver.solve_lists(
            [("stars", f.sources)],
            SolveConstraints(narrower_than=4.0),
            tmp_path / str(head_start),
            timeout=60,
        )
        assert out.solved and out.index is not None
        assert (out.index[6:15] in NARROW) == narrow_answers
        assert out.log.count("== astrometry-engine process") == (1 if narrow_answers else 3)


def test_the_other_indexes_join_when_the_narrow_process_ends(tmp_path: Path) -> None:
    """A 13-degree field's 15 brightest stars, which the narrow indexes search
    to the end in a fraction of a second without an answer: the rest start then."""
    stars = field(pixscale=60.0).sources.sorted_by_flux().head(15)
    solver = AstrometryNetSolver(AstrometryConfig(processes=2, narrow_head_start=math.inf))
    out = solver.solve_lists(
        [("stars", stars)], SolveConstraints(narrower_than=4.0), tmp_path, timeout=60
    )
    assert out.solved and out.index is not None and out.index[6:15] not in NARROW
    assert out.log.count("== astrometry-engine process") == 3


def test_a_narrow_process_that_ends_without_a_wcs_lets_the_others_start(tmp_path: Path) -> None:
    """An engine that flags the field solved but writes no WCS (a failure while
    writing its files) is no answer: the held indexes still search."""
    engine = tmp_path / "engine.sh"
    engine.write_text(
        '#!/bin/sh\nif grep -q tycho2-07 "$2"; then touch field.solved; exit 0; fi\n'
        'exec astrometry-engine "$@"\n'
    )
    engine.chmod(0o755)
    config = AstrometryConfig(binary=str(engine), processes=2, narrow_head_start=math.inf)
    out = AstrometryNetSolver(config).solve_lists(
        [("stars", field().sources)],
        SolveConstraints(narrower_than=4.0),
        tmp_path / "work",
        timeout=60,
    )
    assert out.solved and out.index is not None and out.index[6:15] not in NARROW


@pytest.mark.parametrize("parity", [1, -1])
def test_it_solves_a_star_list_of_either_parity(tmp_path: Path, parity: int) -> None:
    f = field(parity=parity)
    out = AstrometryNetSolver().solve(
        f.sources, SolveConstraints(scale_low=27, scale_high=33), tmp_path, timeout=60
    )
    assert out.solved and out.index and out.index.startswith("index-tycho2-")
    assert (out.catalogue, out.epoch) == ("tycho2", 2000.0)
    cal = Calibration.from_wcs(wcs_from_header(out.wcs_header, 800, 600), 800, 600)
    assert cal.parity == parity
    assert cal.pixscale == pytest.approx(30.0, rel=0.01)
    assert abs(cal.orientation - 20.0) < 0.5
    assert {"wcs", "corr", "rdls", "match", "axy"} <= set(out.files)


def test_it_maps_nova_parity_to_astrometry_net_parity(tmp_path: Path) -> None:
    """nova's parity 1 ("neg") finds det(CD) > 0 solutions, i.e. calibration parity +1."""
    f = field(parity=1)
    out = AstrometryNetSolver().solve(
        f.sources, SolveConstraints(scale_low=27, scale_high=33, parity=1), tmp_path, timeout=60
    )
    assert out.solved
    with pytest.raises(SolveTimeoutError):
        AstrometryNetSolver().solve(
            f.sources,
            SolveConstraints(scale_low=27, scale_high=33, parity=0),
            tmp_path / "other",
            timeout=2,
        )


def test_it_stops_at_the_time_limit(tmp_path: Path) -> None:
    f = field(dec=60.0)
    # Scrambled positions cannot solve; the engine would search for a long time.
    scrambled = f.sources.take(slice(None))
    object.__setattr__(scrambled, "x", scrambled.x[::-1].copy())
    with pytest.raises(SolveTimeoutError, match="time limit"):
        AstrometryNetSolver().solve(scrambled, SolveConstraints(), tmp_path, timeout=1.0)


def test_it_can_be_cancelled(tmp_path: Path) -> None:
    f = field()
    scrambled = f.sources.take(slice(None))
    object.__setattr__(scrambled, "x", scrambled.x[::-1].copy())
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(SolveCancelledError):
        AstrometryNetSolver().solve(
            scrambled, SolveConstraints(), tmp_path, timeout=60, cancel=cancel
        )


def test_it_reports_a_missing_binary(tmp_path: Path) -> None:
    solver = AstrometryNetSolver(AstrometryConfig(binary="/nonexistent/astrometry-engine"))
    with pytest.raises(ConfigurationError, match="astrometry.net"):
        solver.solve(field().sources, SolveConstraints(), tmp_path, timeout=5)


def test_it_reports_a_crashing_solver_as_retryable(tmp_path: Path) -> None:
    solver = AstrometryNetSolver(AstrometryConfig(binary="false"))
    with pytest.raises(SolverFailedError) as info:
        solver.solve(field().sources, SolveConstraints(), tmp_path, timeout=5)
    assert info.value.retryable


def test_it_reports_missing_index_files(tmp_path: Path) -> None:
    solver = AstrometryNetSolver(AstrometryConfig(index_dirs=(tmp_path,)))
    with pytest.raises(ConfigurationError, match="astrometry-data-tycho2"):
        solver.solve(field().sources, SolveConstraints(), tmp_path, timeout=5)


def test_it_searches_several_source_lists_at_once_and_says_which_solved(tmp_path: Path) -> None:
    import numpy as np

    from skysolve.engine.results import SourceList

    f = field()
    rng = np.random.default_rng(3)
    junk = SourceList(
        x=rng.uniform(1, 800, 300),
        y=rng.uniform(1, 600, 300),
        flux=np.linspace(1000, 1, 300),
        width=800,
        height=600,
    )
    solver = AstrometryNetSolver(AstrometryConfig(processes=2))
    out = solver.solve_lists(
        [("junk", junk), ("stars", f.sources)],
        SolveConstraints(scale_low=27.0, scale_high=33.0),
        tmp_path,
        timeout=60,
    )
    assert out.solved and out.source_list == "stars" and out.sources is f.sources
    assert "stars list" in out.log and "junk list" in out.log
    assert out.wcs_header is not None
    cal = Calibration.from_wcs(wcs_from_header(out.wcs_header, 800, 600), 800, 600)
    assert cal.pixscale == pytest.approx(30.0, rel=0.01)


def test_a_process_that_finds_nothing_in_its_list_goes_on_with_the_fallback(
    tmp_path: Path,
) -> None:
    import numpy as np

    from skysolve.engine.results import SourceList

    f = field()
    rng = np.random.default_rng(3)
    junk = SourceList(
        x=rng.uniform(1, 800, 30),
        y=rng.uniform(1, 600, 30),
        flux=np.linspace(1000, 1, 30),
        width=800,
        height=600,
    )
    # Never at a time: only a process that has searched the junk to the end goes on.
    solver = AstrometryNetSolver(AstrometryConfig(processes=2, fallback_after=math.inf))
    out = solver.solve_lists(
        [("junk", junk)],
        SolveConstraints(scale_low=27.0, scale_high=33.0),
        tmp_path,
        timeout=60,
        fallback=[("stars", f.sources)],
    )
    assert out.solved and out.source_list == "stars" and out.sources is f.sources
    # Two processes on the junk, then each one's indexes again with the stars.
    assert out.log.count("(junk list") == 2 and out.log.count("(stars list") >= 1


def test_the_fallback_joins_a_search_that_has_not_ended_after_its_time(tmp_path: Path) -> None:
    import numpy as np

    from skysolve.engine.results import SourceList

    f = field()
    rng = np.random.default_rng(4)
    # Blind, 150 sources with no answer in them: the engine's search runs past 40 s.
    junk = SourceList(
        x=rng.uniform(1, 800, 150),
        y=rng.uniform(1, 600, 150),
        flux=np.linspace(1000, 1, 150),
        width=800,
        height=600,
    )
    solver = AstrometryNetSolver(AstrometryConfig(processes=2, fallback_after=1.0))
    out = solver.solve_lists(
        [("junk", junk)], SolveConstraints(), tmp_path, timeout=30, fallback=[("stars", f.sources)]
    )
    assert out.solved and out.source_list == "stars"
    assert out.log.count("(junk list") == 2 and out.log.count("(stars list") == 2
