"""Two versions of skysolve and ``solve-field`` on the same corpus cases, in one run.

For a change that should make ``skysolve solve`` faster: each case of the
real-image corpus (the cases of ``real_bench.py --solved-only --shared``) is
solved by ``solve-field``, then by the skysolve source tree ``--before`` (e.g.
an earlier commit unpacked with ``git archive BASE skysolve | tar -x -C DIR``),
then by this checkout's, one after the other, with the same interpreter and
packages (this checkout's ``.venv``), the same options and limit.  A skysolve
answer counts as right within 5 px and 2 % of the case's reference.  Prints
each case and the median times and per-image ratios to ``solve-field``.

    git archive HEAD~2 skysolve | tar -x -C /tmp/base
    .venv/bin/python bench/before_after.py --before /tmp/base --modes hinted
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_bench  # noqa: E402
from engine_bench import timed  # noqa: E402

#: Runs ``skysolve`` from the source tree given, not from the editable install.
WRAPPER = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if 'editable' not in type(f).__module__]; sys.path.insert(0, {src!r}); "
    "sys.argv[0] = 'skysolve'; from skysolve.cli import console; console()"
)


def run(case: real_bench.Case, src: Path, limit: float) -> tuple[float, bool, str]:
    """Wall seconds, right or not, and which solver answered."""
    cmd = [str(REPO / ".venv/bin/python"), "-c", WRAPPER.format(src=str(src)), "solve"]
    cmd += [case.path, "--json", "--no-pictures", "--timeout", str(limit)]
    cmd += real_bench.hint_args(case.hints)
    if case.mode == "blind":
        cmd.append("--no-hints")
    seconds, _, out, _ = timed(cmd, limit)
    try:
        doc = json.loads(out.decode() or "{}")
    except ValueError:
        doc = {}
    cal, ref = doc.get("calibration"), case.reference
    right = False
    if doc.get("solved") and cal and ref is not None:
        distance = real_bench.separation_px(cal, ref, ref["pixscale"])
        right = distance <= 5.0 and abs(cal["pixscale"] / ref["pixscale"] - 1.0) < 0.02
    return seconds, right, str(doc.get("solver") or "-")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="source tree holding skysolve/")
    ap.add_argument("--after", type=Path, default=REPO, help="default: this checkout")
    ap.add_argument("--modes", nargs="+", choices=("blind", "hinted"), default=["hinted"])
    ap.add_argument("--only", nargs="*", default=[], metavar="WORD")
    ap.add_argument("--limit", type=float, default=60.0)
    args = ap.parse_args()
    cases = real_bench.load_cases(
        argparse.Namespace(
            only=args.only, solved_only=True, shared=True, modes=args.modes, max_cases=0
        )
    )
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {' '.join(load)}")
    rows = []
    for case in cases:
        theirs = real_bench.run_solve_field(case, args.limit)
        before = run(case, args.before, args.limit)
        after = run(case, args.after, args.limit)
        rows.append((theirs.seconds, before, after))
        print(
            f"{case.name:<36} solve-field {theirs.seconds:6.2f} {'ok' if theirs.solved else 'no'}"
            f" | before {before[0]:6.2f} {'right' if before[1] else 'NOT RIGHT'} {before[2]}"
            f" | after {after[0]:6.2f} {'right' if after[1] else 'NOT RIGHT'} {after[2]}"
            f" | ratio {before[0] / theirs.seconds:.2f} -> {after[0] / theirs.seconds:.2f}",
            flush=True,
        )
    if not rows:
        print("no cases")
        return 1
    med = statistics.median
    print(
        f"median s: solve-field {med(r[0] for r in rows):.2f}, before "
        f"{med(r[1][0] for r in rows):.2f}, after {med(r[2][0] for r in rows):.2f}; median "
        f"ratio before {med(r[1][0] / r[0] for r in rows):.2f}, after "
        f"{med(r[2][0] / r[0] for r in rows):.2f}; right before "
        f"{sum(r[1][1] for r in rows)}/{len(rows)}, after {sum(r[2][1] for r in rows)}/{len(rows)}"
    )
    with open("/proc/loadavg") as fh:
        print(f"load at the end {' '.join(fh.read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
