"""API end-to-end with the fast path: upload an image, poll at once until success.

Starts ``skysolve serve`` (SQLite) on 127.0.0.1 with a fresh data directory
whose ``fastpath/default.t3db`` links to the database given, logs in with a
new API key, and for each seeded synthetic field uploads an image with a scale
hint (+-10 %) and polls submission and job every 10 ms.  Images: an 800x600
JPEG and a 1024x768 16-bit TIFF (``--formats``).  Modes (``--modes``):
``embedded`` (one embedded worker) and ``celery`` (the dispatcher in
``serve`` and one ``skysolve worker --concurrency 1`` on Redis at
127.0.0.1:6379).  Reports, from the upload's *response*: when a poll first
sees ``success``, and when ``/annotated_display/N`` (asked for right after
success, as NINA does) has returned the picture; and the engine's own
timings from the stored result.

    .venv/bin/python bench/fastpath_api_bench.py --fields 10
    .venv/bin/python bench/fastpath_api_bench.py --fields 10 \\
        --modes embedded,celery --formats jpeg,tiff16
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

from skysolve.engine.solving.fastpath import default_db_path, load_database, stars_path  # noqa: E402
from testfields.synthetic import SyntheticField, make_field, random_specs  # noqa: E402

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


def tiff16_of(f: SyntheticField) -> bytes:
    """The field as a 16-bit greyscale TIFF, as star cameras write them."""
    assert f.image is not None
    image = np.clip(np.round(f.image), 0, 65535).astype(np.uint16)
    out = io.BytesIO()
    Image.fromarray(image).save(out, "TIFF")
    return out.getvalue()


#: name -> (image size, encoder, file name, content type)
FORMATS: dict[str, tuple[tuple[int, int], Callable[[SyntheticField], bytes], str, str]] = {
    "jpeg": ((800, 600), jpeg_of, "field.jpg", "image/jpeg"),
    "tiff16": ((1024, 768), tiff16_of, "field.tif", "image/tiff"),
}


def bench_specs(count: int, seed: int, info: Any, size: tuple[int, int]) -> list[Any]:
    """The seeded fields of this bench (bench/pictures_bench.py draws the same ones)."""
    return random_specs(
        count,
        seed=seed,
        min_width_deg=max(5.0, info.min_fov),
        max_width_deg=min(60.0, info.max_fov),
        sizes=(size,),
        fwhm=2.5,
        noise=8.0,
        sky=500.0,
    )


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
    ap.add_argument("--modes", default="embedded", help="embedded,celery")
    ap.add_argument("--formats", default="jpeg", help="jpeg,tiff16")
    args = ap.parse_args()
    db = (args.db or default_db_path()).resolve()
    info = load_database(db).info
    print(f"database {info.describe()}")
    rows = []
    for mode in args.modes.split(","):
        for name in args.formats.split(","):
            rows.append((mode, name, run(args, db, info, mode, name)))
    print(
        f"\nclient polling every {args.interval * 1000:.0f} ms, seconds from the upload response:"
    )
    print(
        "| mode | image | solved | success median | success worst | picture median "
        "| picture worst | engine verified median | engine total median |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for mode, name, m in rows:
        print(
            f"| {mode} | {name} {FORMATS[name][0][0]}x{FORMATS[name][0][1]} | "
            f"{m['solved']}/{args.fields} | {_med(m['success'])} | {_worst(m['success'])} | "
            f"{_med(m['picture'])} | {_worst(m['picture'])} | {_med(m['verified'])} | "
            f"{_med(m['engine'])} |"
        )
    return 0


def _med(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}" if values else "-"


def _worst(values: list[float]) -> str:
    return f"{max(values):.3f}" if values else "-"


def run(args: argparse.Namespace, db: Path, info: Any, mode: str, name: str) -> dict[str, Any]:
    size, encode, filename, content_type = FORMATS[name]
    specs = bench_specs(args.fields + 1, args.seed, info, size)
    measured: dict[str, Any] = {"success": [], "picture": [], "verified": [], "engine": []}
    measured["solved"] = 0
    print(f"\n{mode}, {name}:", flush=True)
    with tempfile.TemporaryDirectory(prefix="skysolve-apibench-") as tmp:
        var = Path(tmp) / "var"
        (var / "fastpath").mkdir(parents=True)
        os.symlink(db, var / "fastpath" / "default.t3db")
        os.symlink(stars_path(db), var / "fastpath" / ("default.t3db" + ".stars.npz"))
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        env.pop("SKYSOLVE_FASTPATH_DB", None)
        env.update(SKYSOLVE_DATA_DIR=str(var), SKYSOLVE_WORKERS="1", PYTHONPATH=str(REPO))
        if mode == "celery":
            env.update(
                SKYSOLVE_QUEUE="celery",
                SKYSOLVE_BROKER_URL="redis://127.0.0.1:6379/0",
                SKYSOLVE_CELERY_QUEUE=f"skysolve-apibench-{os.getpid()}",
                SKYSOLVE_DISPATCH_SLOTS="1",
            )
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
        processes = []
        with open(Path(tmp) / "serve.log", "w") as log:
            processes.append(
                subprocess.Popen(
                    [*CLI, "serve", "--port", str(port), "--web-processes", "1"],
                    env=env,
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            if mode == "celery":
                processes.append(
                    subprocess.Popen(
                        [*CLI, "worker", "--concurrency", "1"],
                        env=env,
                        cwd=REPO,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        try:
            until(lambda: _alive(url), bool, 0.1)
            session = requests.post(
                url + "/api/login", data={"request-json": json.dumps({"apikey": key})}
            ).json()["session"]
            http = requests.Session()  # keep-alive, as a polling client does
            for i, spec in enumerate(specs):
                f = make_field(spec)
                request_json = {
                    "session": session,
                    "scale_units": "degwidth",
                    "scale_lower": spec.width_deg * 0.9,
                    "scale_upper": spec.width_deg * 1.1,
                    "publicly_visible": "n",
                }
                body = encode(f)
                up = http.post(
                    url + "/api/upload",
                    data={"request-json": json.dumps(request_json)},
                    files={"file": (filename, body, content_type)},
                ).json()
                t0 = time.monotonic()  # the upload's response is in
                subid = up["subid"]
                sub = until(
                    partial(_get, http, f"{url}/api/submissions/{subid}"),
                    lambda s: bool(s["jobs"]) and s["jobs"][0] is not None,
                    args.interval,
                )
                job = sub["jobs"][0]
                status = until(
                    partial(_get, http, f"{url}/api/jobs/{job}"),
                    lambda s: s["status"] in ("success", "failure"),
                    args.interval,
                )
                seconds = time.monotonic() - t0
                picture = http.get(f"{url}/annotated_display/{job}", timeout=60)
                drawn = time.monotonic() - t0
                result = _stored_result(var, int(job))
                timings = result.get("timings", {})
                label = "warm-up" if i == 0 else f"field{i:02d}"
                print(
                    f"  {label} {spec.width_deg:5.1f} deg: {status['status']}"
                    f" after {seconds:.3f} s, picture {picture.status_code}"
                    f" after {drawn:.3f} s; solver "
                    f"{result.get('solver')}, engine verified {timings.get('verified', 0):.3f} s,"
                    f" total {timings.get('total', float('nan')):.3f} s",
                    flush=True,
                )
                if i > 0 and status["status"] == "success":
                    measured["solved"] += 1
                    measured["success"].append(seconds)
                    if picture.status_code == 200:
                        measured["picture"].append(drawn)
                    measured["verified"].append(float(timings.get("verified", float("nan"))))
                    measured["engine"].append(float(timings["total"]))
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
    return measured


def _get(http: requests.Session, url: str) -> Any:
    return http.get(url, timeout=30).json()


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
