"""The shared real FITS files' headers and images read without astropy as
astropy reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from skysolve.engine.inputs.fitscards import HeaderCards
from skysolve.engine.inputs.images import load_image
from tests.engine.test_fitscards import assert_read_as_astropy_reads


@pytest.mark.parametrize(
    "name", ["seestar_ngc7023_10s.fit", "seestar_ngc7023_20s.fit", "seestar_m94_10s.fit"]
)
def test_seestar_headers_are_astropys(shared_images: Path, name: str) -> None:
    path = shared_images / "corpus" / name
    with open(path, "rb") as fh:
        cards = HeaderCards.read(fh)
    assert cards is not None
    assert_read_as_astropy_reads(cards.text)
    assert cards.get("INSTRUME") == "Seestar S50"
    if name == "seestar_ngc7023_10s.fit":
        assert cards["ASTAP_ZEMOSAIC_SOLVED"] is True
    loaded = load_image(path)
    assert isinstance(loaded.header, HeaderCards)
    assert loaded.data.shape == (1920, 1080)


def test_eso_midas_log_cards_are_read_as_astropy_reads_them(shared_images: Path) -> None:
    """sep's test image: ESO-MIDAS's ``ESO-LOG`` cards (no value indicator),
    ``HIERARCH ESO`` cards and a scaled 16-bit image."""
    path = shared_images / "corpus" / "sep_image.fits"
    with open(path, "rb") as fh:
        cards = HeaderCards.read(fh)
    assert cards is not None
    assert_read_as_astropy_reads(cards.text)
    assert cards["ESO-LOG"].startswith("00:00:00> DATE")
    loaded = load_image(path)
    assert isinstance(loaded.header, HeaderCards)
    with pytest.warns(UserWarning, match="invalid"), fits.open(path) as hdul:
        expected = np.asarray(hdul[0].data, dtype=np.float32)
    np.testing.assert_array_equal(loaded.data, expected)
