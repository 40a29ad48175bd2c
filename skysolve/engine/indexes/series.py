"""astrometry.net's published index series and which of their files a field needs.

astrometry.net publishes its index files in *series*: 4100 (Tycho-2, scales
7-19, one file per scale for the whole sky), 4200 (2MASS, scales 0-19) and
5200 (Tycho-2 + Gaia DR2, "LITE", scales 0-6).  Scale number ``s`` holds quads
(groups of four stars) of a fixed range of diameters, from 2-2.8 arcmin at
scale 0 up in steps of sqrt(2) to 1400-2000 arcmin at scale 19.  Fine scales
are split into healpix tiles (``index-5203-07.fits`` is scale 3, tile 7 at
nside 2), so a telescope that images one part of the sky needs only the
tiles of that part.

astrometry.net's rule for choosing: a field is solved by index files whose
quads are 10% to 100% of the field's size.  This module applies that rule
(:func:`recommend`) and names the files of a series (:func:`files_for`);
:mod:`~skysolve.engine.indexes.fetch` downloads them,
:mod:`~skysolve.engine.indexes.build` builds custom ones and
:mod:`~skysolve.engine.indexes.installed` checks and removes installed ones.
No Django here: the ``skysolve index`` command and the web page call it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skysolve.engine.indexes.files import IndexFile
from skysolve.engine.indexes.healpix import healpixes_within, tile_count
from skysolve.errors import (
    InvalidParameterError,
)

#: Quad diameters (arcmin) of each scale number, astrometry.net's presets.
QUAD_ARCMIN: dict[int, tuple[float, float]] = {
    0: (2.0, 2.8), 1: (2.8, 4.0), 2: (4.0, 5.6), 3: (5.6, 8.0), 4: (8.0, 11.0),
    5: (11.0, 16.0), 6: (16.0, 22.0), 7: (22.0, 30.0), 8: (30.0, 42.0), 9: (42.0, 60.0),
    10: (60.0, 85.0), 11: (85.0, 120.0), 12: (120.0, 170.0), 13: (170.0, 240.0),
    14: (240.0, 340.0), 15: (340.0, 480.0), 16: (480.0, 680.0), 17: (680.0, 1000.0),
    18: (1000.0, 1400.0), 19: (1400.0, 2000.0),
}  # fmt: skip


#: astrometry.net's rule: quads of 10% to 100% of the field's size.
MIN_QUAD_FRACTION = 0.1


MAX_QUAD_FRACTION = 1.0


#: The scales most fields need at least one of: quads a quarter to half the field.
CORE_QUAD_FRACTIONS = (0.25, 0.5)


INDEX_NAME = re.compile(r"^index-(\d{4})(?:-(\d{2}))?\.fits$")

#: Epoch (Julian year) of the stars of the 4100 series (Debian's
#: ``index-tycho2-NN`` files are its scales 7-19): Tycho-2's J2000 positions.
TYCHO2_EPOCH = 2000.0
#: The names of those files.
TYCHO2_INDEX = re.compile(r"^index-(?:tycho2-\d{2}|41\d{2})(?:\.littleendian)?\.fits$")


def index_catalogue(name: str | None) -> tuple[str | None, float | None]:
    """The catalogue of an index file's stars and their epoch, by the file's
    name: ``("tycho2", TYCHO2_EPOCH)`` for the Tycho-2 files, ``(None, None)``
    for any other (2MASS, the 5200 series' Tycho-2 and Gaia DR2 mixed, a
    catalogue of the user's own): not known."""
    if name is not None and TYCHO2_INDEX.match(name):
        return "tycho2", TYCHO2_EPOCH
    return None, None


@dataclass(frozen=True)
class Series:
    """One of astrometry.net's index series."""

    number: int
    catalogue: str
    scales: tuple[int, ...]
    #: Healpix nside of each tiled scale; scales not listed are one whole-sky file.
    nside: Mapping[int, int]
    #: Whole-sky size of each scale in bytes.  For 4100 these are the files'
    #: real sizes; for 4200 and 5200 estimates (see docs/running.md): ``fetch`` prints
    #: the mirror's own sizes.
    sky_bytes: Mapping[int, int]
    sizes_exact: bool

    def index_id(self, scale: int) -> int:
        return self.number + scale

    def file_name(self, scale: int, tile: int | None = None) -> str:
        if self.nside.get(scale, 0):
            if tile is None:
                raise InvalidParameterError(f"scale {scale} of {self.number} is tiled")
            return f"index-{self.index_id(scale):04d}-{tile:02d}.fits"
        return f"index-{self.index_id(scale):04d}.fits"


def _halving(scale0_bytes: float, scales: Iterable[int]) -> dict[int, int]:
    # Each scale step is sqrt(2) in quad size, so twice the area per quad and
    # about half the quads and stars: the file halves (4100's real sizes halve
    # within 5-10% per step from scale 7 to 11).
    return {s: int(scale0_bytes / 2.0**s) for s in scales}


SERIES: dict[int, Series] = {
    4100: Series(
        4100,
        "Tycho-2",
        tuple(range(7, 20)),
        {},
        {
            7: 140_644_800,
            8: 78_831_360,
            9: 41_060_160,
            10: 20_514_240,
            11: 8_015_040,
            12: 4_164_480,
            13: 2_154_240,
            14: 1_097_280,
            15: 593_280,
            16: 336_960,
            17: 210_240,
            18: 161_280,
            19: 129_600,
        },  # fmt: skip
        True,
    ),
    4200: Series(
        4200,
        "2MASS",
        tuple(range(0, 20)),
        {**{s: 2 for s in range(0, 5)}, **{s: 1 for s in range(5, 8)}},
        _halving(16e9, range(0, 20)),
        False,
    ),
    5200: Series(
        5200,
        "Tycho-2 + Gaia DR2 (LITE)",
        tuple(range(0, 7)),
        {s: 2 for s in range(0, 7)},
        _halving(5.0e9, range(0, 7)),
        False,
    ),
}


def scales_for_field(
    fov_low_arcmin: float, fov_high_arcmin: float, fractions: tuple[float, float]
) -> list[int]:
    """Scale numbers whose quads overlap ``fractions`` of the field sizes given."""
    if not (0 < fov_low_arcmin <= fov_high_arcmin) or not math.isfinite(fov_high_arcmin):
        raise InvalidParameterError(
            f"field sizes must be positive and ordered, not {fov_low_arcmin}-{fov_high_arcmin}'"
        )
    lo = fractions[0] * fov_low_arcmin
    hi = fractions[1] * fov_high_arcmin
    return [s for s, (qlo, qhi) in QUAD_ARCMIN.items() if qhi >= lo and qlo <= hi]


def default_series_for(scale: int) -> int:
    """5200 for the fine scales only it and 4200 have; 4100 (small, whole-sky) above."""
    return 5200 if scale < 7 else 4100


@dataclass(frozen=True)
class Recommendation:
    """One scale of one series: what to have, how big it is, what is installed."""

    series: int
    scale: int
    quad_arcmin: tuple[float, float]
    required: bool
    nside: int
    files: tuple[str, ...]
    bytes: int
    bytes_exact: bool
    installed: tuple[str, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        have = set(self.installed)
        return tuple(f for f in self.files if f not in have)

    def to_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "scale": self.scale,
            "index_id": self.series + self.scale,
            "quad_arcmin": list(self.quad_arcmin),
            "required": self.required,
            "nside": self.nside,
            "files": len(self.files),
            "bytes": self.bytes,
            "bytes_exact": self.bytes_exact,
            "installed": len(self.installed),
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class RecommendationSet:
    fov_low_deg: float
    fov_high_deg: float
    center: tuple[float, float] | None
    radius: float | None
    items: tuple[Recommendation, ...]

    def commands(self, *, required_only: bool = False) -> list[str]:
        """``skysolve index fetch`` commands for what is missing."""
        by_series: dict[int, list[int]] = {}
        for item in self.items:
            if item.missing and (item.required or not required_only):
                by_series.setdefault(item.series, []).append(item.scale)
        out = []
        for series, scales in sorted(by_series.items()):
            cmd = f"skysolve index fetch --series {series} --scales {','.join(map(str, scales))}"
            tiled = any(SERIES[series].nside.get(s, 0) for s in scales)
            if tiled and self.center is not None and self.radius is not None:
                cmd += (
                    f" --ra {self.center[0]:.4f} --dec {self.center[1]:.4f}"
                    f" --radius {self.radius:.3g}"
                )
            out.append(cmd)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "fov_deg": [self.fov_low_deg, self.fov_high_deg],
            "position": None
            if self.center is None
            else {"ra": self.center[0], "dec": self.center[1], "radius": self.radius},
            "scales": [item.to_json() for item in self.items],
            "fetch_commands": self.commands(),
            "required_fetch_commands": self.commands(required_only=True),
        }


def recommend(
    fov_low_deg: float,
    fov_high_deg: float | None = None,
    *,
    installed: Sequence[IndexFile] = (),
    center: tuple[float, float] | None = None,
    radius: float | None = None,
    series: int | None = None,
) -> RecommendationSet:
    """Which series and scales fields of these widths need, by the 10-100% rule.

    ``required``: the scales whose quads are a quarter to half the field, one of
    which nearly every field needs; the others are recommended.  With a
    position (``center``, ``radius`` degrees), tiled scales count only the
    tiles of that region.  ``series`` forces the series for scales it has.
    """
    high = fov_low_deg if fov_high_deg is None else fov_high_deg
    lo_arcmin, hi_arcmin = fov_low_deg * 60.0, high * 60.0
    wanted = scales_for_field(lo_arcmin, hi_arcmin, (MIN_QUAD_FRACTION, MAX_QUAD_FRACTION))
    core = set(scales_for_field(lo_arcmin, hi_arcmin, CORE_QUAD_FRACTIONS))
    if series is not None and series not in SERIES:
        raise InvalidParameterError(f"unknown series {series}: one of {sorted(SERIES)}")
    have: dict[tuple[int, int], list[str]] = {}
    for ix in installed:
        if ix.series is not None and ix.scale_number is not None:
            tile = ix.healpix if ix.tiled else -1
            have.setdefault((ix.index_id, tile), []).append(ix.name)
    items = []
    for scale in wanted:
        number = series if series is not None and scale in SERIES[series].scales else None
        chosen = SERIES[number or default_series_for(scale)]
        nside = chosen.nside.get(scale, 0)
        if nside:
            if center is not None and radius is not None:
                tiles = healpixes_within(center[0], center[1], radius, nside)
            else:
                tiles = tuple(range(tile_count(nside)))
            files = tuple(chosen.file_name(scale, t) for t in tiles)
            keys = [(chosen.index_id(scale), t) for t in tiles]
            size = chosen.sky_bytes[scale] * len(tiles) // tile_count(nside)
        else:
            files = (chosen.file_name(scale),)
            keys = [(chosen.index_id(scale), -1)]
            size = chosen.sky_bytes[scale]
        installed_names = tuple(
            name for key, fname in zip(keys, files, strict=True) if key in have for name in [fname]
        )
        items.append(
            Recommendation(
                series=chosen.number,
                scale=scale,
                quad_arcmin=QUAD_ARCMIN[scale],
                required=scale in core,
                nside=nside,
                files=files,
                bytes=size,
                bytes_exact=chosen.sizes_exact,
                installed=installed_names,
            )
        )
    return RecommendationSet(fov_low_deg, high, center, radius, tuple(items))


def fix_command(
    fov_low_deg: float,
    fov_high_deg: float,
    *,
    installed: Sequence[IndexFile],
    center: tuple[float, float] | None = None,
    radius: float | None = None,
) -> str:
    """The ``skysolve index fetch`` command(s) that would let such a field solve."""
    rec = recommend(fov_low_deg, fov_high_deg, installed=installed, center=center, radius=radius)
    commands = rec.commands(required_only=True) or rec.commands()
    return " && ".join(commands)


def field_of_camera(
    *, focal_mm: float, pixel_um: float, pixels: tuple[int, int]
) -> tuple[float, float]:
    """Field width and height (degrees) of a camera behind a telescope."""
    if focal_mm <= 0 or pixel_um <= 0 or min(pixels) <= 0:
        raise InvalidParameterError("focal length, pixel size and pixel counts must be positive")
    arcsec_per_pixel = 206.264806 * pixel_um / focal_mm
    return pixels[0] * arcsec_per_pixel / 3600.0, pixels[1] * arcsec_per_pixel / 3600.0


def files_for(
    series: int,
    scales: Sequence[int],
    *,
    center: tuple[float, float] | None = None,
    radius: float | None = None,
) -> list[str]:
    """File names of these scales of a series, only the tiles of a region if given."""
    if series not in SERIES:
        raise InvalidParameterError(f"unknown series {series}: one of {sorted(SERIES)}")
    chosen = SERIES[series]
    names = []
    for scale in scales:
        if scale not in chosen.scales:
            raise InvalidParameterError(
                f"series {series} has scales {chosen.scales[0]}-{chosen.scales[-1]}, not {scale}"
            )
        nside = chosen.nside.get(scale, 0)
        if not nside:
            names.append(chosen.file_name(scale))
            continue
        if center is not None:
            tiles = healpixes_within(center[0], center[1], radius or 0.0, nside)
        else:
            tiles = tuple(range(tile_count(nside)))
        names += [chosen.file_name(scale, t) for t in tiles]
    return names
