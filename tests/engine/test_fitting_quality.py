"""The quality figures of the final fit in the FITS header and across the frame
(skysolve.engine.fitting.quality): every figure issue #17 names is carried."""

from __future__ import annotations

from skysolve.engine.fitting.quality import header_cards

#: The quality fields of a solved answer, as :func:`final_fit` gives them.
QUALITY = {
    "matched_stars": 212, "rms_px": 0.214, "median_px": 0.15, "rms_arcsec": 36.3,
    "median_arcsec": 25.4, "sip_order": 3, "order_chosen_by": "cross-validation",
    "ra_error_arcsec": 1.2, "dec_error_arcsec": 1.3, "pixscale_error": 0.0071,
    "rotation_error_deg": 0.0025, "limiting_mag": 8.7, "zero_point": 13.76,
    "zero_point_scatter": 0.42, "zero_point_stars": 150, "fwhm_px": 3.1,
    "elongation": 1.12, "shape_stars": 80, "band": "G", "refit": True,
}  # fmt: skip


def test_the_header_carries_the_residuals_in_pixels_and_arcseconds() -> None:
    cards = {key: value for key, value, _ in header_cards(QUALITY)}
    assert (cards["FITRMSPX"], cards["FITMEDPX"]) == (0.214, 0.15)
    assert (cards["FITRMSAS"], cards["FITMEDAS"]) == (36.3, 25.4)
    assert cards["FITNSTAR"] == 212 and cards["FITORDER"] == 3
    assert cards["CRDER1"] == 1.2 / 3600 and cards["CRDER2"] == 1.3 / 3600
    assert (cards["ERRSCALE"], cards["ERRROT"], cards["LIMMAG"]) == (0.0071, 0.0025, 8.7)
    assert (cards["MAGZP"], cards["MAGZPSIG"]) == (13.76, 0.42)
    assert (cards["FWHMPIX"], cards["ELONG"]) == (3.1, 1.12)
    assert all(len(key) <= 8 for key in cards)


def test_a_figure_not_measured_gives_no_card() -> None:
    cards = {key for key, _, _ in header_cards({**QUALITY, "zero_point": None, "fwhm_px": None})}
    assert "MAGZP" not in cards and "FWHMPIX" not in cards and "FITMEDAS" in cards
