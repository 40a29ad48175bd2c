"""Maps of the sky drawn on the server as SVG: where a field is, and where many are.

* :func:`sky_map_svg`: the whole sky (Hammer-Aitoff) with the constellations'
  stick figures and one field marked.
* :func:`sky_plot_html`: the results page's zoomable plot: the whole sky, then
  views centred on the field (stereographic) narrowing down to the field's own
  outline, with constellation lines, an RA/Dec grid and the outline drawn from
  the image's corners.  ``skyplot.js`` steps between the views; without
  JavaScript they are all shown, one under the other.
* :func:`fields_map_svg`: the whole sky with many fields, each a link to its
  results (a user's or an album's images).

Drawn in Python so the pages need no JavaScript library, tile server or CDN;
the markup holds only numbers we format ourselves and escaped text, so it is
safe to inline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from skysolve.engine.products.constellations import stick_figures
from skysolve.front.astro import angle_text, hammer, small_circle

#: Half-width of the Hammer-Aitoff ellipse in projection units.
_XMAX = 2 * math.sqrt(2)
_YMAX = math.sqrt(2)

Point = tuple[float, float]


def _to_svg(ra: float, dec: float, width: float, height: float) -> Point:
    x, y = hammer(ra, dec)
    return (
        width / 2 + x / _XMAX * (width / 2 - 4),
        height / 2 - y / _YMAX * (height / 2 - 4),
    )


def _polylines(points: Iterable[Point], width: float, height: float) -> list[str]:
    """SVG point lists, cut where a line would jump across the map's edge."""
    lines: list[list[Point]] = [[]]
    previous: Point | None = None
    for ra, dec in points:
        xy = _to_svg(ra, dec, width, height)
        if previous is not None and abs(xy[0] - previous[0]) > width / 3:
            lines.append([])
        lines[-1].append(xy)
        previous = xy
    return [" ".join(f"{x:.1f},{y:.1f}" for x, y in line) for line in lines if len(line) > 1]


def _great_circle(ra1: float, dec1: float, ra2: float, dec2: float, steps: int) -> list[Point]:
    """Points along the shorter great-circle arc between two positions (degrees)."""
    a = _unit(ra1, dec1)
    b = _unit(ra2, dec2)
    points = []
    for i in range(steps + 1):
        t = i / steps
        v = [a[k] * (1 - t) + b[k] * t for k in range(3)]
        norm = math.sqrt(sum(c * c for c in v)) or 1.0
        points.append(
            (
                math.degrees(math.atan2(v[1], v[0])) % 360.0,
                math.degrees(math.asin(max(-1.0, min(1.0, v[2] / norm)))),
            )
        )
    return points


def _arc_near(
    ra1: float, dec1: float, ra2: float, dec2: float, centre: Point, *, reach: float
) -> list[Point]:
    """Points along the arc between two stars, only where it passes within ``reach``
    degrees of ``centre``, finely enough to look straight at any zoom; [] if it never does.
    """
    a, b, c = _unit(ra1, dec1), _unit(ra2, dec2), _unit(*centre)
    n = _cross(a, b)
    length = math.atan2(_norm(n), _dot(a, b))
    if length < 1e-9:
        return []
    n = _scale(n, 1 / _norm(n))
    u = _cross(n, a)  # a cos t + u sin t runs along the arc from a (t = 0) to b (t = length)
    # The arc's point nearest the centre, by its angle along the great circle.
    nearest = min(max(math.atan2(_dot(c, u), _dot(c, a)), 0.0), length)
    p = _add(_scale(a, math.cos(nearest)), _scale(u, math.sin(nearest)))
    if math.degrees(math.acos(max(-1.0, min(1.0, _dot(p, c))))) > reach:
        return []
    window = math.radians(2 * reach)
    lo, hi = max(0.0, nearest - window), min(length, nearest + window)
    points = []
    # Points a quarter of the view apart at most: the chords then look like the arc.
    steps = max(1, min(12, math.ceil((hi - lo) / math.radians(reach / 10))))
    for i in range(steps + 1):
        t = lo + (hi - lo) * i / steps
        v = _add(_scale(a, math.cos(t)), _scale(u, math.sin(t)))
        points.append(
            (
                math.degrees(math.atan2(v[1], v[0])) % 360.0,
                math.degrees(math.asin(max(-1.0, min(1.0, v[2])))),
            )
        )
    return points


Vector = tuple[float, float, float]


def _cross(a: Vector, b: Vector) -> Vector:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _norm(a: Vector) -> float:
    return math.sqrt(_dot(a, a))


def _scale(a: Vector, k: float) -> Vector:
    return (a[0] * k, a[1] * k, a[2] * k)


def _add(a: Vector, b: Vector) -> Vector:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _unit(ra: float, dec: float) -> tuple[float, float, float]:
    r, d = math.radians(ra), math.radians(dec)
    return (math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d))


