"""A small synthetic sky with its own 5200-style index files and a local mirror.

A seeded dense star catalogue over 3 degrees of sky (inside astrometry.net's
healpix tile 25 at nside 2) is turned into index files ``index-5200-25.fits``
... ``index-5204-25.fits`` by ``skysolve``'s own builder (astrometry.net's
``build-astrometry-index``), once per test session.  A 0.2 degree field
rendered from the same catalogue is solvable with them and with nothing
Debian installs.  :class:`MirrorHandler` serves the files the way
astrometry.net's mirrors do, with HTTP ranges, and can misbehave on request.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from astropy.io import fits

#: Centre of the synthetic sky: the centre of healpix 25 at nside 2.
SKY_RA, SKY_DEC, SKY_RADIUS = 157.5, 0.0, 1.5
#: The 0.2 x 0.15 degree field solved in the tests.
FIELD_RA, FIELD_DEC, FIELD_PIXSCALE = 157.62, 0.27, 0.9
FIELD_W, FIELD_H = 800, 600
TILE, NSIDE = 25, 2
SCALES = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class SyntheticSky:
    catalogue: Path
    mirror: Path
    field: Path
    files: tuple[str, ...]


def make_catalogue(path: Path, *, stars: int = 25000, seed: int = 11) -> Path:
    """Stars uniform on a spherical cap, magnitudes mostly faint, as a FITS table."""
    rng = np.random.default_rng(seed)
    cos_r = np.cos(np.radians(SKY_RADIUS))
    z = rng.uniform(cos_r, 1.0, stars)
    phi = rng.uniform(0.0, 2.0 * np.pi, stars)
    s = np.sqrt(1.0 - z * z)
    a, d = np.radians(SKY_RA), np.radians(SKY_DEC)
    centre = np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    east = np.array([-np.sin(a), np.cos(a), 0.0])
    north = np.cross(centre, east)
    v = z[:, None] * centre + (s * np.cos(phi))[:, None] * east + (s * np.sin(phi))[:, None] * north
    ra = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(v[:, 2]))
    mag = 10.0 + 6.0 * rng.power(3.0, stars)
    cols = [
        fits.Column(name="RA", format="D", array=ra),
        fits.Column(name="DEC", format="D", array=dec),
        fits.Column(name="MAG", format="E", array=mag),
    ]
    fits.BinTableHDU.from_columns(cols).writeto(path, overwrite=True)
    return path


def render_field(catalogue: Path, path: Path) -> Path:
    from skysolve.engine.indexes.catalog import StarCatalog
    from testfields.synthetic import FieldSpec, make_field, write_fits

    table = fits.getdata(catalogue, 1)
    stars = StarCatalog(
        ra=np.asarray(table["RA"], float),
        dec=np.asarray(table["DEC"], float),
        mag=np.asarray(table["MAG"], float),
        source=catalogue.name,
    )
    spec = FieldSpec(
        ra=FIELD_RA, dec=FIELD_DEC, pixscale=FIELD_PIXSCALE, width=FIELD_W, height=FIELD_H,
        rotation=30.0, seed=3, max_stars=300,
    )  # fmt: skip
    write_fits(make_field(spec, catalog=stars), path)
    return path


def build_sky(root: Path) -> SyntheticSky:
    from skysolve.engine.indexes.build import build

    root.mkdir(parents=True, exist_ok=True)
    catalogue = make_catalogue(root / "catalogue.fits")
    mirror = root / "mirror"
    built = build(catalogue, mirror, scales=SCALES, index_id=5200, nside=NSIDE)
    names = tuple(sorted(p.name for p in built))
    assert names == tuple(f"index-520{s}-{TILE:02d}.fits" for s in SCALES), names
    sums = "".join(f"{hashlib.sha256((mirror / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    (mirror / "SHA256SUMS").write_text(sums)
    return SyntheticSky(catalogue, mirror, render_field(catalogue, root / "field.fits"), names)


def sky_fixture(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSky:
    return build_sky(tmp_path_factory.mktemp("synthetic-sky"))


@dataclass
class Behaviour:
    """How the mirror misbehaves, per file name; requests are logged."""

    cut_after: dict[str, int] = field(default_factory=dict)
    truncate_to: dict[str, int] = field(default_factory=dict)
    not_fits: set[str] = field(default_factory=set)
    wrong_sum: set[str] = field(default_factory=set)
    no_ranges: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class MirrorHandler(BaseHTTPRequestHandler):
    """Serves ``root`` like astrometry.net's mirrors: one URL per file name."""

    root: ClassVar[Path]
    behaviour: ClassVar[Behaviour]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.lstrip("/").split("?")[0]
        self.behaviour.requests.append((name, self.headers.get("Range")))
        path = self.root / name
        if "/" in name or not path.is_file():
            self.send_error(404)
            return
        if name == "SHA256SUMS" and self.behaviour.wrong_sum:
            text = path.read_text()
            for bad in self.behaviour.wrong_sum:
                text = re.sub(rf"^[0-9a-f]+(  {re.escape(bad)})$", r"{}\1".format("0" * 64), text,
                              flags=re.MULTILINE)  # fmt: skip
            self._send_bytes(text.encode())
            return
        if name in self.behaviour.not_fits:
            self._send_bytes(b"<html><body>Service moved</body></html>\n" * 100)
            return
        size = self.behaviour.truncate_to.get(name, path.stat().st_size)
        start = 0
        ranged = self.headers.get("Range")
        if ranged and not self.behaviour.no_ranges:
            m = re.match(r"bytes=(\d+)-$", ranged)
            assert m is not None, ranged
            start = int(m.group(1))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        cut = self.behaviour.cut_after.pop(name, None)
        with path.open("rb") as f:
            f.seek(start)
            left = size - start if cut is None else min(size - start, cut)
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                self.wfile.write(chunk)
                left -= len(chunk)
        if cut is not None:
            # Hang up mid-body, as a dropped connection does.
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)

    def _send_bytes(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def mirror_handler(root: Path, behaviour: Behaviour) -> type[MirrorHandler]:
    return type("Mirror", (MirrorHandler,), {"root": root, "behaviour": behaviour})


def copy_index_dir(src: Path, dest: Path, names: tuple[str, ...]) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copyfile(src / n, dest / n)
    return dest


def index_env(first: Path) -> dict[str, str]:
    """Environment whose index directories are ``first`` (empty at first) then Debian's."""
    env = dict(os.environ)
    env["SKYSOLVE_INDEX_DIRS"] = f"{first}{os.pathsep}/usr/share/astrometry"
    return env
