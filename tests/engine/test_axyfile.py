"""The augmented star list (``.axy``) written without astropy's table machinery."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from skysolve.engine.results import SourceList
from skysolve.engine.solving.axyfile import (
    CardTooLong,
    axy_cards,
    card,
    format_value,
    source_table,
    write_axy,
    write_float_table,
)
from skysolve.engine.solving.base import SolveConstraints


def sources(n: int = 37, *, background: bool = True) -> SourceList:
    rng = np.random.default_rng(3)
    return SourceList(
        x=rng.uniform(1, 700, n),
        y=rng.uniform(1, 500, n),
        flux=rng.uniform(10, 1e5, n),
        background=rng.uniform(0, 50, n) if background else None,
        width=700,
        height=500,
    )


def constraints() -> SolveConstraints:
    return SolveConstraints(
        scale_low=1.5, scale_high=2.5, center_ra=10.25, center_dec=-33.125, radius=3.0,
        parity=0, tweak_order=2, crpix_center=True, positional_error=1.25,
    )  # fmt: skip


def astropy_axy(path: Path, found: SourceList, cards: list[tuple[str, object, str]]) -> Path:
    """The file as astropy writes it (what write_axy wrote before)."""
    hdr = fits.Header()
    for keyword, value, comment in cards:
        hdr[keyword] = (value, comment) if comment else value
    fits.HDUList([fits.PrimaryHDU(header=hdr), source_table(found)]).writeto(path)
    return path


@pytest.mark.parametrize("background", [True, False])
def test_it_writes_what_astropy_writes(tmp_path: Path, background: bool) -> None:
    found = sources(background=background)
    outputs = {name: tmp_path / f"field.{name}" for name in ("solved", "wcs", "corr", "cancel")}
    kwargs = {"outputs": outputs, "cpu_limit": 9.2, "depths": (10, 20, 30), "odds_to_solve": 1e9}
    ours = write_axy(tmp_path / "ours.axy", found, constraints(), **kwargs)  # type: ignore[arg-type]
    cards = axy_cards(found, constraints(), **kwargs)  # type: ignore[arg-type]
    theirs = astropy_axy(tmp_path / "theirs.axy", found, cards)  # type: ignore[arg-type]
    assert ours.stat().st_size % 2880 == 0
    with fits.open(ours) as a, fits.open(theirs) as b:
        a.verify("exception")
        assert len(a) == len(b) == 2
        assert dict(a[0].header) == dict(b[0].header)
        assert a[0].header["ANWCS"] == str(tmp_path / "field.wcs")
        assert a[0].header["ANERA"] == 10.25 and a[0].header["ANPARITY"] == "POS"
        assert a[0].header.comments["ANRUN"] == "Solve this field!"
        assert (a[1].header["IMAGEW"], a[1].header["IMAGEH"]) == (700, 500)
        assert a[1].columns.names == b[1].columns.names
        for name in a[1].columns.names:
            assert a[1].data[name].dtype == np.dtype(">f4")
            np.testing.assert_array_equal(a[1].data[name], b[1].data[name])


def test_a_path_longer_than_one_card_goes_to_astropy(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 80)
    deep.mkdir()
    found = sources(5)
    path = write_axy(
        deep / "f.axy", found, constraints(), outputs={"wcs": deep / "field.wcs"},
        cpu_limit=1, depths=(10,), odds_to_solve=1e9,
    )  # fmt: skip
    with fits.open(path) as hdul:
        assert hdul[0].header["ANWCS"] == str(deep / "field.wcs")
        assert len(hdul[1].data) == 5


def test_cards_and_values() -> None:
    assert card("ANRUN", True, "x") == "ANRUN   =                    T / x".ljust(80)
    assert format_value(1e9).strip() == "1000000000.0"
    assert format_value(0.1).strip() == "0.1"
    assert format_value(-1.5e-300).strip() == "-1.5E-300"
    assert format_value("it's") == "'it''s   '".ljust(20)
    with pytest.raises(CardTooLong):
        format_value("x" * 69)
    with pytest.raises(ValueError, match="finite"):
        format_value(float("nan"))
    with pytest.raises(ValueError, match="keyword"):
        card("TOOLONGKEY", 1)


def test_an_empty_table(tmp_path: Path) -> None:
    path = write_float_table(tmp_path / "e.fits", [("IMAGEW", 3, "")], [("X", np.zeros(0))])
    with fits.open(path) as hdul:
        assert hdul[0].header["IMAGEW"] == 3 and len(hdul[1].data) == 0


def test_writing_an_axy_imports_no_astropy(tmp_path: Path) -> None:
    """astropy's table writer imports astropy.table: 0.12-0.16 s before the engine starts."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import numpy as np\n"
        "from skysolve.engine.results import SourceList\n"
        "from skysolve.engine.solving.astrometry import write_axy\n"
        "from skysolve.engine.solving.base import SolveConstraints\n"
        "s = SourceList(x=np.arange(9.0), y=np.arange(9.0), flux=np.ones(9), width=9, height=9)\n"
        f"write_axy(Path({str(tmp_path / 'f.axy')!r}), s, SolveConstraints(), outputs={{}},\n"
        "          cpu_limit=1, depths=(10,), odds_to_solve=1e9)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('astropy'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == []
    with fits.open(tmp_path / "f.axy") as hdul:
        assert len(hdul[1].data) == 9
