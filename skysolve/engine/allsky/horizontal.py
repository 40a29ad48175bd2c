"""Altitude and azimuth on an all-sky frame: the lens model seen from the camera's site.

A camera fixed to the ground sees the sky turn, but its pixels keep their
altitude and azimuth.  Given the time and the site of one solved frame, the
lens model (pixels to J2000 RA, Dec) becomes pixels to (altitude, azimuth)
and back, which meteor networks and cloud monitors use for every later frame
of the camera.

The conventions: azimuth from north (0) through east (90), altitude above the
astronomical horizon (the plane normal to the site's geodetic vertical), both
in degrees; J2000 (ICRS) positions moved by the annual aberration and taken to
the true equator and equinox of the date (IAU 2006/2000A), then turned by the
apparent sidereal time (UT1 taken as UTC: a second of time is 15 arcseconds,
far below an all-sky pixel), without refraction, polar motion or the diurnal
aberration (together under an arcsecond above 10 degrees, but refraction lifts
a star on the horizon by about half a degree: these are airless altitudes).
Measured against astropy's ``AltAz`` (``pressure=0``) in the tests: within a
few arcseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skysolve.engine.allsky.model import LensModel, radec_to_xyz, xyz_to_radec

#: What lens.json and altaz.fits say the numbers are.
CONVENTION = (
    "airless (no refraction) apparent altitude and azimuth, degrees; azimuth from north "
    "through east; J2000 positions with annual aberration, IAU 2006/2000A precession-nutation, "
    "apparent sidereal time with UT1 = UTC; geodetic vertical of the site"
)
#: Altitudes and azimuths (degrees) of the grid lens.json gives.
GRID_ALTITUDES = np.arange(0.0, 90.0 + 1e-9, 5.0)
GRID_AZIMUTHS = np.arange(0.0, 360.0 - 1e-9, 5.0)
#: Rows of the frame mapped at once for altaz.fits (bounds the memory on large frames).
ROWS_PER_BLOCK = 256
#: Pixels between the points where altaz.fits evaluates the lens model itself.
NODE_STEP = 4
#: Where interpolating between those points would be off by more (pixels), every pixel.
INTERPOLATION_TOLERANCE_PX = 0.02

# The speed of light in astronomical units per day, for the aberration.
_C_AU_PER_DAY = 299792458.0 * 86400.0 / 149597870700.0


def earth_frames(iso_time: str) -> tuple[float, np.ndarray]:
    """(Greenwich apparent sidereal time in radians, J2000-to-true-of-date matrix) at a UTC time."""
    return _earth_frames(*_utc_and_tt(iso_time))


def _utc_and_tt(iso_time: str) -> tuple[Any, Any]:
    """astropy's Time of a UTC time, and the same time in TT."""
    from astropy.time import Time

    t = Time(iso_time, scale="utc")
    return t, t.tt


def _earth_frames(t: Any, tt: Any) -> tuple[float, np.ndarray]:
    import erfa

    # UT1 as UTC: a second of time is 15 arcsec, far below an all-sky pixel.
    gst = float(erfa.gst06a(t.jd1, t.jd2, tt.jd1, tt.jd2))
    return gst, np.asarray(erfa.pnm06a(tt.jd1, tt.jd2))


def exif_site(exif: dict[str, Any] | None) -> tuple[float, float] | None:
    """(latitude, east longitude) degrees of EXIF's GPS tags, if both are there and sane."""
    if not exif:
        return None
    values = []
    for key, negative in (("GPSLatitude", "S"), ("GPSLongitude", "W")):
        raw: Any = exif.get(key)
        ref = str(exif.get(key + "Ref", "") or "").strip().upper()
        if raw is None:
            return None
        try:
            parts = [float(v) for v in (raw if isinstance(raw, (tuple, list)) else [raw])]
        except (TypeError, ValueError):
            return None
        if not parts or len(parts) > 3 or not all(math.isfinite(v) for v in parts):
            return None
        angle = sum(v / 60.0**i for i, v in enumerate(parts))
        values.append(-angle if ref == negative else angle)
    lat, lon = values
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 360.0):
        return None
    return lat, (lon + 180.0) % 360.0 - 180.0


