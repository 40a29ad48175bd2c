"""The lens model of a fisheye or all-sky camera: pixels to sky and back.

A star at angle ``theta`` from the optical axis and azimuth ``phi`` around it
lands at distance ``rho = f * (g(theta) + k1 * theta**3 + k2 * theta**5)`` from
the axis's pixel, where ``g`` is the lens's radial projection:

==============  ====================  =========================
projection      g(theta)              FITS zenithal code
==============  ====================  =========================
equidistant     theta                 ARC
equisolid       2 sin(theta / 2)      ZEA
stereographic   2 tan(theta / 2)      STG
orthographic    sin(theta)            SIN
==============  ====================  =========================

and ``k1``, ``k2`` bend it into any other smooth radial law (the "radial
polynomial").  The focal-plane point ``(x, y) = (rho / f) (cos phi, sin phi)``
(in focal lengths) is moved by Brown-Conrady's decentring (tangential) distortion,

    x' = x + 2 p1 x y + p2 (r^2 + 2 x^2),    y' = y + p1 (r^2 + 2 y^2) + 2 p2 x y

(``r^2 = x^2 + y^2``), which holds a lens whose elements are not quite on one
axis and the first non-radial part of a tilted sensor, then by an optional
smooth "surface" (a 2-D polynomial of degree 2 to ``surface_order`` in the same
focal-plane coordinates, ``x'' = x' + sum c_pq x'^p y'^q`` and likewise for
``y''``), which holds what no lens term does (a dome or window in front of the
lens, a warped frame; only fitted where the stars ask for it), and then goes to
the pixel, times ``f``, through a 2x2 matrix close to the identity,
``[[1 + a, b], [b, 1 - a]]`` (times the parity), which holds a small tilt of
the sensor and an elliptical lens; the camera's rotation about its axis is in
the sky-to-camera rotation.

The model is plain arrays in, arrays out, with no knowledge of how it was
found, so that the final refit of ordinary solutions can share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from skysolve.engine.allsky.polynomial import (
    surface_matrix,
    surface_offsets,
    surface_terms,
)
from skysolve.errors import BadInputError

#: The radial projections the model knows, by name, with their FITS codes.
PROJECTIONS: dict[str, str] = {
    "equidistant": "ARC",
    "equisolid": "ZEA",
    "stereographic": "STG",
    "orthographic": "SIN",
}

#: Where each projection's radial law stops being usable (radians off axis).
_MAX_THETA: dict[str, float] = {
    "equidistant": math.pi,
    "equisolid": math.pi,
    "stereographic": math.radians(170.0),
    "orthographic": math.pi / 2,
}


def radial(theta: np.ndarray, projection: str) -> np.ndarray:
    """``g(theta)``: the projection's distance from the axis, in focal lengths."""
    t = np.asarray(theta, dtype=float)
    if projection == "equidistant":
        return t
    if projection == "equisolid":
        return 2.0 * np.sin(t / 2.0)
    if projection == "stereographic":
        return 2.0 * np.tan(t / 2.0)
    if projection == "orthographic":
        return np.sin(t)
    raise BadInputError(f"unknown projection {projection!r}; known: {', '.join(PROJECTIONS)}")


def inverse_radial(rho: np.ndarray, projection: str) -> np.ndarray:
    """The angle off axis (radians) at distance ``rho`` (focal lengths); NaN beyond the lens."""
    r = np.asarray(rho, dtype=float)
    with np.errstate(invalid="ignore"):
        if projection == "equidistant":
            return r.copy()
        if projection == "equisolid":
            return 2.0 * np.arcsin(np.where(r <= 2.0, r / 2.0, np.nan))
        if projection == "stereographic":
            return 2.0 * np.arctan(r / 2.0)
        if projection == "orthographic":
            return np.arcsin(np.where(r <= 1.0, r, np.nan))
    raise BadInputError(f"unknown projection {projection!r}; known: {', '.join(PROJECTIONS)}")


