"""The source lists of one solve: which list each solver is handed, and the final fit's."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skysolve.engine.extraction.supply import BRIGHTEST_FIRST, Supply
from skysolve.engine.inputs.images import load_image
from skysolve.engine.params import SolveParameters
from skysolve.engine.pipeline import FIT_SOURCES, EngineConfig, solve
from skysolve.engine.results import SourceList
from skysolve.engine.solving.astrometry import AstrometryNetSolver
from skysolve.engine.solving.base import SolverOutcome
from skysolve.engine.solving.fastpath.refit import REFIT_SOURCES
from skysolve.engine.solving.fastpath.tansip import TanSip
from skysolve.engine.solving.ladder import BRIGHTEST_LIST, Clock
from skysolve.engine.solving.search import Answer
from testfields.synthetic import FieldSpec, make_field, write_fits
from tests.engine.test_fitting import largest_offset
from tests.gates import needs_binary

NOISY = dict(fwhm=2.5, noise=8.0, sky=500.0, gradient=0.2, missing_fraction=0.1, hot_pixels=10)
#: 6 x 4.5 degrees: about 1100 stars, more than astrometry.net's short list.
SPEC = FieldSpec(
    ra=84.0, dec=-3.0, pixscale=27.0, width=800, height=600, seed=1, spurious=40,
    **NOISY,  # type: ignore[arg-type]
)  # fmt: skip


def dense_field(tmp_path: Path) -> Path:
    return write_fits(make_field(SPEC), tmp_path / "field.fits")


def image_of(tmp_path: Path) -> Any:
    return load_image(tmp_path / "field.fits")


def is_brightest_in_order(short: SourceList, full: SourceList) -> bool:
    flux = np.asarray(short.flux, dtype=float)
    cut = np.sort(np.asarray(full.flux, dtype=float))[::-1][len(short) - 1]
    return bool(np.all(np.diff(flux) <= 0) and flux.min() >= cut)


def test_astrometry_net_starts_on_seps_brightest_with_the_whole_list_behind(
    tmp_path: Path,
) -> None:
    image = load_image(dense_field(tmp_path))
    supply = Supply(image, None, SolveParameters(), clock=Clock(60.0, None), note=lambda s, m: None)

    full = supply.sources_for(None)
    first, fallback = supply.engine_lists()

    assert len(full) > BRIGHTEST_FIRST
    [(label, short)] = first
    assert label == BRIGHTEST_LIST and len(short) == BRIGHTEST_FIRST
    assert is_brightest_in_order(short, full)
    # The uniformized whole list: what astrometry.net was handed before.
    assert [name for name, _ in fallback] == ["sep"] and fallback[0][1] is full
    assert not is_brightest_in_order(full.head(BRIGHTEST_FIRST), full)


def test_a_star_list_goes_to_astrometry_net_whole() -> None:
    rng = np.random.default_rng(2)
    given = SourceList(
        rng.uniform(1, 800, 500), rng.uniform(1, 600, 500), np.linspace(900, 1, 500), 800, 600
    )
    supply = Supply(None, given, SolveParameters(), clock=Clock(60.0, None), note=lambda s, m: None)

    first, fallback = supply.engine_lists()

    assert [(label, len(sources)) for label, sources in first] == [("sep", 500)]
    assert fallback == []


@needs_binary("astrometry-engine")
def test_the_engine_gets_the_brightest_first_and_the_final_fit_the_fast_paths_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skysolve.engine import pipeline

    handed: list[SourceList] = []
    start = AstrometryNetSolver._start

    def record_start(self: AstrometryNetSolver, k: int, group: Any, sources: SourceList, *a: Any):
        handed.append(sources)
        return start(self, k, group, sources, *a)

    fitted: list[SourceList] = []
    fit = pipeline.final_fit_of

    def record_fit(outcome: Any, image: Any, sources: SourceList, *a: Any) -> Any:
        fitted.append(sources)
        return fit(outcome, image, sources, *a)

    monkeypatch.setattr(AstrometryNetSolver, "_start", record_start)
    monkeypatch.setattr(pipeline, "final_fit_of", record_fit)
    params = SolveParameters(scale_units="arcsecperpix", scale_lower=25, scale_upper=29)

    result = solve(
        dense_field(tmp_path), params, tmp_path / "out", config=EngineConfig(make_pictures=False)
    )

    assert result.solved, result.failure
    # The engine processes started on the short list in brightness order...
    first = handed[0]
    assert len(first) == BRIGHTEST_FIRST and np.all(np.diff(np.asarray(first.flux)) <= 0)
    assert f"solved from the {BRIGHTEST_LIST} source list" in result.log
    # ...the answer and its axy.fits have sep's whole list, and the final fit
    # the fast path's brightest, as a fast-path answer of the image would.
    [refitted] = fitted
    assert len(refitted) == REFIT_SOURCES < result.n_sources
    clock = Clock(60.0, None)
    bright = Supply(image_of(tmp_path), None, params, clock=clock, note=lambda s, m: None)
    assert np.array_equal(np.asarray(refitted.x), np.asarray(bright.sources_for(REFIT_SOURCES).x))


def _solver_answer(
    image: Any, view: str, start: TanSip, tmp_path: Path
) -> tuple[TanSip, SourceList]:
    """The final fit of one solver's answer: the fast path's (it found the brightest
    sources only) or astrometry.net's (the full extraction came first)."""
    from skysolve.engine import pipeline

    params = SolveParameters()
    supply = Supply(image, None, params, clock=Clock(60.0, None), note=lambda s, m: None)
    if view == "fast path":
        sources = supply.sources_for(REFIT_SOURCES)
    else:
        sources = supply.sources_for(None, companion=False)
    outcome = SolverOutcome(
        solved=True,
        solver=view,
        wcs_header=start.to_header(image.width, image.height),
        wcs_model=start,
    )
    answer = Answer(outcome, sources)
    config = EngineConfig(make_pictures=False, fastpath_db=None)
    final, fitted = pipeline.final_fit_stage(
        answer, image, supply, params, config, Clock(60.0, None), lambda s, m: None
    )
    assert final is not None and final.verdict == "refit", final and final.reason
    assert final.model is not None
    return final.model, fitted


