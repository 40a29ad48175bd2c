"""Index-manager benchmark: a narrow field once its index files are installed,
and fetch throughput against a local mirror.

1. Solve: the synthetic 0.2 x 0.15 degree field of the tests (its own seeded
   catalogue, built into 5200-style tiles ``index-5200-25.fits`` ...
   ``index-5204-25.fits`` with build-astrometry-index) by ``skysolve solve``
   and by ``solve-field`` with exactly those index files (a config naming only
   their directory), the same hints and limit, alternating, ``--repeat`` times:
   hinted (scale 0.8-1.0 arcsec/pixel and a position within 1 degree) and blind.
2. Fetch: ``skysolve index fetch`` of one multi-GB index file (a real small
   index file with a large sparse extension appended, so it verifies as one)
   from a mirror server in another process, against ``curl`` fetching the same
   URL to the same disk; wall time, MB/s and peak RSS (GNU time) of each.

The fetch runs twice, at a tenth of ``--fetch-gb`` and at ``--fetch-gb``: a
download held in memory would show in the second peak.

Run: ``.venv/bin/python bench/index_bench.py [--repeat 5] [--fetch-gb 3]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.indexfixtures import (  # noqa: E402
    FIELD_DEC,
    FIELD_RA,
    Behaviour,
    build_sky,
    mirror_handler,
)

SKYSOLVE = str(REPO / ".venv/bin/skysolve")
HINTS = [
    "--scale-units", "arcsecperpix", "--scale-low", "0.8", "--scale-high", "1.0",
    "--ra", f"{FIELD_RA + 0.3:.4f}", "--dec", f"{FIELD_DEC - 0.2:.4f}", "--radius", "1",
]  # fmt: skip


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, bytes]:
    """Wall seconds, peak RSS (MiB, the largest process: GNU time), status, stdout."""
    with tempfile.NamedTemporaryFile(prefix="bench-time-") as stats:
        t0 = time.monotonic()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", stats.name, *cmd],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, timeout=600,
        )  # fmt: skip
        seconds = time.monotonic() - t0
        peak = int(Path(stats.name).read_text().split()[-1]) / 1024.0
    return seconds, peak, done.returncode, done.stdout


def solve_bench(sky_dir: Path, field: Path, repeat: int, limit: int) -> None:
    env = dict(os.environ, SKYSOLVE_INDEX_DIRS=str(sky_dir))
    cfg = sky_dir.parent / "solve-field.cfg"
    cfg.write_text(f"inparallel\ncpulimit {limit}\nadd_path {sky_dir}\nautoindex\n")
    print(f"index files: {sorted(p.name for p in sky_dir.glob('index-*.fits'))}")
    print("| mode | skysolve solved | solve-field solved | skysolve median s | "
          "solve-field median s | skysolve min s | solve-field min s | median ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for mode, hints in (("hinted", HINTS), ("blind", [])):
        ours: list[float] = []
        theirs: list[float] = []
        ok_ours = ok_theirs = 0
        for _ in range(repeat):
            cmd = [SKYSOLVE, "solve", str(field), "--json", "--no-hints", "--timeout", str(limit)]
            seconds, _, status, out = timed(cmd + hints, env)
            doc = json.loads(out or b"{}")
            ok_ours += bool(doc.get("solved"))
            ours.append(seconds)
            with tempfile.TemporaryDirectory(prefix="bench-sf-") as tmp:
                cmd = ["solve-field", "--config", str(cfg), "--overwrite", "--no-plots",
                       "--dir", tmp, "--new-fits", "none", "--cpulimit", str(limit),
                       str(field)]  # fmt: skip
                seconds, _, status, _ = timed(cmd + hints)
                ok_theirs += any(Path(tmp).glob("*.solved"))
                theirs.append(seconds)
        m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
        print(f"| {mode} | {ok_ours}/{repeat} | {ok_theirs}/{repeat} | {m_ours:.2f} | "
              f"{m_theirs:.2f} | {min(ours):.2f} | {min(theirs):.2f} | "
              f"{m_ours / m_theirs:.2f} |")  # fmt: skip


def make_big_index(small: Path, out: Path, gigabytes: float) -> int:
    """``small`` with an extra IMAGE extension of ``gigabytes`` zeros, written sparse."""
    shutil.copyfile(small, out)
    data = int(gigabytes * 1e9) // 2880 * 2880
    cards = [
        "XTENSION= 'IMAGE   '", "BITPIX  =                    8", "NAXIS   =                    1",
        f"NAXIS1  = {data:20d}", "PCOUNT  =                    0", "GCOUNT  =                    1",
        "END",
    ]  # fmt: skip
    header = "".join(c.ljust(80) for c in cards).ljust(2880).encode("ascii")
    with out.open("ab") as f:
        f.write(header)
        f.truncate(f.tell() + data)  # a hole: no disk used, reads as zeros
    return out.stat().st_size


def _serve(root: str, port_queue: multiprocessing.Queue[int]) -> None:
    from tests.localhttp import QuietServer

    httpd = QuietServer(("127.0.0.1", 0), mirror_handler(Path(root), Behaviour()))
    port_queue.put(int(httpd.server_address[1]))
    httpd.serve_forever()


def fetch_bench(small: Path, gigabytes: float, work: Path) -> None:
    # The same file at a tenth of the size first: peak memory must not grow with it.
    for gb in (gigabytes / 10.0, gigabytes):
        fetch_one(small, gb, work)


def fetch_one(small: Path, gigabytes: float, work: Path) -> None:
    mirror = work / "big-mirror"
    shutil.rmtree(mirror, ignore_errors=True)
    mirror.mkdir()
    name = small.name
    size = make_big_index(small, mirror / name, gigabytes)
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(str(mirror), ports), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}/"
    try:
        print(f"\nfetch of one {size / 1e9:.2f} GB index file from a local mirror process")
        print("| client | seconds | MB/s | peak RSS MiB | installed |")
        print("|---|---|---|---|---|")
        for label in ("curl", "skysolve index fetch"):
            dest = work / "dest"
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            if label == "curl":
                cmd = ["curl", "-s", "-f", "-o", str(dest / name), url + name]
            else:
                series, scale = int(name[6:10]) // 100 * 100, int(name[6:10]) % 100
                cmd = [SKYSOLVE, "index", "fetch", "--series", str(series), "--scales",
                       str(scale), "--ra", f"{FIELD_RA}", "--dec", f"{FIELD_DEC}",
                       "--mirror", url, "--dir", str(dest)]  # fmt: skip
            seconds, peak, status, _ = timed(cmd)
            got = (dest / name).stat().st_size if (dest / name).exists() else 0
            installed = "yes" if got == size and status == 0 else f"no (exit {status})"
            print(f"| {label} | {seconds:.2f} | {size / 1e6 / seconds:,.0f} | {peak:.0f} | "
                  f"{installed} |")  # fmt: skip
            shutil.rmtree(dest, ignore_errors=True)
    finally:
        server.terminate()
        server.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=int, default=60, help="solve time limit, s")
    parser.add_argument("--fetch-gb", type=float, default=3.0)
    parser.add_argument("--skip-fetch", action="store_true")
    args = parser.parse_args()
    (REPO / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="index-bench-", dir=REPO / "var") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        sky = build_sky(work / "sky")
        print(f"built {len(sky.files)} index files in {time.monotonic() - t0:.1f} s")
        solve_bench(sky.mirror, sky.field, args.repeat, args.limit)
        if not args.skip_fetch:
            fetch_bench(sky.mirror / "index-5203-25.fits", args.fetch_gb, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
