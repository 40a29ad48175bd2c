"""An astrometry.net WCS header read as the fast path's TAN-SIP model, without astropy.wcs."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from skysolve.engine.results import wcs_from_header
from skysolve.engine.solving.answer import start_wcs
from skysolve.engine.solving.base import SolverOutcome
from skysolve.engine.solving.fastpath.tansip import TanSip

#: astrometry.net's wcs.fits for panoptes_unsolved (index-tycho2-08), as written.
ENGINE_CARDS = {
    "WCSAXES": 2, "CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "EQUINOX": 2000.0,
    "LONPOLE": 180.0, "LATPOLE": 0.0, "CRVAL1": 303.402772943, "CRVAL2": 46.4393415923,
    "CRPIX1": 496.966466268, "CRPIX2": 397.772155762, "CUNIT1": "deg", "CUNIT2": "deg",
    "CD1_1": -1.3953192559e-05, "CD1_2": 0.00286473582636, "CD2_1": 0.0028620202275,
    "CD2_2": 1.37053740276e-05, "IMAGEW": 700, "IMAGEH": 700,
    "A_ORDER": 2, "A_0_0": 0, "A_0_1": 0, "A_0_2": 1.94500650201e-06, "A_1_0": 0,
    "A_1_1": -4.41708175262e-07, "A_2_0": -2.18992529112e-06,
    "B_ORDER": 2, "B_0_0": 0, "B_0_1": 0, "B_0_2": 2.72736035006e-06, "B_1_0": 0,
    "B_1_1": 9.6519035868e-07, "B_2_0": -6.69714768936e-07,
    "AP_ORDER": 2, "AP_0_0": 8.27846055051e-05, "AP_0_1": 7.76408547818e-07,
    "AP_0_2": -1.94555682276e-06, "AP_1_0": -1.02414899497e-07, "AP_1_1": 4.4229732855e-07,
    "AP_2_0": 2.18557658532e-06,
    "BP_ORDER": 2, "BP_0_0": 0.000105072742035, "BP_0_1": 1.03921262766e-06,
    "BP_0_2": -2.73047699716e-06, "BP_1_0": 2.92577035022e-07, "BP_1_1": -9.64406777278e-07,
    "BP_2_0": 6.68912020673e-07,
}  # fmt: skip


def engine_header(**changes: object) -> fits.Header:
    header = fits.Header()
    for key, value in {**ENGINE_CARDS, **changes}.items():
        if value is None:
            continue
        header[key] = value
    return header


@pytest.mark.parametrize("sip", [True, False])
def test_it_evaluates_as_astropy_does(sip: bool) -> None:
    if sip:
        header = engine_header()
    else:
        header = engine_header(CTYPE1="RA---TAN", CTYPE2="DEC--TAN")
        for key in [k for k in header if k.split("_")[0] in ("A", "B", "AP", "BP")]:
            del header[key]
    model = TanSip.from_header(header)
    assert model is not None and model.order == (2 if sip else 1)
    wcs = wcs_from_header(header, 700, 700)
    xy = np.random.default_rng(1).uniform(0.5, 700.5, (200, 2))
    sky = wcs.all_pix2world(xy, 1)
    np.testing.assert_allclose(model.all_pix2world(xy, 1), sky, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.all_world2pix(sky, 1), xy, rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.all_pix2world(xy, 0), wcs.all_pix2world(xy, 0), atol=1e-9)


@pytest.mark.parametrize(
    "changes",
    [
        {"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN"},
        {"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV"},
        {"PC1_1": 1.0},
        {"CDELT1": 1.0},
        {"LONPOLE": 0.0},
        {"RADESYS": "GAPPT"},
        {"AP_ORDER": 3},
        {"A_1_0": 1e-3},
        {"CD2_2": None},
        {"CD1_1": 0.0, "CD1_2": 0.0},
    ],
)
def test_anything_else_goes_to_astropy(changes: dict[str, object]) -> None:
    assert TanSip.from_header(engine_header(**changes)) is None


def test_an_astrometry_net_answer_starts_its_final_fit_from_the_model() -> None:
    """No astropy WCS (its import: astropy.wcs, .coordinates, .table) for the start."""
    outcome = SolverOutcome(solved=True, solver="astrometry.net", wcs_header=engine_header())
    start = start_wcs(outcome, 700, 700)
    assert isinstance(start, TanSip)
    odd = SolverOutcome(solved=True, solver="astrometry.net", wcs_header=engine_header(CDELT1=1.0))
    assert not isinstance(start_wcs(odd, 700, 700), TanSip)
