"""Accuracy benchmark: how well each tool's WCS fits the image, scored the same way for all.

Every corpus image ``solve-field`` solves right (``manifest.json``) and, with
``--shared``, ``apod2-4.jpg`` is solved blind, in one run, by ``solve-field``
and by ``skysolve solve`` with the fast-path database and without it (the
astrometry.net path alone).  Each answer's WCS is then scored against the same
things:

- the same sources: one ``sep`` extraction of the image (the 1000 brightest);
- the same catalogue stars: the Tycho-2 stars of the densest index file
  (``index-tycho2-07``, to V_T 15) in the field, brightest first, as many as a
  3-pixel match radius allows without chance pairs;
- a reference WCS fitted independently of every tool: a polynomial from pixels
  to the tangent plane through the source-star pairs that *every* tool's WCS
  matches (within 3 px), its degree (1 to 5) chosen by 5-fold cross-validation
  averaged over 40 seeded random splits (one split made the degree a coin
  flip where two nearly tie), 3-sigma outliers dropped.  Its own code below, not skysolve's fitter.

Per image and tool it prints: matched stars (sources within 3 px of a
catalogue star under the tool's WCS), their residual RMS (px), the largest
offset from the reference over a 17 x 17 grid across the frame (px), the
offset at the centre (px) and the scale error at the centre (%); then the
medians per tool.  ``ref cv`` is the reference's cross-validated RMS: where it
is above 0.5 px the image's stars do not pin the WCS down to that level; ``1-sigma``
the reference's own largest 1-sigma error over the grid (from its covariance):
offsets of a few times that are within what the stars determine.  The
reference's tangent point is the sky position of the frame's centre, where an
undistorted camera is its order 1.

With ``--repeat N`` each image is also solved N times by skysolve (both
modes) while another ``skysolve solve`` runs beside it, and the largest spread
of the answers across the frame is printed.

    .venv/bin/python bench/accuracy_bench.py --shared              # the table
    .venv/bin/python bench/accuracy_bench.py --only apod4 --repeat 5
    .venv/bin/python bench/accuracy_bench.py --shared --json acc.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_load  # noqa: E402
from engine_bench import timed  # noqa: E402
from real_bench import Case, load_cases  # noqa: E402

from skysolve.engine.extraction import extract_sources  # noqa: E402
from skysolve.engine.indexes.catalog import default_catalog  # noqa: E402
from skysolve.engine.inputs.images import load_image  # noqa: E402
from skysolve.engine.solving.fastpath import default_db_path  # noqa: E402

TOOLS = ("solve-field", "skysolve", "skysolve-no-fastpath")
#: Match radius of the scoring, pixels.
MATCH_PX = 3.0
#: Sources scored (the brightest of one sep extraction).
SOURCES = 1000
#: Grid across the frame for the largest offset.
GRID = 17
#: The reference's order: cross-validated in this many folds...
FOLDS = 5
#: ... averaged over this many random splits of its stars into them
#: (seeded: the same stars give the same reference on every run).
SPLITS = 40
SPLIT_SEED = 0


@dataclass
class Score:
    tool: str
    image: str
    solved: bool
    seconds: float
    matched: int = 0
    rms: float = math.nan
    largest: float = math.nan
    centre: float = math.nan
    scale_error: float = math.nan  # percent
    solver: str = ""


@dataclass
class Answer:
    tool: str
    seconds: float
    header: fits.Header | None
    solver: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# -- running the tools ----------------------------------------------------------


def run_solve_field(case: Case, limit: float) -> Answer:
    with tempfile.TemporaryDirectory(prefix="acc-bench-sf-") as tmp:
        out = Path(tmp)
        cmd = ["solve-field", "--overwrite", "--no-plots", "--dir", str(out)]
        cmd += ["--cpulimit", str(int(limit)), "--new-fits", "none", case.path]
        seconds, _, _, _ = timed(cmd, limit)
        wcs_files = list(out.glob("*.wcs"))
        if not (wcs_files and list(out.glob("*.solved"))):
            return Answer("solve-field", seconds, None)
        return Answer("solve-field", seconds, fits.getheader(wcs_files[0]), "solve-field")


def skysolve_command(path: str, out: Path, limit: float, fastpath: bool) -> list[str]:
    db = default_db_path() if fastpath else default_db_path().with_name("none")
    cmd = [str(REPO / ".venv/bin/skysolve"), "solve", path, "--json", "--no-pictures"]
    cmd += ["--timeout", str(limit), "--no-hints", "--out", str(out)]
    return ["env", f"SKYSOLVE_FASTPATH_DB={db}", *cmd]


def run_skysolve(case: Case, limit: float, fastpath: bool) -> Answer:
    tool = "skysolve" if fastpath else "skysolve-no-fastpath"
    with tempfile.TemporaryDirectory(prefix="acc-bench-ss-") as tmp:
        out = Path(tmp)
        seconds, _, text, _ = timed(skysolve_command(case.path, out, limit, fastpath), limit)
        try:
            doc = json.loads(text.decode() or "{}")
        except ValueError:
            doc = {}
        wcs = out / "wcs.fits"
        if not doc.get("solved") or not wcs.is_file():
            return Answer(tool, seconds, None)
        return Answer(
            tool, seconds, fits.getheader(wcs), str(doc.get("solver", "")),
            {"quality": doc.get("quality")},
        )  # fmt: skip


def astropy_wcs(header: fits.Header, width: int, height: int) -> WCS:
    h = header.copy()
    h["NAXIS"], h["NAXIS1"], h["NAXIS2"] = 2, int(width), int(height)
    return WCS(h, relax=True)


# -- the common scoring ----------------------------------------------------------


def sources_of(path: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    image = load_image(Path(path))
    found = extract_sources(image.data, method="sep", max_sources=SOURCES)
    found = found.sorted_by_flux().head(SOURCES)
    return np.asarray(found.x), np.asarray(found.y), image.width, image.height


def stars_near(wcs: WCS, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Tycho-2 stars (RA, Dec) in the field of ``wcs``, brightest first."""
    catalogue = default_catalog()
    cx, cy = (width + 1) / 2.0, (height + 1) / 2.0
    corners = np.array([[cx, cy], [0.5, 0.5], [width + 0.5, height + 0.5], [0.5, height + 0.5]])
    sky = wcs.all_pix2world(corners, 1)
    reach = max(_sep(sky[0], s) for s in sky[1:])
    cone = catalogue.cone(float(sky[0, 0]), float(sky[0, 1]), min(90.0, reach * 1.1))
    assert cone.mag is not None
    order = np.argsort(np.asarray(cone.mag), kind="stable")
    return np.asarray(cone.ra)[order], np.asarray(cone.dec)[order]


