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


def test_it_zooms_from_the_whole_sky_to_the_field() -> None:
    from skysolve.front.skymap import sky_plot_html, zoom_levels

    assert zoom_levels(1.0) == [45.0, 10.0, 1.6]
    assert zoom_levels(20.0) == [32.0]
    # A 2 x 1.5 degree field near the Big Dipper's handle.
    corners = [(206.0, 49.0), (209.0, 49.0), (209.0, 50.5), (206.0, 50.5), (206.0, 49.0)]
    html = sky_plot_html(207.5, 49.75, 1.25, corners)
    levels = html.split('<div class="level"')[1:]
    assert len(levels) == 1 + len(zoom_levels(1.25))
    assert 'data-label="whole sky"' in levels[0]
    closest = ET.fromstring(levels[-1][levels[-1].index("<svg") : levels[-1].index("</svg>") + 6])
    outline = [p for p in closest.iter(f"{SVG}polyline") if p.get("class") == "field"]
    assert len(outline) == 1
    xs = [float(xy.split(",")[0]) for xy in (outline[0].get("points") or "").split()]
    assert max(xs) - min(xs) > 200  # the field fills a good part of the 480-pixel view
    figures = [p for p in closest.iter(f"{SVG}polyline") if p.get("class") == "figure"]
    assert figures, "Alkaid's line of Ursa Major crosses the field"


def test_it_maps_many_fields_each_a_link() -> None:
    from skysolve.front.skymap import MapField, fields_map_svg

    svg = fields_map_svg(
        [
            MapField(187.0, 56.0, 20.0, "/results/5", "a.jpg"),
            MapField(83.8, -5.4, 0.5, "/results/6", "b & c.jpg"),
        ]
    )
    root = ET.fromstring(svg)
    links = list(root.iter(f"{SVG}a"))
    assert [a.get("href") for a in links] == ["/results/5", "/results/6"]
    assert links[1].find(f"{SVG}title").text == "b & c.jpg"  # type: ignore[union-attr]
    assert any(p.get("class") == "figure" for p in root.iter(f"{SVG}polyline"))
