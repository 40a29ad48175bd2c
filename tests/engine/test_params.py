import math

import pytest

from skysolve.engine.params import SolveParameters, focal_mm_to_degwidth
from skysolve.errors import InvalidParameterError


def test_it_keeps_zero_ra_and_dec() -> None:
    p = SolveParameters.from_mapping({"center_ra": 0, "center_dec": 0, "radius": 5})
    assert p.center_ra == 0.0 and p.center_dec == 0.0 and p.has_position


def test_it_converts_degwidth_bounds() -> None:
    p = SolveParameters(scale_units="degwidth", scale_lower=1.0, scale_upper=2.0)
    bounds = p.scale_bounds_arcsec_per_pixel(1000)
    assert bounds is not None
    lo, hi = bounds
    assert lo == pytest.approx(3.6) and hi == pytest.approx(7.2)


def test_it_converts_arcminwidth_and_arcsecperpix() -> None:
    p = SolveParameters(scale_units="arcminwidth", scale_lower=60, scale_upper=120)
    assert p.scale_bounds_arcsec_per_pixel(600) == pytest.approx((6.0, 12.0))
    q = SolveParameters(scale_units="arcsecperpix", scale_lower=1.5, scale_upper=2.5)
    assert q.scale_bounds_arcsec_per_pixel(600) == pytest.approx((1.5, 2.5))


def test_it_converts_focalmm_the_other_way_round() -> None:
    p = SolveParameters(scale_units="focalmm", scale_lower=50, scale_upper=100)
    bounds = p.scale_bounds_arcsec_per_pixel(1000)
    assert bounds is not None
    lo, hi = bounds
    assert lo == pytest.approx(focal_mm_to_degwidth(100) * 3.6)
    assert hi == pytest.approx(focal_mm_to_degwidth(50) * 3.6)
    assert focal_mm_to_degwidth(50) == pytest.approx(39.6, abs=0.1)


def test_it_turns_an_estimate_into_bounds() -> None:
    p = SolveParameters(scale_units="arcsecperpix", scale_type="ev", scale_est=2.0, scale_err=10)
    assert p.scale_bounds_arcsec_per_pixel(100) == pytest.approx((1.8, 2.2))


def test_it_leaves_a_missing_upper_bound_open() -> None:
    p = SolveParameters(scale_units="arcsecperpix", scale_lower=2.0)
    bounds = p.scale_bounds_arcsec_per_pixel(100)
    assert bounds is not None
    lo, hi = bounds
    assert lo == 2.0 and math.isinf(hi)


def test_it_has_no_scale_by_default() -> None:
    assert SolveParameters().scale_bounds_arcsec_per_pixel(100) is None


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"parity": 3}, "parity"),
        ({"center_dec": 91, "center_ra": 0}, "center_dec"),
        ({"center_ra": 10}, "together"),
        ({"scale_lower": -1}, "scale_lower"),
        ({"scale_lower": 3, "scale_upper": 2}, "larger"),
        ({"scale_units": "furlongs"}, "scale_units"),
        ({"tweak_order": 1.5}, "whole number"),
        ({"invert": "maybe"}, "boolean"),
        ({"radius": "nan"}, "finite"),
        ({"downsample_factor": 0.5}, "downsample_factor"),
        ({"image_width": -3}, "image_width"),
        ({"positional_error": 0}, "positional_error"),
        ({"scale_units": 3}, "string"),
        ({"scale_lower": True}, "number"),
    ],
)
def test_it_rejects_bad_values(values: dict, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        SolveParameters.from_mapping(values)


def test_it_accepts_client_spellings() -> None:
    p = SolveParameters.from_mapping(
        {
            "scale_lower": "0.5",
            "scale_upper": 2,
            "crpix_center": "true",
            "invert": 1,
            "parity": "2",
            "tweak_order": 0,
            "publicly_visible": "n",
            "session": "abc",
            "scale_units": "ArcSecPerPix",
            "center_ra": "",
        }
    )
    assert p.scale_lower == 0.5 and p.crpix_center and p.invert and p.tweak_order == 0
    assert p.scale_units == "arcsecperpix" and p.center_ra is None


def test_it_carries_learned_hints_over_the_wire_and_leaves_requests_unchanged() -> None:
    from skysolve.engine.params import LearnedHint

    assert "learned_hints" not in SolveParameters().to_dict()
    hint = LearnedHint("earlier solve of job 3", 400, 300, 0.9, 1.2, 10.0, -5.0, 2.0)
    params = SolveParameters(learned_hints=(hint,))
    assert SolveParameters.from_mapping(params.to_dict()) == params
    with pytest.raises(InvalidParameterError, match="malformed hint"):
        SolveParameters.from_mapping({"learned_hints": [{"source": "x"}]})
    with pytest.raises(InvalidParameterError, match="scale_lower <= scale_upper"):
        LearnedHint("x", 400, 300, 2.0, 1.0)
