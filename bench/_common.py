"""What the service benchmarks share: star lists that solve, percentiles, processes.

The benchmarks start the service as an operator would (``skysolve ...``
commands in subprocesses) and talk to it over HTTP on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
# testfields/ (synthetic star fields) sits at the repository root, outside the
# installed package: every benchmark that imports this module can import it.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
#: ``skysolve`` in the current interpreter, whether or not the venv's script is on PATH.
CLI = [sys.executable, "-c", "import sys; from skysolve.cli import main; sys.exit(main())"]

PIXSCALE = 30.0
WIDTH, HEIGHT = 800, 600
#: Field centres of the synthetic star lists (cycled; each with its own seed).
CENTRES = [(200.0, -30.0), (40.0, 20.0), (300.0, 60.0), (120.0, -10.0), (83.8, -5.4)]


def star_lists(count: int) -> list[dict[str, Any]]:
    """``count`` url_upload payloads (x/y lists, image size, +-10 % scale hint) that solve.

    Real sky through :func:`testfields.synthetic.make_field`, as astroquery's
    ``solve_from_source_list`` sends it; the distinct fields are cycled.
    """
    from testfields.synthetic import FieldSpec, make_field

    distinct = []
    for seed, (ra, dec) in enumerate(CENTRES[:count]):
        spec = FieldSpec(ra=ra, dec=dec, pixscale=PIXSCALE, width=WIDTH, height=HEIGHT, seed=seed)
        sources = make_field(spec, render=False).sources
        distinct.append(
            {
                "x": [round(float(v), 3) for v in sources.x],
                "y": [round(float(v), 3) for v in sources.y],
                "image_width": WIDTH,
                "image_height": HEIGHT,
                "scale_units": "arcsecperpix",
                "scale_lower": PIXSCALE * 0.9,
                "scale_upper": PIXSCALE * 1.1,
            }
        )
    return [distinct[i % len(distinct)] for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (the largest value for q=100)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a benchmark installation in ``data_dir``.

    The fast-path database ``make setup`` builds (the shared location, or an
    older checkout's ./var) is used when present, as on an installation made with make setup;
    submission rate limits are off, since one bench user submits far more than
    a person would.
    """
    env = dict(os.environ)
    for name in ("DATABASE_URL", "SKYSOLVE_SOLVER", "SKYSOLVE_FASTPATH_DB"):
        env.pop(name, None)
    env.update(
        SKYSOLVE_DATA_DIR=str(data_dir),
        PYTHONPATH=str(REPO),
        SECRET_KEY="skysolve-bench",
        LOG_LEVEL="WARNING",
        SKYSOLVE_RATE_LIMIT_USER_PER_HOUR="0",
        SKYSOLVE_RATE_LIMIT_IP_PER_HOUR="0",
    )
    from skysolve.engine.solving.fastpath import default_db_path

    # The shared database (make setup), else one an older checkout built in ./var.
    fastpath = default_db_path({**os.environ, "SKYSOLVE_DATA_DIR": str(REPO / "var")})
    if fastpath.is_file():
        env["SKYSOLVE_FASTPATH_DB"] = str(fastpath)
    env.update(extra)
    return env


def wait_until(ready: Callable[[], bool], what: str, patience: float = 120.0) -> None:
    give_up = time.monotonic() + patience
    while not ready():
        if time.monotonic() > give_up:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.2)


def answers(url: str) -> bool:
    """True once ``url`` answers 200 (the service is up)."""
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@dataclass(frozen=True)
class ProcessSample:
    """Resident memory and open file descriptors of a group of processes."""

    rss_mb: float
    fds: int
    pids: tuple[int, ...]


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(v) for v in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found = [pid]
    for child in children(pid):
        found += descendants(child)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, reaped children included) of these processes."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # After the command: state ppid pgrp session ... utime(11) stime(12) cutime cstime
        total += sum(int(v) for v in stat[stat.rindex(")") + 2 :].split()[11:15])
    return total / tick


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def sample(pids: list[int]) -> ProcessSample:
    """Sum of VmRSS and of open fds over ``pids`` (processes gone meanwhile count 0)."""
    rss_kb = 0
    fds = 0
    alive = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
        alive.append(pid)
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss_kb += int(line.split()[1])
    return ProcessSample(rss_mb=rss_kb / 1024, fds=fds, pids=tuple(alive))


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 for fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx = sum(xs) / n
    my = sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"
