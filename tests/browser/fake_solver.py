"""A stand-in solver for the browser test when the real engine is not wanted.

Unlike tests.webfixtures.FakeSolver it writes a picture a browser can decode
and reports apod4.jpg's reference calibration, so the browser test checks the
same numbers whichever solver runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import Calibration, SolveResult, SourceList

#: apod4.jpg's solve-field reference (see ../shared/images/README.md).
RA, DEC, PIXSCALE = 187.18503, 56.71337, 169.70


def solve(
    source: Path | SourceList,
    params: SolveParameters,
    out_dir: Path,
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[str, str], None] | None = None,
    verified: Callable[[SolveResult], None] | None = None,
) -> SolveResult:
    report = progress or (lambda stage, message: None)
    assert isinstance(source, Path)
    report("extracting", "pretending to extract sources")
    with Image.open(source) as img:
        picture = img.convert("RGB")
    width, height = picture.size
    report("solving", "pretending to solve")
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [RA, DEC]
    wcs.wcs.crpix = [(width + 1) / 2, (height + 1) / 2]
    scale = PIXSCALE / 3600
    wcs.wcs.cd = [[-scale, 0.0], [0.0, -scale]]
    header = wcs.to_header()
    files = {"wcs": out_dir / "wcs.fits", "annotated_display": out_dir / "annotated.jpg"}
    fits.PrimaryHDU(header=header).writeto(files["wcs"])
    picture.save(files["annotated_display"], "JPEG")
    log = "fake solve of the browser test\n"
    files["log"] = out_dir / "solve.log"
    files["log"].write_text(log)
    return SolveResult(
        solved=True,
        image_width=width,
        image_height=height,
        calibration=Calibration.from_wcs(wcs, width, height),
        wcs_header=header,
        files=files,
        objects_in_field=["Part of the constellation Ursa Major (UMa)"],
        log=log,
        command=["skysolve", "solve", source.name],
    )
