"""Archive benchmark: how fast the engine takes images out of tar and zip files,
and how soon it stops bombs.

Builds, in a temporary directory, archives of ``--images`` synthetic 16-bit FITS
images (``--size`` pixels square, star-field-like noise) in each format, then
times :func:`skysolve.engine.inputs.archives.expand_archive` on each (best of
``--repeat``) and prints a Markdown table: archive size, uncompressed size, time,
throughput and peak traced memory.  Then the time and peak memory to refuse a
3 GB tar.gz bomb and a 2.5 GB zip bomb with the default caps.

    .venv/bin/python bench/archive_bench.py                    # 100 images of 1024x1024
    .venv/bin/python bench/archive_bench.py --images 5 --size 256   # a smoke test
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from astropy.io import fits

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from skysolve.engine.inputs.archives import expand_archive  # noqa: E402
from skysolve.errors import ImageTooLargeError  # noqa: E402
from tests.hardening.files import Entry, tar_bomb_gz, tar_bytes, zip_bomb, zip_bytes  # noqa: E402


def _image(size: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.normal(1000, 20, (size, size)).clip(0, 65535).astype(np.uint16)
    out = io.BytesIO()
    fits.PrimaryHDU(pixels).writeto(out)
    return out.getvalue()


def _timed(path: Path, work: Path, repeat: int) -> tuple[float, int, int]:
    """Best time, peak traced memory and bytes taken."""
    best = float("inf")
    peak = taken = 0
    for _ in range(repeat):
        shutil.rmtree(work, ignore_errors=True)
        tracemalloc.start()
        t0 = time.perf_counter()
        expanded = expand_archive(path, work)
        best = min(best, time.perf_counter() - t0)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        taken = sum(m.size for m in expanded.members)
    return best, peak, taken


def _refusal(path: Path, work: Path) -> tuple[float, int]:
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        expand_archive(path, work)
    except ImageTooLargeError:
        pass
    else:
        raise SystemExit(f"{path.name} was not refused")
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    mb = 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="skysolve-archive-bench-") as tmp:
        root = Path(tmp)
        images = [(f"light_{i:04d}.fits", _image(args.size, i)) for i in range(args.images)]
        archives = {
            "tar": tar_bytes([Entry(n, d) for n, d in images]),
            "tar.gz": tar_bytes([Entry(n, d) for n, d in images], compression="gz"),
            "tar.xz": tar_bytes([Entry(n, d) for n, d in images], compression="xz"),
            "zip": zip_bytes(images),
        }
        print(f"{args.images} FITS images of {args.size}x{args.size} (16 bit)\n")
        print("| format | archive MB | images MB | time s | MB/s | peak traced MB |")
        print("|---|---|---|---|---|---|")
        for kind, data in archives.items():
            path = root / f"images.{kind}"
            path.write_bytes(data)
            elapsed, peak, taken = _timed(path, root / "out", args.repeat)
            print(
                f"| {kind} | {len(data) / mb:.1f} | {taken / mb:.1f} | {elapsed:.2f} "
                f"| {taken / mb / elapsed:.0f} | {peak / mb:.1f} |"
            )
        print("\n| bomb | archive MB | inside GB | refused after s | peak traced MB |")
        print("|---|---|---|---|---|")
        for name, data, inside in [
            ("tar.gz, one 3 GB member", tar_bomb_gz(3 * 1024**3), 3.0),
            ("zip, 40 members of 64 MB", zip_bomb(40), 2.5),
        ]:
            path = root / "bomb"
            path.write_bytes(data)
            elapsed, peak = _refusal(path, root / "bomb-out")
            print(f"| {name} | {len(data) / mb:.1f} | {inside} | {elapsed:.3f} | {peak / mb:.1f} |")


if __name__ == "__main__":
    main()