def _all_sky_base(width: int, height: int, label: str) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="skymap" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">',
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
    for segments in stick_figures().values():
        for ra1, dec1, ra2, dec2 in segments:
            for line in _polylines(_great_circle(ra1, dec1, ra2, dec2, 2), width, height):
                parts.append(f'<polyline points="{line}" class="figure"/>')
    # 0h sits on the rim, where its label would be cut off.
    for label_ra in (90, 180, 270):
        x, y = _to_svg(label_ra + 1e-6, 0.0, width, height)
        parts.append(f'<text x="{x:.1f}" y="{y - 3:.1f}" class="label">{label_ra // 15}h</text>')
    return parts


def sky_map_svg(ra: float, dec: float, radius: float, *, width: int = 480) -> str:
    """SVG markup of the whole sky with a circle of ``radius`` degrees at (ra, dec)."""
    height = width // 2
    label = f"All-sky map: the field is at RA {ra:.2f}°, Dec {dec:.2f}°"
    parts = _all_sky_base(width, height, label)
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


# -- the zoomable plot ---------------------------------------------------------


@dataclass(frozen=True)
class _Stereographic:
    """A stereographic view centred on (ra0, dec0), ``half_width`` degrees to each side."""

    ra0: float
    dec0: float
    half_width: float
    size: int

    def project(self, ra: float, dec: float) -> Point | None:
        """SVG (x, y), East to the left and North up; None behind the view."""
        d0, d = math.radians(self.dec0), math.radians(dec)
        dra = math.radians(ra - self.ra0)
        cos_c = math.sin(d0) * math.sin(d) + math.cos(d0) * math.cos(d) * math.cos(dra)
        if cos_c < math.cos(math.radians(min(100.0, 3 * self.half_width))):
            return None
        k = 2 / (1 + cos_c)
        x = k * math.cos(d) * math.sin(dra)
        y = k * (math.cos(d0) * math.sin(d) - math.sin(d0) * math.cos(d) * math.cos(dra))
        scale = (self.size / 2) / (2 * math.tan(math.radians(self.half_width) / 2))
        return self.size / 2 - x * scale, self.size / 2 - y * scale

    def polylines(self, points: Iterable[Point]) -> list[str]:
        lines: list[list[Point]] = [[]]
        limit = self.size * 4
        for ra, dec in points:
            xy = self.project(ra, dec)
            if xy is None or abs(xy[0]) > limit or abs(xy[1]) > limit:
                lines.append([])
                continue
            lines[-1].append(xy)
        return [" ".join(f"{x:.1f},{y:.1f}" for x, y in line) for line in lines if len(line) > 1]


def _grid_step(half_width: float) -> float:
    """Degrees between grid lines: a handful across the view."""
    for step in (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0):
        if half_width * 2 / step <= 8:
            return step
    return 30.0


_NICE_STEPS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0)


def _grid(view: _Stereographic, ra: float, dec: float, half_width: float) -> list[str]:
    """Parallels and hour circles across the view only, each a few dozen points."""
    step = _grid_step(half_width)
    reach = min(90.0, 2.5 * half_width)
    dec_lo, dec_hi = max(-90.0, dec - reach), min(90.0, dec + reach)
    if abs(dec) + reach >= 90.0:
        ra_lo, ra_hi = ra - 180.0, ra + 180.0  # a pole in view: every hour circle crosses it
    else:
        half = math.degrees(
            math.asin(min(1.0, math.sin(math.radians(reach)) / math.cos(math.radians(dec))))
        )
        ra_lo, ra_hi = ra - half, ra + half
    # Hour circles crowd together towards a pole: space them for the parallel through
    # the centre (for the pole itself when it is in view).
    polar = abs(dec) + reach >= 90.0
    shrink = max(math.cos(math.radians(89.0 if polar else min(89.0, abs(dec)))), 1e-3)
    ra_step = next((s for s in _NICE_STEPS if s >= step / shrink), 30.0)
    parts = []
    grid_dec = math.ceil(dec_lo / step) * step
    while grid_dec <= dec_hi:
        points = [((ra_lo + (ra_hi - ra_lo) * i / 60) % 360.0, grid_dec) for i in range(61)]
        css = "equator" if abs(grid_dec) < 1e-9 else "grid"
        for line in view.polylines(points):
            parts.append(f'<polyline points="{line}" class="{css}"/>')
        grid_dec += step
    grid_ra = math.ceil(ra_lo / ra_step) * ra_step
    while grid_ra < ra_hi - 1e-9 or (grid_ra <= ra_hi and ra_hi - ra_lo < 360.0):
        points = [(grid_ra % 360.0, dec_lo + (dec_hi - dec_lo) * i / 40) for i in range(41)]
        for line in view.polylines(points):
            parts.append(f'<polyline points="{line}" class="grid"/>')
        grid_ra += ra_step
    return parts