def exif_time(exif: dict[str, Any] | None) -> str | None:
    """ISO UTC time from EXIF: the GPS date and time (UTC), else ``DateTimeOriginal``
    with its ``OffsetTimeOriginal`` (a camera's clock without an offset is in an
    unknown time zone: not used)."""
    if not exif:
        return None
    from astropy.time import Time, TimeDelta

    date, clock = exif.get("GPSDateStamp"), exif.get("GPSTimeStamp")
    if isinstance(date, str) and isinstance(clock, (tuple, list)) and len(clock) == 3:
        try:
            h, m, sec = (float(v) for v in clock)
            day = Time(date.strip().replace(":", "-"), scale="utc")
            return str((day + TimeDelta(h * 3600.0 + m * 60.0 + sec, format="sec")).isot)
        except (TypeError, ValueError):
            pass
    stamp = str(exif.get("DateTimeOriginal", "") or "").strip()
    offset = str(exif.get("OffsetTimeOriginal", "") or exif.get("OffsetTime", "") or "").strip()
    if len(stamp) >= 19 and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        try:
            local = Time(stamp[:10].replace(":", "-") + "T" + stamp[11:19], scale="utc")
            shift = (int(offset[1:3]) * 60 + int(offset[4:6])) * (1 if offset[0] == "+" else -1)
            return str((local - TimeDelta(shift * 60.0, format="sec")).isot)
        except ValueError:
            return None
    return None


def mid_exposure(iso_time: str, header: Any = None, *, start: str = "DATE-OBS") -> tuple[str, str]:
    """The middle of an exposure that starts at ``iso_time`` (UTC), and where it came from.

    FITS ``DATE-OBS`` is the start of the exposure, by the standard's usage,
    and an all-sky camera's exposures are long (MAGIC's: 60 s, a quarter
    degree of the sky's turn; its stars sit where they were at the middle).
    ``DATE-AVG`` is taken as it is; else half of ``EXPTIME`` (or ``EXPOSURE``,
    or EXIF's ``ExposureTime`` when ``header`` is a frame's EXIF tags), seconds,
    is added.  ``start`` names where ``iso_time`` came from.
    """
    from astropy.time import Time, TimeDelta

    if header is not None:
        average = str(header.get("DATE-AVG", "") or "").strip()
        if average:
            try:
                return Time(average, scale="utc").isot, "DATE-AVG"
            except ValueError:
                pass
        for key in ("EXPTIME", "EXPOSURE", "ExposureTime"):
            try:
                seconds = float(header.get(key, "") or "nan")
            except (TypeError, ValueError):
                continue
            if math.isfinite(seconds) and 0.0 < seconds < 86400.0:
                mid = Time(iso_time, scale="utc") + TimeDelta(seconds / 2.0, format="sec")
                return mid.isot, f"{start} + {key} / 2 (the middle of the exposure)"
    return iso_time, f"{start} (no exposure time: taken as the frame's instant)"