def radec_to_xyz(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Unit vectors, shape ``(..., 3)``."""
    ra = np.radians(np.asarray(ra_deg, dtype=float))
    dec = np.radians(np.asarray(dec_deg, dtype=float))
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def xyz_to_radec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA in [0, 360) and Dec, degrees, of (not necessarily unit) vectors ``(..., 3)``."""
    v = np.asarray(xyz, dtype=float)
    ra = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360.0
    dec = np.degrees(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
    return ra, dec


def sky_rotation(ra_deg: float, dec_deg: float, roll_deg: float) -> np.ndarray:
    """The rotation taking sky unit vectors to camera ones (axis along +z).

    ``roll_deg`` turns the camera's x axis from the local east (towards north):
    at roll 0 camera x points to increasing RA, camera y to the north.
    """
    ra, dec, roll = math.radians(ra_deg), math.radians(dec_deg), math.radians(roll_deg)
    cr, sr, cd, sd = math.cos(ra), math.sin(ra), math.cos(dec), math.sin(dec)
    axis = (cd * cr, cd * sr, sd)
    east = (-sr, cr, 0.0)
    north = (-sd * cr, -sd * sr, cd)  # axis x east, written out (np.cross is slow)
    c, s = math.cos(roll), math.sin(roll)
    return np.array(
        [
            [c * e + s * n for e, n in zip(east, north, strict=True)],
            [-s * e + c * n for e, n in zip(east, north, strict=True)],
            axis,
        ]
    )


def rotation_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """(RA, Dec, roll) in degrees of a sky-to-camera rotation (inverse of :func:`sky_rotation`)."""
    axis = rotation[2]
    ra, dec = xyz_to_radec(axis)
    ra_r = math.radians(float(ra))
    east = np.array([-math.sin(ra_r), math.cos(ra_r), 0.0])
    north = np.cross(axis, east)
    roll = math.degrees(math.atan2(float(rotation[0] @ north), float(rotation[0] @ east)))
    return float(ra), float(dec), roll


@dataclass(frozen=True)
class LensModel:
    """Pixels to sky for a camera whose field may reach past 90 degrees off axis.

    Pixel coordinates are 0-based (the centre of the first pixel is 0, 0), as
    numpy indexes the image; the WCS export adds one.

    Attributes
    ----------
    projection : str
        One of :data:`PROJECTIONS`.
    center_x, center_y : float
        The pixel of the optical axis.
    ra, dec : float
        The sky position of the optical axis, J2000 degrees.
    roll : float
        Rotation of the camera about its axis, degrees (see :func:`sky_rotation`).
    focal : float
        ``f`` in pixels per radian (for equidistant, pixels per radian off axis).
    parity : int
        +1 when the picture shows the sky as seen from inside the sphere
        (north up, east left, as the sky looks from the ground); -1 mirrored.
    k1, k2 : float
        Radial polynomial terms (``theta**3`` and ``theta**5``).
    a, b : float
        The small stretch and shear of the focal plane (tilt, elliptical lens).
    p1, p2 : float
        Decentring (tangential) distortion, Brown-Conrady's, in focal lengths;
        0 for a lens whose elements share one axis.
    surface_order : int
        Highest degree of the smooth surface (0: none).
    surface : tuple of float
        Its coefficients, in focal lengths: those of ``x`` for each of
        :func:`surface_terms`, then those of ``y``.
    surface_reach : float
        Focal lengths from the axis out to which the surface is its
        polynomial (the stars it was fitted to); beyond, it keeps the value it
        has there on the same azimuth, instead of growing like ``r**order``
        where no star held it.  0: no limit.
    """

    projection: str
    center_x: float
    center_y: float
    ra: float
    dec: float
    roll: float
    focal: float
    parity: int = 1
    k1: float = 0.0
    k2: float = 0.0
    a: float = 0.0
    b: float = 0.0
    p1: float = 0.0
    p2: float = 0.0
    surface_order: int = 0
    surface: tuple[float, ...] = ()
    surface_reach: float = 0.0
    _rotation: np.ndarray = field(init=False, repr=False, compare=False)
    _surface_matrix: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise BadInputError(
                f"unknown projection {self.projection!r}; known: {', '.join(PROJECTIONS)}"
            )
        if not (math.isfinite(self.focal) and self.focal > 0):
            raise BadInputError(f"focal length must be positive, not {self.focal}")
        if self.parity not in (1, -1):
            raise BadInputError(f"parity must be +1 or -1, not {self.parity}")
        if len(self.surface) != 2 * len(surface_terms(self.surface_order)):
            raise BadInputError(
                f"a surface of order {self.surface_order} has "
                f"{2 * len(surface_terms(self.surface_order))} coefficients, "
                f"not {len(self.surface)}"
            )
        object.__setattr__(self, "surface", tuple(float(c) for c in self.surface))
        object.__setattr__(self, "_rotation", sky_rotation(self.ra, self.dec, self.roll))
        object.__setattr__(
            self, "_surface_matrix", surface_matrix(self.surface_order, self.surface)
        )

    # -- the radial law -------------------------------------------------------
    def rho(self, theta: np.ndarray) -> np.ndarray:
        """Distance from the axis in focal lengths of a star ``theta`` radians off axis."""
        t = np.asarray(theta, dtype=float)
        return radial(t, self.projection) + self.k1 * t**3 + self.k2 * t**5

    def theta(self, rho: np.ndarray) -> np.ndarray:
        """Angle off axis (radians) at ``rho`` focal lengths (Newton on :meth:`rho`)."""
        r = np.asarray(rho, dtype=float)
        t = inverse_radial(r, self.projection)
        if self.k1 == 0.0 and self.k2 == 0.0:
            return t
        t = np.where(np.isfinite(t), t, r)
        for _ in range(30):
            h = 1e-6
            value = self.rho(t) - r
            slope = (self.rho(t + h) - self.rho(t - h)) / (2 * h)
            step = value / np.where(np.abs(slope) > 1e-9, slope, 1e-9)
            t = t - np.clip(step, -0.2, 0.2)
            if np.nanmax(np.abs(step), initial=0.0) < 1e-12:
                break
        # Past the radius where the law turns back (strong negative terms) no
        # angle maps there: Newton settles nowhere, or on the falling branch.
        h = 1e-6
        rising = (self.rho(t + h) - self.rho(t - h)) > 0
        landed = np.abs(self.rho(t) - r) <= 1e-7 * np.maximum(1.0, np.abs(r))
        return np.where(rising & landed & (t >= 0), t, np.nan)

    @property
    def max_theta(self) -> float:
        """How far off axis (radians) the model is meant to reach."""
        return _MAX_THETA[self.projection]

    def _matrix(self) -> np.ndarray:
        return np.array(
            [[(1.0 + self.a) * self.parity, self.b], [self.b * self.parity, 1.0 - self.a]]
        )

    def decentre(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Focal-plane points (focal lengths) moved by the decentring distortion."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if self.p1 == 0.0 and self.p2 == 0.0:
            return x, y
        r2 = x * x + y * y
        return (
            x + 2.0 * self.p1 * x * y + self.p2 * (r2 + 2.0 * x * x),
            y + self.p1 * (r2 + 2.0 * y * y) + 2.0 * self.p2 * x * y,
        )

    def undecentre(self, xd: np.ndarray, yd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The inverse of :meth:`decentre` (Newton's method on the 2x2 system)."""
        xd, yd = np.asarray(xd, dtype=float), np.asarray(yd, dtype=float)
        if self.p1 == 0.0 and self.p2 == 0.0:
            return xd, yd
        p1, p2 = self.p1, self.p2
        x, y = xd.copy(), yd.copy()
        for _ in range(20):
            fx, fy = self.decentre(x, y)
            fx, fy = fx - xd, fy - yd
            j11 = 1.0 + 2.0 * p1 * y + 6.0 * p2 * x
            j12 = 2.0 * p1 * x + 2.0 * p2 * y
            j22 = 1.0 + 6.0 * p1 * y + 2.0 * p2 * x
            det = j11 * j22 - j12 * j12
            det = np.where(np.abs(det) > 1e-12, det, 1e-12)
            sx = (j22 * fx - j12 * fy) / det
            sy = (j11 * fy - j12 * fx) / det
            x, y = x - sx, y - sy
            if np.nanmax(np.abs(sx) + np.abs(sy), initial=0.0) < 1e-14:
                break
        return x, y

    def warp(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Focal-plane points (after the decentring) moved by the surface."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if not self.surface:
            return x, y
        at_x, at_y = x, y
        if self.surface_reach > 0.0:
            with np.errstate(divide="ignore", invalid="ignore"):
                shrink = np.minimum(1.0, self.surface_reach / np.hypot(x, y))
            at_x, at_y = x * shrink, y * shrink
        dx, dy = surface_offsets(self._surface_matrix, at_x, at_y)
        return x + dx.reshape(x.shape), y + dy.reshape(y.shape)

    def unwarp(self, xw: np.ndarray, yw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The inverse of :meth:`warp`; NaN where it does not settle (far outside the stars)."""
        xw, yw = np.asarray(xw, dtype=float), np.asarray(yw, dtype=float)
        if not self.surface:
            return xw, yw
        # The surface moves points by hundredths of a focal length and bends
        # slowly: a fixed-point iteration converges within a few steps.
        x, y = xw.copy(), yw.copy()
        step = np.full(x.shape, np.inf)
        # Far outside the stars (a frame's corners) it may run away: NaN there.
        with np.errstate(invalid="ignore", over="ignore"):
            for _ in range(50):
                fx, fy = self.warp(x, y)
                ex, ey = fx - xw, fy - yw
                x, y = x - ex, y - ey
                step = np.abs(ex) + np.abs(ey)
                if np.nanmax(np.where(np.isfinite(step), step, 0.0), initial=0.0) < 1e-13:
                    break
        settled = np.isfinite(step) & (step < 1e-9)
        return np.where(settled, x, np.nan), np.where(settled, y, np.nan)

    def focal_plane(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decentred focal-plane points (focal lengths) of camera-frame unit vectors ``(n, 3)``.

        Before the surface: what the surface's fit regresses on.
        """
        theta = np.arccos(np.clip(v[:, 2], -1.0, 1.0))
        phi = np.arctan2(v[:, 1], v[:, 0])
        rho = self.rho(theta)
        rho = np.where(theta <= self.max_theta, rho, np.nan)
        return self.decentre(rho * np.cos(phi), rho * np.sin(phi))

    # -- mappings ---------------------------------------------------------------
    def camera_vectors(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Unit vectors of sky positions in the camera frame, shape ``(n, 3)``."""
        return radec_to_xyz(np.ravel(ra), np.ravel(dec)) @ self._rotation.T

    def off_axis(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Angle (degrees) of sky positions from the optical axis."""
        v = self.camera_vectors(ra, dec)
        return np.degrees(np.arccos(np.clip(v[:, 2], -1.0, 1.0))).reshape(np.shape(ra))

    def world_to_pixel(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel coordinates of sky positions (degrees); NaN beyond the lens."""
        shape = np.shape(ra)
        x, y = self.camera_to_pixel(self.camera_vectors(ra, dec))
        return x.reshape(shape), y.reshape(shape)

    def camera_to_pixel(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel coordinates of camera-frame unit vectors ``(n, 3)``; NaN beyond the lens.

        The model's own pointing is not used: a fit that turns the camera
        rotates the vectors itself, without a model for every trial pointing.
        """
        xd, yd = self.warp(*self.focal_plane(v))
        dx, dy = self._matrix() @ (self.focal * np.stack([xd, yd]))
        return self.center_x + dx, self.center_y + dy

    def pixel_to_focal(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Focal-plane points (focal lengths, the surface included) of 0-based pixels."""
        d = np.stack(
            [np.asarray(x, dtype=float) - self.center_x, np.asarray(y, dtype=float) - self.center_y]
        )
        u, v = np.linalg.solve(self._matrix(), d.reshape(2, -1)) / self.focal
        return u.reshape(np.shape(x)), v.reshape(np.shape(x))

    def pixel_to_world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sky positions (degrees) of 0-based pixels; NaN where no sky maps."""
        shape = np.shape(x)
        u, v = self.undecentre(*self.unwarp(*self.pixel_to_focal(np.ravel(x), np.ravel(y))))
        rho = np.hypot(u, v)
        theta = self.theta(rho)
        phi = np.arctan2(v, u)
        cam = np.stack(
            [np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1
        )
        ra, dec = xyz_to_radec(cam @ self._rotation)
        bad = ~np.isfinite(theta) | (theta > self.max_theta)
        ra = np.where(bad, np.nan, ra)
        dec = np.where(bad, np.nan, dec)
        return ra.reshape(shape), dec.reshape(shape)

    def pixel_scale(self) -> float:
        """Arcseconds per pixel at the axis."""
        # d rho / d theta at 0 is 1 for every projection here.
        return 3600.0 * math.degrees(1.0 / self.focal)

    def with_rotation(self, rotation: np.ndarray, **changes: Any) -> LensModel:
        """A copy pointed by a sky-to-camera ``rotation``, with other fields changed."""
        ra, dec, roll = rotation_angles(rotation)
        return replace(self, ra=ra, dec=dec, roll=roll, **changes)

    @property
    def rotation(self) -> np.ndarray:
        """The sky-to-camera rotation matrix (a copy)."""
        return self._rotation.copy()

    # -- serialisation ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The model as JSON-ready values (pixel coordinates 0-based)."""
        return {
            "projection": self.projection,
            "fits_projection": PROJECTIONS[self.projection],
            "center_x": self.center_x,
            "center_y": self.center_y,
            "ra": self.ra,
            "dec": self.dec,
            "roll": self.roll,
            "focal_px_per_rad": self.focal,
            "parity": self.parity,
            "k1": self.k1,
            "k2": self.k2,
            "a": self.a,
            "b": self.b,
            "p1": self.p1,
            "p2": self.p2,
            "surface_order": self.surface_order,
            "surface": list(self.surface),
            "surface_reach": self.surface_reach,
            "pixel_origin": 0,
            "law": "rho = g(theta) + k1 theta^3 + k2 theta^5; "
            "x = rho cos phi, y = rho sin phi, r^2 = x^2 + y^2; "
            "x' = x + 2 p1 x y + p2 (r^2 + 2 x^2), y' = y + p1 (r^2 + 2 y^2) + 2 p2 x y; "
            "x'' = x' + sum_k surface[k] x'^p_k y'^q_k, "
            "y'' = y' + sum_k surface[K + k] x'^p_k y'^q_k over the K terms (p_k, q_k) "
            "of degree 2 to surface_order, by degree, p falling, (x', y') taken no farther "
            "than surface_reach from the axis (if not 0); "
            "[dx, dy] = focal [[(1+a) parity, b], [b parity, 1-a]] [x'', y'']",
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LensModel:
        """The model :meth:`to_dict` wrote (or an older one: no ``p1``, ``p2`` or surface)."""
        try:
            return cls(
                projection=str(doc["projection"]),
                center_x=float(doc["center_x"]),
                center_y=float(doc["center_y"]),
                ra=float(doc["ra"]),
                dec=float(doc["dec"]),
                roll=float(doc["roll"]),
                focal=float(doc["focal_px_per_rad"]),
                parity=int(doc.get("parity", 1)),
                k1=float(doc.get("k1", 0.0)),
                k2=float(doc.get("k2", 0.0)),
                a=float(doc.get("a", 0.0)),
                b=float(doc.get("b", 0.0)),
                # Models written before the decentring terms have none.
                p1=float(doc.get("p1", 0.0)),
                p2=float(doc.get("p2", 0.0)),
                # Nor before the surface.
                surface_order=int(doc.get("surface_order", 0)),
                surface=tuple(float(c) for c in doc.get("surface", ())),
                surface_reach=float(doc.get("surface_reach", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"not a lens model: {exc}") from exc
