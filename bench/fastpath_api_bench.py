"""API end-to-end with the fast path: upload an 800x600 JPEG, poll at once until success.

Starts ``skysolve serve`` (SQLite, one embedded worker) on 127.0.0.1 with a
fresh data directory whose ``fastpath/default.t3db`` links to the database
given, logs in with a new API key, and for each seeded synthetic field uploads
a JPEG with a scale hint (+-10 %) and polls submission and job every 10 ms.
Reports the time from sending the upload to the first poll that sees
``success``, and the engine's own timings from the stored result.

    .venv/bin/python bench/fastpath_api_bench.py --fields 10
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import requests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from skysolve.engine.fastpath import default_db_path, load_database, stars_path  # noqa: E402
from skysolve.engine.synthetic import SyntheticField, make_field, random_specs  # noqa: E402

CLI = [sys.executable, "-c", "import sys; from skysolve.cli import main; sys.exit(main())"]


def jpeg_of(f: SyntheticField) -> bytes:
    assert f.image is not None
    image = f.image
    lo = float(np.median(image)) - 3.0 * f.spec.noise
    hi = max(float(image.max()), lo + 1.0)
    scaled = np.sqrt(np.clip((image - lo) / (hi - lo), 0.0, 1.0))
    out = io.BytesIO()
    Image.fromarray(np.round(scaled * 255.0).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(fetch: Callable[[], Any], done: Callable[[Any], bool], interval: float) -> Any:
    for _ in range(int(120 / interval)):
        answer = fetch()
        if done(answer):
            return answer
        time.sleep(interval)
    raise RuntimeError(f"never done: {answer!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", type=Path, default=None, help="database (default: the engine's)")
    ap.add_argument("--fields", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--interval", type=float, default=0.01, help="poll interval, seconds")
    args = ap.parse_args()
    db = (args.db or default_db_path()).resolve()
    info = load_database(db).info
    print(f"database {info.describe()}")
    specs = random_specs(
        args.fields + 1,
        seed=args.seed,
        min_width_deg=max(5.0, info.min_fov),
        max_width_deg=min(60.0, info.max_fov),
        sizes=((800, 600),),
        fwhm=2.5,
        noise=8.0,
        sky=500.0,
    )
    with tempfile.TemporaryDirectory(prefix="skysolve-apibench-") as tmp:
        var = Path(tmp) / "var"
        (var / "fastpath").mkdir(parents=True)
        os.symlink(db, var / "fastpath" / "default.t3db")
        os.symlink(stars_path(db), var / "fastpath" / ("default.t3db" + ".stars.npz"))
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        env.pop("SKYSOLVE_FASTPATH_DB", None)
        env.update(SKYSOLVE_DATA_DIR=str(var), SKYSOLVE_WORKERS="1", PYTHONPATH=str(REPO))
        key = subprocess.run(
            [*CLI, "apikey", "create", "bench"],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(Path(tmp) / "serve.log", "w") as log:
            server = subprocess.Popen(
                [*CLI, "serve", "--port", str(port), "--web-processes", "1"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            until(lambda: _alive(url), bool, 0.1)
            session = requests.post(
                url + "/api/login", data={"request-json": json.dumps({"apikey": key})}
            ).json()["session"]
            times: list[float] = []
            engine: list[float] = []
            for i, spec in enumerate(specs):
                f = make_field(spec)
                request_json = {
                    "session": session,
                    "scale_units": "degwidth",
                    "scale_lower": spec.width_deg * 0.9,
                    "scale_upper": spec.width_deg * 1.1,
                    "publicly_visible": "n",
                }
                body = jpeg_of(f)
                t0 = time.monotonic()
                up = requests.post(
                    url + "/api/upload",
                    data={"request-json": json.dumps(request_json)},
                    files={"file": ("field.jpg", body, "image/jpeg")},
                ).json()
                subid = up["subid"]
                sub = until(
                    partial(_get, f"{url}/api/submissions/{subid}"),
                    lambda s: bool(s["jobs"]) and s["jobs"][0] is not None,
                    args.interval,
                )
                job = sub["jobs"][0]
                status = until(
                    partial(_get, f"{url}/api/jobs/{job}"),
                    lambda s: s["status"] in ("success", "failure"),
                    args.interval,
                )
                seconds = time.monotonic() - t0
                result = _stored_result(var, int(job))
                label = "warm-up" if i == 0 else f"field{i:02d}"
                print(
                    f"  {label} {spec.width_deg:5.1f} deg: {status['status']} in {seconds:.3f} s;"
                    f" solver {result.get('solver')}, engine total "
                    f"{result.get('timings', {}).get('total', float('nan')):.3f} s, timings "
                    f"{result.get('timings')}",
                    flush=True,
                )
                if i > 0 and status["status"] == "success":
                    times.append(seconds)
                    engine.append(float(result["timings"]["total"]))
        finally:
            server.terminate()
            server.wait(timeout=60)
    if times:
        print(
            f"\nupload -> success seen by a client polling every {args.interval * 1000:.0f} ms: "
            f"median {statistics.median(times):.3f} s, worst {max(times):.3f} s "
            f"({len(times)}/{args.fields} solved); engine total median "
            f"{statistics.median(engine):.3f} s"
        )
    return 0


def _get(url: str) -> Any:
    return requests.get(url, timeout=30).json()


def _alive(url: str) -> bool:
    try:
        requests.get(url + "/api/openapi.json", timeout=1)
    except requests.ConnectionError:
        return False
    return True


def _stored_result(var: Path, job_id: int) -> dict[str, Any]:
    with closing(sqlite3.connect(var / "skysolve.sqlite3")) as db:
        row = db.execute("SELECT result FROM submissions_job WHERE id = ?", (job_id,)).fetchone()
    if row is None or not row[0]:
        return {}
    result: dict[str, Any] = json.loads(row[0])
    return result


if __name__ == "__main__":
    sys.exit(main())
