"""End to end: `skysolve serve` (gunicorn + worker processes) driven by astroquery,
with the real engine: a synthetic star list and ../shared/images/apod4.jpg.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.liveserver import start_server

pytestmark = [pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    for live in start_server(tmp_path, None, workers=2):
        yield live.url, live.apikey


def test_it_solves_through_astroquery(
    server: tuple[str, str], tmp_path: Path, shared_images: Path
) -> None:
    from astroquery.astrometry_net import AstrometryNet

    from testfields.synthetic import FieldSpec, make_field

    url, key = server
    client = AstrometryNet()
    client.URL = url
    client.API_URL = url + "/api"
    client.api_key = key
    field = make_field(
        FieldSpec(ra=200.0, dec=-30.0, pixscale=30.0, width=800, height=600, seed=2),
        render=False,
    )
    header = client.solve_from_source_list(
        list(field.sources.x), list(field.sources.y), 800, 600,
        solve_timeout=120, verbose=False,
    )  # fmt: skip
    assert header["CTYPE1"].startswith("RA---TAN")
    assert abs(header["CRVAL2"] - -30.0) < 1.0

    header = client.solve_from_image(
        str(shared_images / "apod4.jpg"), solve_timeout=120, verbose=False
    )
    assert header["CTYPE2"].startswith("DEC--TAN")
    assert abs(header["CRVAL2"] - 56.7) < 10.0