def test_the_final_fit_is_the_same_whichever_solver_answered(tmp_path: Path) -> None:
    # The fast path answers from the brightest sources with its TAN model, a
    # little off; astrometry.net from the full extraction with its own start,
    # off the other way.  Before, each answer was refitted to its own list (the
    # fast path's 300 brightest, sep's whole list: faint, partly blended stars here)
    # and the two ended 0.025 px apart on this field (0.2 px on apod2.jpg);
    # now both fit the same sources to the same stars.
    spec = replace(SPEC, width=1024, height=768, pixscale=60.0, fwhm=3.5, seed=3)
    field = make_field(spec)
    image = load_image(write_fits(field, tmp_path / "field.fits"))
    wcs = field.wcs.wcs
    truth = TanSip(
        crval=(float(wcs.crval[0]), float(wcs.crval[1])),
        crpix=(float(wcs.crpix[0]), float(wcs.crpix[1])),
        cd=np.asarray(field.wcs.pixel_scale_matrix, float),
    )
    models, lists = [], []
    for view, turn in (("fast path", 0.02), ("astrometry.net", -0.03)):
        th = math.radians(turn)
        rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
        start = TanSip(crval=truth.crval, crpix=truth.crpix, cd=(1 + turn / 10) * rot @ truth.cd)
        model, fitted = _solver_answer(image, view, start, tmp_path)
        models.append(model)
        lists.append(fitted)
    assert len(lists[0]) == len(lists[1]) >= FIT_SOURCES
    assert np.array_equal(np.asarray(lists[0].x), np.asarray(lists[1].x))
    assert largest_offset(models[0], models[1], 1024, 768) < 0.01