def _zoomed_svg(
    ra: float, dec: float, half_width: float, outline: Sequence[Point], *, size: int
) -> str:
    view = _Stereographic(ra, dec, half_width, size)
    across = angle_text(2 * half_width)
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" class="skymap zoomed" '
        f'viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" '
        f'aria-label="The sky {across} across around the field, with its outline">',
        f'<rect x="0" y="0" width="{size}" height="{size}" class="sky"/>',
    ]
    parts.extend(_grid(view, ra, dec, half_width))
    for name, segments in stick_figures().items():
        placed: list[Point] = []
        for ra1, dec1, ra2, dec2 in segments:
            arc = _arc_near(ra1, dec1, ra2, dec2, (ra, dec), reach=2.5 * half_width)
            if not arc:
                continue
            for line in view.polylines(arc):
                parts.append(f'<polyline points="{line}" class="figure"/>')
            for end in ((ra1, dec1), (ra2, dec2)):
                xy = view.project(*end)
                if xy is not None and 0 <= xy[0] <= size and 0 <= xy[1] <= size:
                    placed.append(xy)
        if placed and half_width >= 3:
            x = sum(p[0] for p in placed) / len(placed)
            y = sum(p[1] for p in placed) / len(placed)
            parts.append(f'<text x="{x:.1f}" y="{y:.1f}" class="label">{escape(name)}</text>')
    for line in view.polylines(_densify(outline)):
        parts.append(f'<polyline points="{line}" class="field"/>')
    centre = view.project(ra, dec)
    if centre is not None:
        cx, cy = centre
        parts.append(
            f'<path d="M{cx - 9:.1f},{cy:.1f}h6M{cx + 3:.1f},{cy:.1f}h6'
            f'M{cx:.1f},{cy - 9:.1f}v6M{cx:.1f},{cy + 3:.1f}v6" class="marker"/>'
        )
    parts.append(f'<text x="6" y="{size - 8}" class="scale">{across} across · N up, E left</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _densify(outline: Sequence[Point], steps: int = 8) -> list[Point]:
    """The outline's sides as great-circle arcs, so wide fields stay whole when projected."""
    if len(outline) > 20:
        return list(outline)  # already a fine polygon (a circle drawn for want of corners)
    points: list[Point] = []
    for (ra1, dec1), (ra2, dec2) in zip(outline, outline[1:], strict=False):
        points.extend(_great_circle(ra1, dec1, ra2, dec2, steps)[:-1])
    if outline:
        points.append(outline[-1])
    return points


def zoom_levels(radius: float) -> list[float]:
    """Half-widths (degrees) of the views from wide to the field, for a field of ``radius``."""
    last = max(1.6 * radius, 0.05)
    levels = [w for w in (45.0, 10.0, 2.0, 0.4, 0.08) if w > 1.5 * last]
    return [*levels, last]


def sky_plot_html(
    ra: float, dec: float, radius: float, outline: Sequence[Point], *, size: int = 480
) -> str:
    """The zoomable plot: the whole sky, then views narrowing down to the field's outline."""
    views = [("whole sky", sky_map_svg(ra, dec, radius, width=size))]
    for half_width in zoom_levels(radius):
        views.append(
            (
                angle_text(2 * half_width) + " across",
                _zoomed_svg(ra, dec, half_width, outline, size=size),
            )
        )
    parts = ['<figure class="skyplot" id="sky-plot">']
    parts.append(
        '<div class="zoom" role="group" aria-label="Zoom">'
        '<button type="button" class="zoom-out" aria-label="zoom out">−</button>'
        '<span class="zoom-label" aria-live="polite"></span>'
        '<button type="button" class="zoom-in" aria-label="zoom in">+</button></div>'
    )
    for index, (label, svg) in enumerate(views):
        parts.append(
            f'<div class="level" data-level="{index}" data-label="{escape(label)}">{svg}</div>'
        )
    parts.append("</figure>")
    return "\n".join(parts)


# -- many fields on one map ------------------------------------------------------


@dataclass(frozen=True)
class MapField:
    """One image on a map of many: where it is and where its link goes."""

    ra: float
    dec: float
    radius: float
    url: str
    label: str


def fields_map_svg(fields: Sequence[MapField], *, width: int = 720, title: str = "") -> str:
    """The whole sky with each field outlined (at least 1.5° across), each a link to it."""
    height = width // 2
    label = title or f"All-sky map of {len(fields)} images"
    parts = _all_sky_base(width, height, label)
    for field in fields:
        parts.append(f'<a href="{escape(field.url)}" class="field-link">')
        parts.append(f"<title>{escape(field.label)}</title>")
        for line in _polylines(
            small_circle(field.ra, field.dec, max(field.radius, 1.5)), width, height
        ):
            parts.append(f'<polyline points="{line}" class="field"/>')
        parts.append("</a>")
    parts.append("</svg>")
    return "\n".join(parts)