def _sep(a: np.ndarray, b: np.ndarray) -> float:
    r1, d1, r2, d2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def matches(
    wcs: WCS, x: np.ndarray, y: np.ndarray, ra: np.ndarray, dec: np.ndarray, w: int, h: int
) -> dict[int, tuple[int, float]]:
    """Source row -> (star row, distance) pairs within MATCH_PX, one to one, closest first.

    Catalogue depth: the brightest stars in the frame while a random position
    would fall within MATCH_PX of one with probability under 2 %.
    """
    with np.errstate(all="ignore"):
        xy = wcs.all_world2pix(np.column_stack([ra, dec]), 1, quiet=True)
    inside = np.isfinite(xy).all(axis=1)
    inside &= (xy[:, 0] > 0.5) & (xy[:, 0] < w + 0.5) & (xy[:, 1] > 0.5) & (xy[:, 1] < h + 0.5)
    limit = int(0.02 * w * h / (math.pi * MATCH_PX**2))
    rows = np.flatnonzero(inside)[:limit]
    px, py = xy[rows, 0], xy[rows, 1]
    pairs: list[tuple[float, int, int]] = []
    for i in range(len(x)):
        d = np.hypot(px - x[i], py - y[i])
        j = int(np.argmin(d)) if len(d) else -1
        if j >= 0 and d[j] <= MATCH_PX:
            pairs.append((float(d[j]), i, int(rows[j])))
    taken: set[int] = set()
    out: dict[int, tuple[int, float]] = {}
    for d, i, j in sorted(pairs):
        if j not in taken:
            taken.add(j)
            out[i] = (j, d)
    return out