@dataclass(frozen=True)
class Horizon:
    """The horizontal frame of a site at a time.

    Attributes
    ----------
    time : str
        The UTC time (ISO).
    latitude, longitude : float
        The site, geodetic degrees, longitude east.
    matrix : numpy.ndarray
        Rows: the north, east and up directions, in J2000 axes (to be applied
        to aberrated J2000 unit vectors).
    beta : numpy.ndarray
        The Earth's barycentric velocity over the speed of light, J2000 axes.
    """

    time: str
    latitude: float
    longitude: float
    matrix: np.ndarray
    beta: np.ndarray

    def vectors(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Unit vectors (north, east, up) of J2000 positions (degrees), shape ``(..., 3)``."""
        u = radec_to_xyz(ra, dec)
        # Aberration to first order in v/c: the second order is 1e-8 rad.
        u = u + self.beta - (u @ self.beta)[..., None] * u
        h = u @ self.matrix.T
        return np.asarray(h / np.linalg.norm(h, axis=-1, keepdims=True))

    def altaz(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(altitude, azimuth) in degrees of J2000 positions (degrees); NaN stays NaN."""
        h = self.vectors(ra, dec)
        alt = np.degrees(np.arctan2(h[..., 2], np.hypot(h[..., 0], h[..., 1])))
        az = np.degrees(np.arctan2(h[..., 1], h[..., 0])) % 360.0
        return alt, az

    def radec(self, alt: np.ndarray, az: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """J2000 (RA, Dec), degrees, of (altitude, azimuth) in degrees: :meth:`altaz` undone."""
        a, z = np.radians(np.asarray(alt, float)), np.radians(np.asarray(az, float))
        h = np.stack([np.cos(a) * np.cos(z), np.cos(a) * np.sin(z), np.sin(a)], axis=-1)
        u = h @ self.matrix
        u = u - self.beta + (u @ self.beta)[..., None] * u
        return xyz_to_radec(u)

    def as_dict(self) -> dict[str, Any]:
        """The time and the site, as lens.json's ``horizontal`` part gives them."""
        return {"time": self.time, "latitude": self.latitude, "longitude": self.longitude}


def horizon_at(iso_time: str, latitude: float, longitude: float) -> Horizon:
    """The horizontal frame of a site (geodetic degrees, east longitude) at a UTC time."""
    import erfa

    t, tt = _utc_and_tt(iso_time)  # parsed once: the frames and the Earth's velocity
    gst, pnm = _earth_frames(t, tt)
    lst, lat = gst + math.radians(longitude), math.radians(latitude)
    up = np.array([math.cos(lat) * math.cos(lst), math.cos(lat) * math.sin(lst), math.sin(lat)])
    east = np.array([-math.sin(lst), math.cos(lst), 0.0])
    north = np.cross(up, east)
    _, barycentric = erfa.epv00(tt.jd1, tt.jd2)
    beta = np.asarray(barycentric["v"], float).reshape(3) / _C_AU_PER_DAY
    return Horizon(
        time=iso_time,
        latitude=float(latitude),
        longitude=float(longitude),
        matrix=np.vstack([north, east, up]) @ pnm,
        beta=beta,
    )


def pixel_to_altaz(
    model: LensModel, horizon: Horizon, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(altitude, azimuth) in degrees of 0-based pixels; NaN where no sky maps."""
    ra, dec = model.pixel_to_world(np.asarray(x, float), np.asarray(y, float))
    return horizon.altaz(ra, dec)


def altaz_to_pixel(
    model: LensModel, horizon: Horizon, alt: np.ndarray, az: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixels of (altitude, azimuth) in degrees; NaN beyond the lens."""
    ra, dec = horizon.radec(alt, az)
    return model.world_to_pixel(ra, dec)


def horizontal_model(model: LensModel, horizon: Horizon) -> LensModel:
    """The lens model turned to the horizontal frame: ``world_to_pixel(360 - az, alt)``.

    Its "RA" is the azimuth counted westward (360 - azimuth, as an hour angle
    is) and its "Dec" the altitude, so that the frame stays right-handed and
    the model's own code serves a client in alt/az.  A rotation cannot hold the
    annual aberration (which pulls the sky towards a point): it is off
    :func:`altaz_to_pixel` by at most 21 arcseconds.
    """
    # J2000 to (north, west, up): right-handed, unlike (north, east, up).
    to_nwu = np.diag([1.0, -1.0, 1.0]) @ horizon.matrix
    return model.with_rotation(model.rotation @ to_nwu.T)


def _point(x: float, y: float, width: int, height: int) -> dict[str, Any]:
    """A 0-based pixel for lens.json (None where it does not map), and if it is in the frame."""
    ok = math.isfinite(x) and math.isfinite(y)
    inside = ok and -0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5
    return {"x": json_number(x), "y": json_number(y), "in_frame": bool(inside)}


def horizontal_document(
    model: LensModel, horizon: Horizon, width: int, height: int, *, reach_deg: float | None = None
) -> dict[str, Any]:
    """The ``horizontal`` part of lens.json: pointing, zenith, cardinal points, grid, model.

    Pixels are 0-based (the first pixel's centre is 0, 0), as in the rest of
    lens.json; ``reach_deg``, the matched stars' reach off the axis, says where
    the model stops being a fit and becomes an extrapolation.
    """
    axis_alt, axis_az = horizon.altaz(np.array(model.ra), np.array(model.dec))
    zx, zy = altaz_to_pixel(model, horizon, np.array([90.0]), np.array([0.0]))
    zx0, zy0 = float(zx[0]), float(zy[0])
    up_azimuth = None
    if math.isfinite(zx0) and math.isfinite(zy0):
        # The sky a few pixels towards the first row from the zenith's pixel.
        _, az = pixel_to_altaz(model, horizon, np.array([zx0]), np.array([zy0 - 3.0]))
        up_azimuth = json_number(az[0])
    roll = None
    if float(axis_alt) < 89.0:
        # Which way altitude rises through the axis's pixel, clockwise from the first row's side.
        px, py = altaz_to_pixel(model, horizon, np.array([axis_alt + 0.5]), np.array([axis_az]))
        dx, dy = float(px[0]) - model.center_x, float(py[0]) - model.center_y
        if math.isfinite(dx) and math.isfinite(dy):
            roll = json_number(math.degrees(math.atan2(dx, -dy)) % 360.0)
    names = ("north", "east", "south", "west")
    cx, cy = altaz_to_pixel(model, horizon, np.zeros(4), np.array([0.0, 90.0, 180.0, 270.0]))
    # The pole of the date (the sky turns about it), not J2000's: 0.1 degree apart by 2018.
    pole_alt, pole_az = abs(horizon.latitude), 0.0 if horizon.latitude >= 0 else 180.0
    ppx, ppy = altaz_to_pixel(model, horizon, np.array([pole_alt]), np.array([pole_az]))
    galt, gaz = np.meshgrid(GRID_ALTITUDES, GRID_AZIMUTHS, indexing="ij")
    gx, gy = altaz_to_pixel(model, horizon, galt, gaz)
    flat = horizontal_model(model, horizon).to_dict()
    return {
        "convention": CONVENTION,
        "refraction": False,
        "pixel_origin": 0,
        **horizon.as_dict(),
        "pointing": {
            "altitude_deg": json_number(axis_alt),
            "azimuth_deg": json_number(axis_az),
            "x": json_number(model.center_x),
            "y": json_number(model.center_y),
        },
        "roll_deg": roll,
        "roll": "at the axis's pixel, the direction of rising altitude, degrees clockwise "
        "from the image's up (towards the first row, y decreasing); null near the zenith",
        "zenith": _point(zx0, zy0, width, height),
        "image_up_azimuth_deg": up_azimuth,
        "image_up_azimuth": "azimuth of the sky just towards the first row (y decreasing) "
        "from the zenith's pixel: the image's up direction as a compass bearing",
        "horizon_points": {
            name: _point(float(x), float(y), width, height)
            for name, x, y in zip(names, cx, cy, strict=True)
        },
        "celestial_pole": {
            "pole": "north" if horizon.latitude >= 0 else "south",
            "altitude_deg": pole_alt,
            "azimuth_deg": pole_az,
            **_point(float(ppx[0]), float(ppy[0]), width, height),
        },
        "model_reach_deg": reach_deg,
        "model_reach": "99th percentile of the matched stars' angles off the axis: the model "
        "is a fit within it, an extrapolation beyond",
        "grid": {
            "altitude_deg": GRID_ALTITUDES.tolist(),
            "azimuth_deg": GRID_AZIMUTHS.tolist(),
            "x": [[json_number(v, 2) for v in row] for row in gx],
            "y": [[json_number(v, 2) for v in row] for row in gy],
        },
        "model": {k: (float(v) if isinstance(v, np.floating) else v) for k, v in flat.items()},
        "model_use": "the lens model with ra = 360 - azimuth and dec = altitude "
        "(LensModel.from_dict(...).world_to_pixel(360 - az, alt)); within 21 arcsec "
        "(the annual aberration) of the grid and altaz.fits",
    }


def altaz_planes(
    model: LensModel,
    horizon: Horizon,
    width: int,
    height: int,
    *,
    circle: tuple[float, float, float] | None = None,
    step: int = NODE_STEP,
) -> np.ndarray:
    """Altitude and azimuth of every pixel, shape ``(2, height, width)``, float32 degrees.

    NaN where no sky maps, below the horizon and, with ``circle`` (centre x,
    centre y, radius in 0-based pixels: the lit image circle), outside it.

    The lens model is evaluated every ``step`` pixels and its horizontal unit
    vectors interpolated bilinearly between (the angles of a vector need no
    normalising): the model's inverse is a Newton iteration, several times
    the cost of the interpolation, which stays within a few thousandths of a
    degree of the model (the tests and ``bench/allsky_altaz.py`` measure it).
    Pixels next to where the model ends get the model's own value.
    """
    out = np.full((2, height, width), np.nan, dtype=np.float32)
    xs = np.arange(width, dtype=float)
    # At least two nodes each way, the last at or past the frame's edge.
    nodes_x = np.arange(0, max(width - 1, 1) + step, step, dtype=float)
    nodes_y = np.arange(0, max(height - 1, 1) + step, step, dtype=float)
    gx, gy = np.meshgrid(nodes_x, nodes_y)
    ra, dec = model.pixel_to_world(gx, gy)
    nodes = horizon.vectors(ra, dec)
    known = np.isfinite(nodes[..., 0])
    # Single precision from here: 1e-7 of a unit vector is 0.00001 degree, and half the memory.
    nodes = np.where(known[..., None], nodes, 0.0).astype(np.float32)
    # Along x once for every row of nodes; each block of rows then blends two of them.
    ix = np.minimum((xs // step).astype(int), len(nodes_x) - 2)
    fx = ((xs - ix * step) / step).astype(np.float32)
    rows_v = nodes[:, ix] * (1.0 - fx)[None, :, None] + nodes[:, ix + 1] * fx[None, :, None]
    k = known.astype(np.float32)
    rows_k = k[:, ix] * (1.0 - fx)[None, :] + k[:, ix + 1] * fx[None, :]
    # Cells wholly below the horizon stay NaN whatever the model says there.
    up = known & (nodes[..., 2] > math.sin(math.radians(-3.0)))
    near = up[:-1, :-1] | up[1:, :-1] | up[:-1, 1:] | up[1:, 1:]
    rough = _rough_cells(nodes, known, step) & near
    for top in range(0, height, ROWS_PER_BLOCK):
        ys = np.arange(top, min(height, top + ROWS_PER_BLOCK), dtype=float)
        iy = np.minimum((ys // step).astype(int), len(nodes_y) - 2)
        fy = ((ys - iy * step) / step).astype(np.float32)[:, None]
        v = rows_v[iy] * (1.0 - fy)[..., None] + rows_v[iy + 1] * fy[..., None]
        share = rows_k[iy] * (1.0 - fy) + rows_k[iy + 1] * fy
        whole = share > 1.0 - 1e-5  # all four nodes on the sky (float32 rounding)
        alt = np.degrees(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
        az = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360.0
        alt, az = np.where(whole, alt, np.nan), np.where(whole, az, np.nan)
        # Next to where the model ends, and where it bends too fast between nodes
        # (a lens squeezing the sky near its limit), the model itself.
        rows, cols = np.nonzero((((share > 0.0) & ~whole) & near[iy][:, ix]) | rough[iy][:, ix])
        if len(rows):
            alt[rows, cols], az[rows, cols] = pixel_to_altaz(model, horizon, xs[cols], ys[rows])
        x, y = xs[None, :], ys[:, None]
        bad = ~np.isfinite(alt) | (alt < 0.0)
        if circle is not None:
            bad |= np.hypot(x - circle[0], y - circle[1]) > circle[2]
        out[0, top : top + len(ys)] = np.where(bad, np.nan, alt)
        out[1, top : top + len(ys)] = np.where(bad, np.nan, az)
    return out


def _rough_cells(nodes: np.ndarray, known: np.ndarray, step: int) -> np.ndarray:
    """Cells between nodes where a straight line between them is off the model by more
    than :data:`INTERPOLATION_TOLERANCE_PX` (of the local pixel scale), shape
    ``(rows - 1, columns - 1)``.

    Judged by the nodes' second differences across the sphere (their part along
    the vector only shortens it, which the angles ignore): a linear
    interpolation is off by at most an eighth of them.
    """

    def across(d2: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.asarray(np.linalg.norm(d2 - np.sum(d2 * v, axis=-1)[..., None] * v, axis=-1))

    second = np.zeros(known.shape, dtype=np.float32)
    scale = np.zeros(known.shape, dtype=np.float32)
    if nodes.shape[1] > 2:
        dx = across(nodes[:, :-2] - 2.0 * nodes[:, 1:-1] + nodes[:, 2:], nodes[:, 1:-1])
        second[:, 1:-1] += dx
        second[:, 0] += dx[:, 0]
        second[:, -1] += dx[:, -1]
    if nodes.shape[0] > 2:
        dy = across(nodes[:-2] - 2.0 * nodes[1:-1] + nodes[2:], nodes[1:-1])
        second[1:-1] += dy
        second[0] += dy[0]
        second[-1] += dy[-1]
    # Radians per pixel: the larger step between neighbouring nodes, either way.
    gx = np.linalg.norm(np.diff(nodes, axis=1), axis=-1)
    gy = np.linalg.norm(np.diff(nodes, axis=0), axis=-1)
    scale[:, :-1] = np.maximum(scale[:, :-1], gx)
    scale[:, 1:] = np.maximum(scale[:, 1:], gx)
    scale[:-1] = np.maximum(scale[:-1], gy)
    scale[1:] = np.maximum(scale[1:], gy)
    bad = (second / 8.0 > INTERPOLATION_TOLERANCE_PX * scale / step) & known
    return np.asarray(bad[:-1, :-1] | bad[1:, :-1] | bad[:-1, 1:] | bad[1:, 1:])


def write_altaz_fits(
    path: Path,
    model: LensModel,
    horizon: Horizon,
    width: int,
    height: int,
    *,
    circle: tuple[float, float, float] | None = None,
) -> Path:
    """``altaz.fits``: :func:`altaz_planes` as a FITS cube (plane 1 altitude, plane 2 azimuth).

    FITS pixel (1, 1) is the frame's first pixel; read with
    ``alt, az = astropy.io.fits.getdata(path)`` and index ``alt[y, x]``.
    """
    from astropy.io import fits

    data = altaz_planes(model, horizon, width, height, circle=circle)
    header = fits.Header()
    header["BUNIT"] = ("deg", "altitude and azimuth in degrees")
    header["PLANE1"] = ("ALTITUDE", "plane 1: altitude above the horizon, deg")
    header["PLANE2"] = ("AZIMUTH", "plane 2: azimuth from north through east, deg")
    header["DATE-OBS"] = (horizon.time, "UTC of the frame mapped")
    header["SITELAT"] = (horizon.latitude, "site geodetic latitude, deg")
    header["SITELONG"] = (horizon.longitude, "site longitude, deg east")
    header["REFRACT"] = (False, "no refraction: airless altitudes")
    header["LENSPROJ"] = (model.projection, "all-sky lens model's radial projection")
    header["ORIGIN"] = "skysolve"
    header["COMMENT"] = "Altitude and azimuth of every pixel of an all-sky frame, from its"
    header["COMMENT"] = "solved lens model and the frame's time and site. NaN: no sky, below"
    header["COMMENT"] = "the horizon or outside the image circle. " + CONVENTION + "."
    header["COMMENT"] = "Read: alt, az = astropy.io.fits.getdata(file); alt[y, x], 0-based."
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)
    return path


def json_number(value: Any, digits: int = 4) -> float | None:
    """``value`` rounded to ``digits`` decimals for a JSON document; None when not finite."""
    f = float(value)
    return round(f, digits) if math.isfinite(f) else None
