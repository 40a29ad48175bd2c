"""Name what is in a solved field: deep-sky objects, bright stars, constellations.

Sources (all maintained catalogues, none typed in here; the first two are
loaded by :mod:`~skysolve.engine.products.named_objects`):

* Deep-sky objects come from OpenNGC through ``pyongc`` (NGC, IC and the
  addendum: Messier-only objects, Barnard 33 "Horsehead Nebula", Melotte,
  Caldwell...), with Messier numbers, common names and sizes.
* Named bright stars are the 3344-star table compiled into Debian's
  ``libastrometry`` (the one ``plot-constellations -B`` and nova use), read with
  ctypes, so names and V magnitudes are exactly nova's.
* Constellations come from the IAU boundaries astropy ships (see ``constellations``).

Why not run ``plot-constellations -L -N -B -C -J`` and parse it (what nova
does)?  It was compared on the reference images: it gives the same star
names, but (1) its NGC list has no Messier-only or non-NGC/IC objects (no
Horsehead Nebula in the apod2 field), (2) with a wide SIP WCS it extrapolates
the inverse polynomial and lists stars 60 degrees away as inside (kappa Hya in
the Big Dipper field of apod4), (3) it offers no V magnitude and only TAN/SIP
headers, and (4) a constellation is only "in" the field if its stick figure is,
so a star-poor patch gets no constellation at all.  The catalogues above avoid
all four, and with the catalogues cached a call takes a few milliseconds.

Pixel convention: ``Annotation.pixelx``/``pixely`` are 1-based FITS pixel
coordinates (the centre of the first stored pixel is (1, 1)), exactly the
numbers ``plot-constellations -L -J`` prints and nova's ``/annotations`` API
returns.  An object is "in the field" when its centre lies inside the image
area, ``0.5 <= x <= width + 0.5`` and likewise for y.  An extended object whose
centre is outside is still listed when at least half of its radius reaches into
the image (the circle drawn for it then clearly crosses the picture).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from skysolve.engine.products.constellations import constellations
from skysolve.engine.products.named_objects import deep_sky_catalogue, star_catalogue, unit_vectors
from skysolve.engine.results import Annotation, CelestialWCS
from skysolve.errors import BadInputError

__all__ = ["objects_in_field", "field_geometry", "FieldGeometry"]

#: Faintest named bright star listed by default (the table stops near V = 6.5).
DEFAULT_MAX_STARS_VMAG = 6.5
#: At most this many bright stars are listed; the brightest win.
DEFAULT_MAX_STARS = 30
#: At most this many deep-sky objects are listed (Messier and named ones first).
DEFAULT_MAX_DEEP_SKY = 40
#: Unnamed, non-Messier objects smaller than this fraction of the field's longer
#: side are left out, as ``plot-constellations -F 0.02`` does.
DEFAULT_MIN_SIZE_FRACTION = 0.02


# -- geometry -----------------------------------------------------------------


@dataclass(frozen=True)
class FieldGeometry:
    """Where an image lies on the sky.

    ``centre_xyz`` is the unit vector of the image centre, ``radius_deg`` the
    largest angular distance from it to the image border, ``pixscale_deg`` the
    mean pixel size in degrees and ``long_side_deg`` the longer side of the
    image in degrees.
    """

    centre_ra: float
    centre_dec: float
    centre_xyz: np.ndarray
    radius_deg: float
    pixscale_deg: float
    long_side_deg: float


def field_geometry(wcs: CelestialWCS, width: int, height: int) -> FieldGeometry:
    """Centre, radius and pixel scale of an image with a celestial WCS.

    Parameters
    ----------
    wcs : astropy.wcs.WCS or another CelestialWCS (the fast path's TanSip)
        Celestial WCS (TAN, TAN-SIP, ...) in 1-based FITS pixel convention.
    width, height : int
        Image size in pixels.

    Returns
    -------
    FieldGeometry
    """
    _check_inputs(wcs, width, height)
    cx, cy = (width + 1) / 2.0, (height + 1) / 2.0
    nb = 17
    xs = np.concatenate(
        [
            np.linspace(0.5, width + 0.5, nb),
            np.full(nb, width + 0.5),
            np.linspace(0.5, width + 0.5, nb),
            np.full(nb, 0.5),
        ]
    )
    ys = np.concatenate(
        [
            np.full(nb, 0.5),
            np.linspace(0.5, height + 0.5, nb),
            np.full(nb, height + 0.5),
            np.linspace(0.5, height + 0.5, nb),
        ]
    )
    world = wcs.all_pix2world(np.column_stack([np.r_[cx, xs], np.r_[cy, ys]]), 1)
    if not np.all(np.isfinite(world)):
        raise BadInputError("the WCS does not map the whole image onto the sky")
    xyz = unit_vectors(world[:, 0], world[:, 1])
    centre = xyz[0]
    radius = float(np.degrees(np.arccos(np.clip(xyz[1:] @ centre, -1.0, 1.0))).max())
    pixscale = math.sqrt(abs(float(np.linalg.det(wcs.celestial.pixel_scale_matrix))))
    return FieldGeometry(
        centre_ra=float(world[0, 0]) % 360.0,
        centre_dec=float(world[0, 1]),
        centre_xyz=centre,
        radius_deg=radius,
        pixscale_deg=pixscale,
        long_side_deg=max(width, height) * pixscale,
    )


def _check_inputs(wcs: CelestialWCS, width: int, height: int) -> None:
    # Any celestial WCS with astropy's methods: astropy's own, or the fast
    # path's TAN-SIP model (no astropy import for a fast-path answer).
    if not all(hasattr(wcs, a) for a in ("all_pix2world", "all_world2pix", "celestial")) or not (
        getattr(wcs, "has_celestial", False)
    ):
        raise BadInputError("a celestial WCS is needed to name objects in the field")
    if wcs.pixel_n_dim != 2:
        raise BadInputError(f"the WCS must have 2 pixel axes, not {wcs.pixel_n_dim}")
    if int(width) <= 0 or int(height) <= 0:
        raise BadInputError(f"image size must be positive, not {width}x{height}")


def _project(
    wcs: CelestialWCS, ra: np.ndarray, dec: np.ndarray, pixscale_deg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-based pixel positions and a mask of trustworthy ones.

    A SIP inverse far from the image can send a point to a plausible but wrong
    pixel; mapping the pixel back and comparing catches that.
    """
    if len(ra) == 0:
        empty = np.zeros(0)
        return empty, empty, np.zeros(0, dtype=bool)
    radec = np.column_stack([ra, dec])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pix = wcs.all_world2pix(radec, 1, quiet=True)
        back = wcs.all_pix2world(pix, 1)
    ok = np.all(np.isfinite(pix), axis=1) & np.all(np.isfinite(back), axis=1)
    sep = np.full(len(ra), np.inf)
    if ok.any():
        a = unit_vectors(ra[ok], dec[ok])
        b = unit_vectors(back[ok, 0], back[ok, 1])
        sep[ok] = np.degrees(np.arccos(np.clip(np.sum(a * b, axis=1), -1.0, 1.0)))
    ok &= sep <= max(3.0 * pixscale_deg, 1.0 / 3600.0)
    return pix[:, 0], pix[:, 1], ok


def _near(xyz: np.ndarray, geometry: FieldGeometry, extra_deg: np.ndarray | float) -> np.ndarray:
    """Indices of catalogue entries possibly inside the field (cheap cone test)."""
    limit = np.radians(np.minimum(geometry.radius_deg * 1.05 + extra_deg + 0.01, 180.0))
    return np.flatnonzero(xyz @ geometry.centre_xyz >= np.cos(limit))


def _inside(
    x: np.ndarray, y: np.ndarray, radius_px: np.ndarray, width: int, height: int
) -> np.ndarray:
    dx = np.maximum(np.maximum(0.5 - x, x - (width + 0.5)), 0.0)
    dy = np.maximum(np.maximum(0.5 - y, y - (height + 0.5)), 0.0)
    distance = np.hypot(dx, dy)  # 0 when the centre is inside
    return (distance == 0) | (distance < 0.5 * radius_px)


# -- the three kinds of things ---------------------------------------------------


def _constellations(
    wcs: CelestialWCS, width: int, height: int
) -> list[tuple[str, str, float, float]]:
    """(long name, abbreviation, x, y) of constellations in the field, largest share first."""
    nx, ny = 25, 19
    gx, gy = np.meshgrid(np.linspace(0.5, width + 0.5, nx), np.linspace(0.5, height + 0.5, ny))
    px, py = gx.ravel(), gy.ravel()
    world = wcs.all_pix2world(np.column_stack([px, py]), 1)
    good = np.all(np.isfinite(world), axis=1)
    if not good.any():
        return []
    long_names, short_names = constellations(world[good, 0] % 360.0, world[good, 1])
    px, py = px[good], py[good]
    found = []
    for long_name in dict.fromkeys(long_names.tolist()):
        sel = long_names == long_name
        # Label at the sample nearest the mean of the constellation's samples,
        # so it lies inside its own part of the picture.
        mx, my = px[sel].mean(), py[sel].mean()
        k = int(np.argmin(np.hypot(px[sel] - mx, py[sel] - my)))
        short = str(short_names[sel][0])
        found.append((int(sel.sum()), str(long_name), short, float(px[sel][k]), float(py[sel][k])))
    found.sort(key=lambda t: (-t[0], t[1]))
    return [(name, short, x, y) for _, name, short, x, y in found]


def _bright_stars(
    wcs: CelestialWCS,
    width: int,
    height: int,
    geometry: FieldGeometry,
    *,
    max_vmag: float,
    max_count: int,
) -> list[Annotation]:
    cat = star_catalogue()
    idx = _near(cat.xyz, geometry, 0.0)
    idx = idx[cat.vmag[idx] <= max_vmag]
    x, y, ok = _project(wcs, cat.ra[idx], cat.dec[idx], geometry.pixscale_deg)
    ok &= _inside(x, y, np.zeros(len(idx)), width, height)
    keep = np.flatnonzero(ok)
    keep = keep[np.argsort(cat.vmag[idx[keep]], kind="stable")][:max_count]
    out = []
    for k in keep:
        i = idx[k]
        names = [n for n in (cat.common[i], cat.designation[i]) if n]
        out.append(
            Annotation(
                type="bright",
                names=names,
                pixelx=float(x[k]),
                pixely=float(y[k]),
                radius=0.0,
                vmag=float(cat.vmag[i]),
            )
        )
    return out


def _deep_sky(
    wcs: CelestialWCS,
    width: int,
    height: int,
    geometry: FieldGeometry,
    *,
    max_count: int,
    min_size_fraction: float,
) -> list[Annotation]:
    cat = deep_sky_catalogue()
    idx = _near(cat.xyz, geometry, cat.radius_deg)
    min_radius_deg = 0.5 * min_size_fraction * geometry.long_side_deg
    big_enough = cat.radius_deg[idx] >= min_radius_deg
    if min_radius_deg <= 0.5 / 60.0:
        # In fields under ~25 arcmin even objects of unknown size are worth naming.
        big_enough |= cat.radius_deg[idx] == 0
    # A common name earns a place even when somewhat small, but not a speck in
    # a 30-degree field.
    named = cat.named[idx] & (cat.radius_deg[idx] >= 0.25 * min_radius_deg)
    idx = idx[big_enough | cat.messier[idx] | named]
    x, y, ok = _project(wcs, cat.ra[idx], cat.dec[idx], geometry.pixscale_deg)
    radius_px = cat.radius_deg[idx] / geometry.pixscale_deg
    ok &= _inside(x, y, radius_px, width, height)
    keep = np.flatnonzero(ok)
    # Messier first, then objects with common names, then the brightest, then the largest.
    order = sorted(
        keep.tolist(),
        key=lambda k: (
            not cat.messier[idx[k]],
            not cat.named[idx[k]],
            cat.mag[idx[k]],
            -cat.radius_deg[idx[k]],
            cat.names[idx[k]][0],
        ),
    )[:max_count]
    return [
        Annotation(
            type=cat.types[idx[k]],
            names=list(cat.names[idx[k]]),
            pixelx=float(x[k]),
            pixely=float(y[k]),
            radius=float(radius_px[k]),
        )
        for k in order
    ]


def _star_label(names: Sequence[str]) -> str:
    if len(names) >= 2:
        return f"The star {names[0]} ({names[1]})"
    return f"The star {names[0]}"


def objects_in_field(
    wcs: CelestialWCS,
    width: int,
    height: int,
    *,
    max_stars_vmag: float = DEFAULT_MAX_STARS_VMAG,
    max_stars: int = DEFAULT_MAX_STARS,
    max_deep_sky: int = DEFAULT_MAX_DEEP_SKY,
    min_size_fraction: float = DEFAULT_MIN_SIZE_FRACTION,
) -> tuple[list[str], list[Annotation]]:
    """Name the constellations, bright stars and deep-sky objects in a field.

    Parameters
    ----------
    wcs : astropy.wcs.WCS or another CelestialWCS (the fast path's TanSip)
        The solved celestial WCS, 1-based FITS pixel convention; SIP distortion
        is honoured (``all_world2pix``).
    width, height : int
        Image size in pixels.
    max_stars_vmag : float, optional
        Faintest V magnitude of named bright stars to list.
    max_stars : int, optional
        At most this many bright stars, brightest first.
    max_deep_sky : int, optional
        At most this many deep-sky objects: Messier objects first, then those
        with a common name, then by brightness and size.
    min_size_fraction : float, optional
        Deep-sky objects without a Messier number are listed only when their
        major axis is at least this fraction of the longer side of the field
        (a quarter of it for objects with a common name), so wide fields stay
        readable.

    Returns
    -------
    names : list of str
        nova's ``objects_in_field`` strings, no duplicates:
        ``"Part of the constellation Orion (Ori)"`` for each constellation the
        field overlaps (largest share first), ``"The star Alnitak (ζ Ori / 50
        Ori)"`` for bright stars (brightest first), then every name of every
        deep-sky object (``"IC 434"``, ``"Orion B"``, ``"Flame Nebula"``, ...).
    annotations : list of Annotation
        One per constellation (type ``"constellation"``, label position, radius
        0), bright star (``"bright"``, with ``vmag``, radius 0) and deep-sky
        object (``"ngc"``, ``"ic"``, ``"m"`` for Messier objects outside NGC/IC,
        ``"other"``; radius = half the major axis in pixels, 0 when unknown).
        ``pixelx``/``pixely`` are 1-based FITS pixel coordinates, like
        ``plot-constellations`` prints them.

    Raises
    ------
    skysolve.errors.BadInputError
        The WCS is not celestial or the image size is not positive.
    """
    if max_stars < 0 or max_deep_sky < 0:
        raise BadInputError("max_stars and max_deep_sky must not be negative")
    if not (0 <= min_size_fraction <= 1):
        raise BadInputError("min_size_fraction must be between 0 and 1")
    width, height = int(width), int(height)
    geometry = field_geometry(wcs, width, height)

    annotations: list[Annotation] = []
    names: list[str] = []
    for long_name, short, x, y in _constellations(wcs, width, height):
        annotations.append(
            Annotation(
                type="constellation", names=[long_name, short], pixelx=x, pixely=y, radius=0.0
            )
        )
        names.append(f"Part of the constellation {long_name} ({short})")
    for star in _bright_stars(
        wcs, width, height, geometry, max_vmag=max_stars_vmag, max_count=max_stars
    ):
        annotations.append(star)
        names.append(_star_label(star.names))
    for obj in _deep_sky(
        wcs,
        width,
        height,
        geometry,
        max_count=max_deep_sky,
        min_size_fraction=min_size_fraction,
    ):
        annotations.append(obj)
        names.extend(obj.names)
    return list(dict.fromkeys(names)), annotations