def _gnomonic(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    r, d, r0, d0 = np.radians(ra), np.radians(dec), math.radians(ra0), math.radians(dec0)
    cosc = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(r - r0)
    xi = np.cos(d) * np.sin(r - r0) / cosc
    eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(r - r0)) / cosc
    return np.column_stack([xi, eta])


def _deproject(plane: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    x, y = plane[:, 0], plane[:, 1]
    d0 = math.radians(dec0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    safe = np.where(rho > 0, rho, 1.0)
    dec = np.arcsin(np.cos(c) * math.sin(d0) + y * np.sin(c) * math.cos(d0) / safe)
    ra = ra0 + np.degrees(
        np.arctan2(x * np.sin(c), safe * math.cos(d0) * np.cos(c) - y * math.sin(d0) * np.sin(c))
    )
    return np.column_stack([ra % 360.0, np.degrees(np.where(rho > 0, dec, d0))])


class Reference:
    """pixels -> tangent plane polynomial through agreed pairs; degree by cross-validation."""

    def __init__(
        self, x: np.ndarray, y: np.ndarray, ra: np.ndarray, dec: np.ndarray, w: int, h: int
    ) -> None:
        self.cx, self.cy, self.s = (w + 1) / 2.0, (h + 1) / 2.0, max(w, h) / 2.0
        #: Its own largest 1-sigma over the scoring grid (set by score_all).
        self.worst_sigma = math.nan
        self.ra0, self.dec0 = float(np.median(ra)), float(np.median(dec))
        # Twice: the second time with the tangent point at the sky position of
        # the frame's centre, where an undistorted camera is linear (order 1);
        # off the centre (the median star, degrees away on a sparse wide field)
        # a pure TAN camera needs order 2 or more in this basis.
        for tangent in range(2):
            if tangent:
                self.ra0, self.dec0 = map(
                    float, self.pix2world(np.array([self.cx]), np.array([self.cy]))[0]
                )
            keep = np.ones(len(x), bool)
            for _ in range(5):
                self.order, self.cv = self._choose(x[keep], y[keep], ra[keep], dec[keep])
                self.coef = self._fit(x[keep], y[keep], ra[keep], dec[keep], self.order)
                resid = self._plane(x, y) - _gnomonic(ra, dec, self.ra0, self.dec0)
                dist = np.hypot(resid[:, 0], resid[:, 1]) / self.pixel
                sigma = float(np.median(dist[keep])) / 1.1774
                new = dist <= max(3.0 * 1.5 * sigma, 0.05)
                if np.array_equal(new, keep):
                    break
                keep = new
        self.n = int(keep.sum())
        # Its own precision: the 1-sigma of its position (radial) at each point.
        design = self._design(x[keep], y[keep], self.order)
        resid = self._plane(x[keep], y[keep]) - _gnomonic(ra[keep], dec[keep], self.ra0, self.dec0)
        self._var = float(np.sum(resid**2)) / max(1, 2 * (len(design) - design.shape[1]))
        self._inv = np.linalg.pinv(design.T @ design)

    def sigma_px(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The reference's own 1-sigma error (radial, pixels) at these pixels."""
        g = self._design(x, y, self.order)
        return np.sqrt(2.0 * self._var * np.einsum("ij,jk,ik->i", g, self._inv, g)) / self.pixel

    def _design(self, x: np.ndarray, y: np.ndarray, order: int) -> np.ndarray:
        u, v = (np.asarray(x) - self.cx) / self.s, (np.asarray(y) - self.cy) / self.s
        cols = [u**i * v ** (n - i) for n in range(order + 1) for i in range(n, -1, -1)]
        return np.column_stack(cols)

    def _fit(self, x: Any, y: Any, ra: Any, dec: Any, order: int) -> np.ndarray:
        plane = _gnomonic(ra, dec, self.ra0, self.dec0)
        coef, *_ = np.linalg.lstsq(self._design(x, y, order), plane, rcond=None)
        if order == 1:
            self.pixel = math.sqrt(abs(np.linalg.det(coef[1:3]))) / self.s
        return coef

    def _choose(self, x: Any, y: Any, ra: Any, dec: Any) -> tuple[int, float]:
        self._fit(x, y, ra, dec, 1)  # sets the pixel size
        plane = _gnomonic(ra, dec, self.ra0, self.dec0)
        # Which star falls in which fold decided the order where two orders
        # nearly tie (cedar_pleiades: 2 or 3, 2.1 px apart in the corners):
        # the mean over many random splits does not, and the stars are put in
        # a fixed order first so that the order they come in does not either.
        rng = np.random.default_rng(SPLIT_SEED)
        canonical = np.lexsort((np.asarray(y), np.asarray(x)))
        folds = []
        for _ in range(SPLITS):
            fold = np.empty(len(x), dtype=int)
            fold[canonical] = rng.permutation(len(x)) % FOLDS
            folds.append(fold)
        scores: dict[int, float] = {}
        for order in range(1, 6):
            terms = (order + 1) * (order + 2) // 2
            if len(x) < 4 * terms:
                break
            design = self._design(x, y, order)
            sq = 0.0
            for fold in folds:
                err = np.zeros_like(plane)
                for k in range(FOLDS):
                    coef, *_ = np.linalg.lstsq(design[fold != k], plane[fold != k], rcond=None)
                    err[fold == k] = plane[fold == k] - design[fold == k] @ coef
                sq += float(np.mean(np.sum(err**2, axis=1)))
            scores[order] = math.sqrt(sq / len(folds)) / self.pixel
        best = min(scores.values())
        order = min(o for o, v in scores.items() if v <= best * 1.03)
        return order, scores[order]

    def _plane(self, x: Any, y: Any) -> np.ndarray:
        return self._design(x, y, self.order) @ self.coef

    def pix2world(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _deproject(self._plane(x, y), self.ra0, self.dec0)


def score_all(case: Case, answers: list[Answer]) -> tuple[list[Score], Reference | None]:
    x, y, w, h = sources_of(case.path)
    solved = [a for a in answers if a.header is not None]
    scores = [Score(a.tool, case.image, False, a.seconds) for a in answers if a.header is None]
    if not solved:
        return scores, None
    wcses = {a.tool: astropy_wcs(a.header, w, h) for a in solved if a.header is not None}
    ra, dec = stars_near(next(iter(wcses.values())), w, h)
    matched = {tool: matches(wcs, x, y, ra, dec, w, h) for tool, wcs in wcses.items()}
    agreed = [
        (i, j)
        for i, (j, _) in next(iter(matched.values())).items()
        if all(m.get(i, (-1, 0.0))[0] == j for m in matched.values())
    ]
    reference = None
    if len(agreed) >= 12:
        ii = np.array([i for i, _ in agreed])
        jj = np.array([j for _, j in agreed])
        reference = Reference(x[ii], y[ii], ra[jj], dec[jj], w, h)
    mesh = np.meshgrid(np.linspace(0.5, w + 0.5, GRID), np.linspace(0.5, h + 0.5, GRID))
    gx, gy = mesh[0].ravel(), mesh[1].ravel()
    if reference is not None:
        reference.worst_sigma = float(np.max(reference.sigma_px(gx, gy)))
    cx, cy = (w + 1) / 2.0, (h + 1) / 2.0
    for a in solved:
        wcs = wcses[a.tool]
        pairs = matched[a.tool]
        dist = np.array([d for _, d in pairs.values()])
        s = Score(a.tool, case.image, True, a.seconds, len(pairs), solver=a.solver)
        s.rms = float(np.sqrt(np.mean(dist**2))) if len(dist) else math.nan
        if reference is not None:
            sky = reference.pix2world(gx, gy)
            with np.errstate(all="ignore"):
                back = wcs.all_world2pix(sky, 1, quiet=True)
            off = np.hypot(back[:, 0] - gx, back[:, 1] - gy)
            s.largest = float(np.nanmax(off))
            centre = wcs.all_world2pix(reference.pix2world(np.array([cx]), np.array([cy])), 1)
            s.centre = float(math.hypot(centre[0, 0] - cx, centre[0, 1] - cy))
            s.scale_error = 100.0 * (local_scale(wcs, cx, cy) / ref_scale(reference, cx, cy) - 1)
        scores.append(s)
    return scores, reference


def local_scale(wcs: WCS, x: float, y: float, step: float = 5.0) -> float:
    sky = wcs.all_pix2world(
        np.array([[x - step, y], [x + step, y], [x, y - step], [x, y + step]]), 1
    )
    return (_sep(sky[0], sky[1]) + _sep(sky[2], sky[3])) / (4 * step) * 3600.0


def ref_scale(ref: Reference, x: float, y: float, step: float = 5.0) -> float:
    sky = ref.pix2world(np.array([x - step, x + step, x, x]), np.array([y, y, y - step, y + step]))
    return (_sep(sky[0], sky[1]) + _sep(sky[2], sky[3])) / (4 * step) * 3600.0


# -- repeatability -----------------------------------------------------------------


def spread(case: Case, limit: float, fastpath: bool, times: int, loader: str) -> float:
    """Largest distance across the frame between ``times`` answers, each solved
    while another skysolve solve of ``loader`` runs beside it."""
    headers = []
    for _ in range(times):
        with tempfile.TemporaryDirectory(prefix="acc-bench-rep-") as tmp:
            busy = subprocess.Popen(
                skysolve_command(loader, Path(tmp) / "load", limit, fastpath),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                timed(skysolve_command(case.path, Path(tmp) / "out", limit, fastpath), limit)
            finally:
                busy.wait()
            wcs = Path(tmp) / "out" / "wcs.fits"
            if wcs.is_file():
                headers.append(fits.getheader(wcs))
    if len(headers) < times:
        return math.inf
    w, h = int(headers[0]["IMAGEW"]), int(headers[0]["IMAGEH"])
    gx, gy = np.meshgrid(np.linspace(0.5, w + 0.5, GRID), np.linspace(0.5, h + 0.5, GRID))
    first = astropy_wcs(headers[0], w, h)
    sky = first.all_pix2world(np.column_stack([gx.ravel(), gy.ravel()]), 1)
    worst = 0.0
    for header in headers[1:]:
        back = astropy_wcs(header, w, h).all_world2pix(sky, 1)
        worst = max(
            worst, float(np.max(np.hypot(back[:, 0] - gx.ravel(), back[:, 1] - gy.ravel())))
        )
    return worst


# -- the table ----------------------------------------------------------------------


def _f(value: float, fmt: str) -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, fmt)


def table(scores: list[Score], refs: dict[str, Reference | None]) -> str:
    lines = [
        "| image | ref stars / order / cv px / 1-sigma px | tool | matched | RMS px "
        "| largest offset px | centre px | scale error % | s |",
        "|" + "---|" * 9,
    ]
    for image in dict.fromkeys(s.image for s in scores):
        ref = refs.get(image)
        ref_text = "—"
        if ref is not None:
            ref_text = f"{ref.n} / {ref.order} / {ref.cv:.2f} / {ref.worst_sigma:.2f}"
        for tool in TOOLS:
            s = next((s for s in scores if s.image == image and s.tool == tool), None)
            if s is None:
                continue
            label = tool if not s.solver or tool == "solve-field" else f"{tool} ({s.solver})"
            if not s.solved:
                lines.append(f"| {image} | {ref_text} | {label} | not solved | | | | | "
                             f"{s.seconds:.1f} |")  # fmt: skip
                continue
            lines.append(
                f"| {image} | {ref_text} | {label} | {s.matched} | {_f(s.rms, '.2f')} | "
                f"{_f(s.largest, '.2f')} | {_f(s.centre, '.2f')} | "
                f"{_f(s.scale_error, '+.3f')} | {s.seconds:.1f} |"
            )
    lines += [
        "",
        "| tool | solved | median matched | median RMS px | median largest offset px "
        "| median centre px | median abs scale error % | median s |",
        "|" + "---|" * 8,
    ]
    for tool in TOOLS:
        mine = [s for s in scores if s.tool == tool]
        ok = [s for s in mine if s.solved]
        if not mine:
            continue

        def med(values: list[float]) -> float:
            good = [v for v in values if math.isfinite(v)]
            return statistics.median(good) if good else math.nan

        lines.append(
            f"| {tool} | {len(ok)} of {len(mine)} | {med([s.matched for s in ok]):.0f} | "
            f"{_f(med([s.rms for s in ok]), '.2f')} | {_f(med([s.largest for s in ok]), '.2f')} | "
            f"{_f(med([s.centre for s in ok]), '.2f')} | "
            f"{_f(med([abs(s.scale_error) for s in ok]), '.3f')} | "
            f"{_f(med([s.seconds for s in mine]), '.1f')} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per solve")
    parser.add_argument("--shared", action="store_true", help="add apod2-4.jpg")
    parser.add_argument("--only", nargs="*", help="images whose name contains one of these")
    parser.add_argument("--repeat", type=int, default=0, help="also solve each N times, loaded")
    parser.add_argument("--json", type=Path, help="write the scores here")
    args = parser.parse_args()
    case_args = argparse.Namespace(
        only=args.only, solved_only=True, modes=["blind"], shared=args.shared, max_cases=0
    )
    cases = load_cases(case_args)
    print(f"{len(cases)} images, {machine_load()}", file=sys.stderr)
    started = time.time()
    scores: list[Score] = []
    refs: dict[str, Reference | None] = {}
    spreads: list[str] = []
    for n, case in enumerate(cases, 1):
        answers = [
            run_solve_field(case, args.limit),
            run_skysolve(case, args.limit, True),
            run_skysolve(case, args.limit, False),
        ]
        found, refs[case.image] = score_all(case, answers)
        scores += found
        print(f"[{n}/{len(cases)}] {case.image}: " + ", ".join(
            f"{s.tool} {_f(s.largest, '.2f')} px" for s in found), file=sys.stderr)  # fmt: skip
        if args.repeat > 1:
            loader = cases[(n) % len(cases)].path
            for fastpath in (True, False):
                worst = spread(case, args.limit, fastpath, args.repeat, loader)
                label = "with fast path" if fastpath else "astrometry.net only"
                spreads.append(f"| {case.image} | {label} | {args.repeat} | {_f(worst, '.4f')} |")
    print(table(scores, refs))
    if spreads:
        print("\n| image | skysolve | runs | largest spread across the frame px |")
        print("|---|---|---|---|")
        print("\n".join(spreads))
    print(
        f"\n{len(cases)} images, {time.time() - started:.0f} s, {machine_load()}",
        file=sys.stderr,
    )
    if args.json:
        args.json.write_text(json.dumps([s.__dict__ for s in scores], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
