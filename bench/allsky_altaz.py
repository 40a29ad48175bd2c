"""The corpus's all-sky frames with a known site, in altitude and azimuth, against astropy.

The MAGIC frames (La Palma) and the IceAct frame (the South Pole) carry their
time in the header but not their site: the bench adds the site (``SITELAT``,
``SITELONG``), solves each frame (no camera profiles), and prints, per frame,
the pointing lens.json gives, the largest difference between the map (the model's
pixel of each matched star taken back to altitude and azimuth) and astropy's
``AltAz`` (``pressure=0``) for that star, the median and 90th percentile of the
same at the star's measured pixel in altaz.fits (the fit's residual and the
rounding to a pixel), Polaris's altitude and azimuth from the map and from
astropy, and the time of altaz.fits's planes (model every 4 px and interpolated,
and the model at every pixel) with their largest difference.  Then the two MAGIC
frames' altaz.fits against each other: one camera, 6 h 40 min apart.

Run: ``flock -x /tmp/skysolve-bench.lock nice .venv/bin/python bench/allsky_altaz.py``
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "images" / "corpus"
#: Frame, latitude, east longitude (the cameras' published sites).
FRAMES = [
    ("asc_magic_2101.fits", 28.7619, -17.8906),
    ("asc_magic_0341.fits", 28.7619, -17.8906),
    ("asc_iceact_starry.fits", -89.9944, -63.453),
]
POLARIS = (37.95456067, 89.26410897)


def separation(a1: Any, z1: Any, a2: Any, z2: Any) -> np.ndarray:
    a1, z1, a2, z2 = (np.radians(np.asarray(v, float)) for v in (a1, z1, a2, z2))
    cos = np.sin(a1) * np.sin(a2) + np.cos(a1) * np.cos(a2) * np.cos(z1 - z2)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def astropy_altaz(ra: Any, dec: Any, when: str, lat: float, lon: float) -> tuple[Any, Any]:
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord
    from astropy.time import Time

    frame = AltAz(
        obstime=Time(when),
        location=EarthLocation(lat=lat * u.deg, lon=lon * u.deg),
        pressure=0 * u.hPa,
    )
    got = SkyCoord(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg).transform_to(frame)
    return got.alt.deg, got.az.deg


def main(argv: list[str] | None = None) -> int:
    from astropy.io import fits
    from astropy.utils import iers

    from skysolve.engine.allsky.horizontal import altaz_planes, horizon_at, pixel_to_altaz
    from skysolve.engine.allsky.model import LensModel
    from skysolve.engine.allsky.solver import allsky_attempt
    from skysolve.engine.inputs.fitscards import astropy_header
    from skysolve.engine.inputs.images import load_image

    iers.conf.auto_download = False
    warnings.simplefilter("ignore")
    corpus = Path(argv[0]) if argv else DEFAULT_CORPUS
    planes: dict[str, np.ndarray] = {}
    print(
        "| frame | axis alt, az (deg) | map vs astropy, max (arcsec) | altaz.fits at the "
        "stars, median / 90 % (deg) | Polaris map / astropy (alt, az deg) | planes every "
        "4 px / every px (s) | their largest difference (deg) |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, lat, lon in FRAMES:
            image = load_image(corpus / name)
            assert image.header is not None  # FITS frames
            header = astropy_header(image.header).copy()  # with the site added
            header["SITELAT"], header["SITELONG"] = lat, lon
            image = dataclasses.replace(image, header=header)
            outcome, _ = allsky_attempt(image, Path(tmp) / name, timeout=30, profiles=False)
            if not outcome.solved:
                print(f"| {name} | not solved | | | | | |")
                continue
            doc = json.loads(outcome.files["lens"].read_text())
            model = LensModel.from_dict(doc["lens_model"])
            when = doc["horizontal"]["time"]  # mid-exposure when the header says the exposure
            horizon = horizon_at(when, lat, lon)
            stars = [s for s in doc["stars"] if s["off_axis_deg"] < 89.0]
            ra = np.array([s["ra"] for s in stars])
            dec = np.array([s["dec"] for s in stars])
            ref_alt, ref_az = astropy_altaz(ra, dec, when, lat, lon)
            mx, my = model.world_to_pixel(ra, dec)
            alt, az = pixel_to_altaz(model, horizon, mx, my)
            worst = float(np.nanmax(separation(alt, az, ref_alt, ref_az))) * 3600.0
            cube = fits.getdata(outcome.files["altaz"]).astype(float)
            planes[name] = cube
            sx = np.array([round(s["x"]) for s in stars])
            sy = np.array([round(s["y"]) for s in stars])
            at = separation(cube[0][sy, sx], cube[1][sy, sx], ref_alt, ref_az)
            at = at[np.isfinite(at)]
            px, py = model.world_to_pixel(np.array([POLARIS[0]]), np.array([POLARIS[1]]))
            pa, pz = pixel_to_altaz(model, horizon, px, py)
            qa, qz = astropy_altaz([POLARIS[0]], [POLARIS[1]], when, lat, lon)
            polaris = (
                f"{pa[0]:.4f}, {pz[0]:.4f} / {qa[0]:.4f}, {qz[0]:.4f}" if qa[0] > 0 else "below"
            )
            h, w = image.data.shape[:2]
            started = time.monotonic()
            fast = altaz_planes(model, horizon, w, h)
            quick = time.monotonic() - started
            started = time.monotonic()
            exact = altaz_planes(model, horizon, w, h, step=1)
            slow = time.monotonic() - started
            diff = float(np.nanmax(separation(fast[0], fast[1], exact[0], exact[1])))
            p = doc["horizontal"]["pointing"]
            print(
                f"| {name} | {p['altitude_deg']:.2f}, {p['azimuth_deg']:.1f} | {worst:.1f} | "
                f"{np.median(at):.3f} / {np.percentile(at, 90):.3f} ({len(at)} stars) | "
                f"{polaris} | {quick:.2f} / {slow:.2f} | {diff:.4f} |"
            )
    a, b = planes.get(FRAMES[0][0]), planes.get(FRAMES[1][0])
    if a is not None and b is not None:
        sep = separation(a[0], a[1], b[0], b[1])
        print()
        print("| MAGIC 21:01 against 03:41, altitude at least | median | 95 % | largest (deg) |")
        print("|---|---|---|---|")
        for lowest in (0, 10, 20, 30):
            keep = a[0] >= lowest
            s = sep[keep]
            print(
                f"| {lowest}° | {np.nanmedian(s):.3f} | {np.nanpercentile(s, 95):.3f} "
                f"| {np.nanmax(s):.3f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
