"""An all-sky map drawn on the server as SVG, with the solved field marked.

Drawn in Python so the results page needs no JavaScript or tile server; the
markup holds only numbers we format ourselves, so it is safe to inline.
"""

from __future__ import annotations

import math

from skysolve.front.astro import hammer, small_circle

#: Half-width of the Hammer-Aitoff ellipse in projection units.
_XMAX = 2 * math.sqrt(2)
_YMAX = math.sqrt(2)


def _to_svg(ra: float, dec: float, width: float, height: float) -> tuple[float, float]:
    x, y = hammer(ra, dec)
    return (
        width / 2 + x / _XMAX * (width / 2 - 4),
        height / 2 - y / _YMAX * (height / 2 - 4),
    )


def _polylines(points: list[tuple[float, float]], width: float, height: float) -> list[str]:
    """SVG point lists, cut where a line would jump across the map's edge."""
    lines: list[list[tuple[float, float]]] = [[]]
    previous: tuple[float, float] | None = None
    for ra, dec in points:
        xy = _to_svg(ra, dec, width, height)
        if previous is not None and abs(xy[0] - previous[0]) > width / 3:
            lines.append([])
        lines[-1].append(xy)
        previous = xy
    return [" ".join(f"{x:.1f},{y:.1f}" for x, y in line) for line in lines if len(line) > 1]


def sky_map_svg(ra: float, dec: float, radius: float, *, width: int = 480) -> str:
    """SVG markup of the whole sky with a circle of ``radius`` degrees at (ra, dec)."""
    height = width // 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="skymap" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-label="All-sky map: the field is at RA {ra:.2f}°, Dec {dec:.2f}°">',
        f'<ellipse cx="{width / 2}" cy="{height / 2}" rx="{width / 2 - 4}" '
        f'ry="{height / 2 - 4}" class="sky"/>',
    ]
    for line_dec in (-60, -30, 0, 30, 60):
        pts = [(float(r), float(line_dec)) for r in range(0, 361, 5)]
        css = "equator" if line_dec == 0 else "grid"
        for line in _polylines(pts, width, height):
            parts.append(f'<polyline points="{line}" class="{css}"/>')
    for line_ra in range(0, 360, 30):
        # Stay just off 180 so the meridian on the edge is drawn on one side only.
        pts = [(line_ra + 1e-6, float(d)) for d in range(-90, 91, 5)]
        for line in _polylines(pts, width, height):
            parts.append(f'<polyline points="{line}" class="grid"/>')
    # 0h sits on the rim, where its label would be cut off.
    for label_ra in (90, 180, 270):
        x, y = _to_svg(label_ra + 1e-6, 0.0, width, height)
        parts.append(f'<text x="{x:.1f}" y="{y - 3:.1f}" class="label">{label_ra // 15}h</text>')
    # A field of a few arcminutes would vanish on this map, so it gets a
    # minimum size and a cross-hair as well as its true outline.
    outline = small_circle(ra, dec, max(radius, 1.5))
    for line in _polylines(outline, width, height):
        parts.append(f'<polyline points="{line}" class="field"/>')
    cx, cy = _to_svg(ra, dec, width, height)
    parts.append(
        f'<path d="M{cx - 9:.1f},{cy:.1f}h6M{cx + 3:.1f},{cy:.1f}h6'
        f'M{cx:.1f},{cy - 9:.1f}v6M{cx:.1f},{cy + 3:.1f}v6" class="marker"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)
