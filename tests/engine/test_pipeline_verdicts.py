"""What a solve does with the final fit's verdict (issue #17, "wrong stays
impossible"): an answer whose stars match the catalogue no better than chance
is reported as not solved, never returned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skysolve.engine import pipeline
from skysolve.engine.fitting.final import FinalFit
from skysolve.engine.params import SolveParameters
from skysolve.engine.pipeline import EngineConfig, solve
from skysolve.errors import NoMatchError
from testfields.synthetic import FieldSpec, make_field
from tests.gates import needs_binary

pytestmark = needs_binary("astrometry-engine")


def test_an_implausible_answer_is_reported_as_not_solved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = make_field(
        FieldSpec(ra=120.0, dec=10.0, pixscale=25.0, width=1024, height=768, seed=4),
        render=False,
    )
    real = pipeline.final_fit_of

    def chance_only(*args: Any, **kwargs: Any) -> FinalFit:
        # The refit runs as always; its verdict is what a wrong field gives.
        final = real(*args, **kwargs)
        reason = "only 10 of 300 sources lie near the 488 catalogue stars, as by chance"
        return FinalFit("implausible", None, refit=final.refit, reason=reason, stars=final.stars)

    monkeypatch.setattr(pipeline, "final_fit_of", chance_only)
    result = solve(f.sources, SolveParameters(), tmp_path / "out", config=EngineConfig())
    assert not result.solved and isinstance(result.failure, NoMatchError)
    assert "the solution was rejected: only 10 of 300" in result.failure.message
    assert result.calibration is None and result.quality is None
    assert not {"wcs", "new_fits", "corr"} & set(result.files)
    assert not (tmp_path / "out" / "wcs.fits").exists()
