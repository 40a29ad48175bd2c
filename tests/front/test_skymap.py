from __future__ import annotations

import xml.etree.ElementTree as ET

from skysolve.front.skymap import sky_map_svg

SVG = "{http://www.w3.org/2000/svg}"


def test_it_is_valid_svg_with_the_field_marked() -> None:
    root = ET.fromstring(sky_map_svg(187.185, 56.713, 20.0))
    fields = [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "field"]
    assert len(fields) == 1
    assert root.find(f"{SVG}path[@class='marker']") is not None
    assert "RA 187.19°" in (root.get("aria-label") or "")


def test_it_cuts_a_field_that_crosses_the_map_edge() -> None:
    root = ET.fromstring(sky_map_svg(0.0, 0.0, 5.0))
    fields = [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "field"]
    assert len(fields) == 2
