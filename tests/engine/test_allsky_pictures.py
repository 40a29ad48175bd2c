"""What an all-sky solution's annotated picture draws through the lens model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skysolve.engine.allsky.model import LensModel, radec_to_xyz
from skysolve.engine.allsky.solver import lens_lines
from skysolve.engine.products.constellations import stick_figures
from skysolve.engine.products.pictures import HORIZON_COLOR, make_pictures

WIDTH, HEIGHT = 900, 800
MODEL = LensModel("equidistant", 449.5, 399.5, 80.0, 30.0, 15.0, 240.0, k1=0.01)


def lens_file(tmp_path: Path, zenith: tuple[float, float] | None = None) -> Path:
    doc: dict[str, object] = {
        "lens_model": MODEL.to_dict(),
        "stars": [{"off_axis_deg": 5.0}, {"off_axis_deg": 84.0}],
    }
    if zenith is not None:
        doc["zenith"] = {"ra": zenith[0], "dec": zenith[1]}
    path = tmp_path / "lens.json"
    path.write_text(json.dumps(doc))
    return path


def horizon(lines: list) -> np.ndarray:
    [ring] = [ln for ln in lines if ln.kind == "horizon"]
    return np.vstack(ring.segments)


def test_without_a_site_the_horizon_is_the_circle_90_degrees_from_the_axis(
    tmp_path: Path,
) -> None:
    points = horizon(lens_lines(lens_file(tmp_path), WIDTH, HEIGHT))
    # 1-based pixels; every point through the model 90 degrees off axis.
    ra, dec = MODEL.pixel_to_world(points[:, 0] - 1.0, points[:, 1] - 1.0)
    assert np.allclose(MODEL.off_axis(ra, dec), 90.0, atol=0.01)
    radius = np.hypot(points[:, 0] - 1.0 - MODEL.center_x, points[:, 1] - 1.0 - MODEL.center_y)
    assert np.allclose(radius, MODEL.focal * MODEL.rho(np.array(math.pi / 2)), atol=0.01)


def test_with_time_and_site_the_horizon_is_altitude_zero(tmp_path: Path) -> None:
    zenith = (95.0, 40.0)  # 16 degrees from the axis: the horizon is off centre
    lines = lens_lines(lens_file(tmp_path, zenith), WIDTH, HEIGHT)
    points = horizon(lines)
    ra, dec = MODEL.pixel_to_world(points[:, 0] - 1.0, points[:, 1] - 1.0)
    up = radec_to_xyz(np.array(zenith[0]), np.array(zenith[1]))
    assert np.allclose(radec_to_xyz(ra, dec) @ up, 0.0, atol=1e-4)
    assert [ln.label for ln in lines if ln.kind == "horizon"] == ["horizon"]


@pytest.mark.skipif(not stick_figures(), reason="libastrometry's constellation lines are missing")
def test_constellation_figures_are_great_circles_curved_through_the_lens(tmp_path: Path) -> None:
    figures = [ln for ln in lens_lines(lens_file(tmp_path), WIDTH, HEIGHT) if ln.kind != "horizon"]
    assert len(figures) > 20  # most of a hemisphere
    bent = 0
    for figure in figures:
        for segment in figure.segments:
            ra, dec = MODEL.pixel_to_world(segment[:, 0] - 1.0, segment[:, 1] - 1.0)
            v = radec_to_xyz(ra, dec)
            # On one great circle: every point in the plane of the first and last.
            normal = np.cross(v[0], v[-1])
            if np.linalg.norm(normal) < 1e-6:
                continue
            assert np.max(np.abs(v @ (normal / np.linalg.norm(normal)))) < 1e-3
            assert np.all(MODEL.off_axis(ra, dec) <= 90.0 + 1e-6)
            chord = segment[-1] - segment[0]
            middle = segment[len(segment) // 2] - segment[0]
            bent += abs(chord[0] * middle[1] - chord[1] * middle[0]) / np.hypot(*chord) > 1.0
    assert bent > 10  # a fisheye bends long lines: they are not drawn straight


def test_the_annotated_picture_draws_the_lines(tmp_path: Path) -> None:
    lines = lens_lines(lens_file(tmp_path), WIDTH, HEIGHT)
    image = np.full((HEIGHT, WIDTH), 100.0, dtype=np.float32)
    files = make_pictures(
        image,
        color=None,
        bottom_up=False,
        wcs=None,
        sources=None,
        catalog_xy=None,
        annotations=[],
        out_dir=tmp_path / "plain",
    )
    assert "annotated_full" not in files  # no WCS: no annotated picture at all
    from testfields.synthetic import FieldSpec, make_wcs

    wcs = make_wcs(FieldSpec(ra=80.0, dec=30.0, pixscale=400.0, width=WIDTH, height=HEIGHT))
    files = make_pictures(
        image,
        color=None,
        bottom_up=False,
        wcs=wcs,
        sources=None,
        catalog_xy=None,
        annotations=[],
        out_dir=tmp_path / "lens",
        overlay=lines,
    )
    pixels = np.asarray(Image.open(files["annotated_full"]).convert("RGB")).astype(int)
    green = np.all(np.abs(pixels - np.array(HORIZON_COLOR)) < 40, axis=2)
    ys, xs = np.nonzero(green)
    assert len(xs) > 500
    # Where the horizon circle is: 90 degrees off axis.
    r = np.hypot(xs - MODEL.center_x, ys - MODEL.center_y)
    assert np.median(np.abs(r - MODEL.focal * MODEL.rho(np.array(math.pi / 2)))) < 3.0
