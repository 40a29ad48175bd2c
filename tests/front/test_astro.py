from __future__ import annotations

import math

import pytest

from skysolve.front import astro


def test_it_writes_sexagesimal() -> None:
    assert astro.ra_hms(187.185) == "12h 28m 44.40s"
    assert astro.ra_hms(359.99999999) == "00h 00m 00.00s"
    assert astro.dec_dms(56.713) == "+56° 42′ 46.8″"
    assert astro.dec_dms(-0.5) == "-00° 30′ 00.0″"


@pytest.mark.parametrize(
    ("text", "degrees"),
    [("187.185", 187.185), ("12:28:44.4", 187.185), ("12h28m44.4s", 187.185), ("0", 0.0)],
)
def test_it_reads_ra(text: str, degrees: float) -> None:
    assert astro.parse_ra(text) == pytest.approx(degrees)


@pytest.mark.parametrize(
    ("text", "degrees"),
    [("56.713", 56.713), ("+56:42:46.8", 56.713), ("-0:30:00", -0.5), ("-0 30 00", -0.5)],
)
def test_it_reads_dec(text: str, degrees: float) -> None:
    assert astro.parse_dec(text) == pytest.approx(degrees)


@pytest.mark.parametrize("text", ["360", "24:00:00", "abc", "12:61:00", "-1"])
def test_it_rejects_bad_ra(text: str) -> None:
    with pytest.raises(ValueError, match="RA"):
        astro.parse_ra(text)


@pytest.mark.parametrize("text", ["91", "-90:00:01", "north"])
def test_it_rejects_bad_dec(text: str) -> None:
    with pytest.raises(ValueError, match="Dec"):
        astro.parse_dec(text)


def test_it_measures_angular_distance() -> None:
    assert astro.angular_distance(0, 0, 90, 0) == pytest.approx(90)
    assert astro.angular_distance(359.5, 10, 0.5, 10) == pytest.approx(0.9848, abs=1e-3)
    assert astro.angular_distance(10, 89, 190, 89) == pytest.approx(2)


def test_it_bounds_ra_around_zero_and_poles() -> None:
    assert astro.ra_ranges(0.0, 10.0, 1.0) == [
        (pytest.approx(358.9846, abs=1e-3), 360.0),
        (0.0, pytest.approx(1.0154, abs=1e-3)),
    ]
    assert astro.ra_ranges(100.0, 89.5, 1.0) is None


def test_it_projects_hammer_aitoff() -> None:
    assert astro.hammer(180.0, 0.0) == pytest.approx((0.0, 0.0))
    x, _ = astro.hammer(90.0, 0.0)
    assert x > 0  # RA grows to the left
    assert astro.hammer(0.0, 90.0)[1] == pytest.approx(math.sqrt(2))


def test_it_draws_small_circles_at_the_right_distance() -> None:
    for ra, dec in astro.small_circle(187.0, 56.0, 3.0, n=12):
        assert astro.angular_distance(187.0, 56.0, ra, dec) == pytest.approx(3.0)
