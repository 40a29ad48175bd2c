"""Learned hints: what a right one gains and a wrong one costs, astrometry.net alone.

Synthetic star lists (no fast path, no pictures) solved blind and with a
learned hint, then with learned hints that are wrong (another centre; another
scale and centre).  Run: ``.venv/bin/python bench/learned_hints_bench.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

# testfields/ sits at the repository root, outside the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skysolve.engine.params import LearnedHint, SolveParameters
from skysolve.engine.pipeline import EngineConfig, solve
from testfields.synthetic import FieldSpec, make_field

CONFIG = EngineConfig(make_pictures=False, write_files=False)


def timed(sources: object, params: SolveParameters) -> tuple[bool, float]:
    started = time.monotonic()
    result = solve(sources, params, Path(tempfile.mkdtemp()), config=CONFIG)  # type: ignore[arg-type]
    return result.solved, time.monotonic() - started


def main() -> None:
    print("right hint (centre 0.5 deg off, scale +-15%):")
    for seed, (ra, dec, scale) in enumerate(
        [(120.0, 10.0, 25.0), (50.0, 30.0, 30.0), (200.0, -40.0, 12.0)]
    ):
        spec = FieldSpec(ra=ra, dec=dec, pixscale=scale, width=1024, height=768, seed=seed + 4)
        field = make_field(spec, render=False)
        hint = LearnedHint("bench", 1024, 768, scale * 0.85, scale * 1.15, ra + 0.5, dec + 0.3)
        blind = timed(field.sources, SolveParameters(timeout=120))
        learned = timed(field.sources, SolveParameters(timeout=120, learned_hints=(hint,)))
        print(
            f'  {ra:g},{dec:g} {scale:g}"/px  blind {blind[1]:.2f} s {blind[0]}'
            f"  learned {learned[1]:.2f} s {learned[0]}"
        )
    print('wrong hints, 800x600 at 30"/px, 60 s limit:')
    spec = FieldSpec(ra=50.0, dec=30.0, pixscale=30.0, width=800, height=600, seed=9)
    field = make_field(spec, render=False)
    for name, hint in [
        ("wrong centre", LearnedHint("bench", 800, 600, 25.5, 34.5, 250.0, -60.0)),
        ("wrong scale and centre", LearnedHint("bench", 800, 600, 76.5, 103.5, 250.0, -60.0)),
    ]:
        solved, seconds = timed(field.sources, SolveParameters(timeout=60, learned_hints=(hint,)))
        print(f"  {name}: solved {solved} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
