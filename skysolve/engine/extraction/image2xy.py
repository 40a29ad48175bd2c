"""astrometry.net's ``image2xy`` program as an extractor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skysolve.engine.extraction.programs import ProgramExtractor, read_table, run_program


class Image2xyExtractor(ProgramExtractor):
    """astrometry.net's ``image2xy`` (``simplexy``), nova's default extractor.

    The (inverted, binned) image is written to a temporary float32 FITS file;
    ``image2xy`` subtracts a median-filtered background and finds peaks at
    8 sigma.  Its X/Y are already 1-based.  Non-finite pixels are replaced by
    the median first, since ``image2xy`` does not skip them.
    """

    name = "image2xy"
    program = "image2xy"

    def _run_program(
        self, binary: str, work: Path, image: np.ndarray, timeout: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        run_program(
            [binary, "-O", "-o", str(work / "image.xy.fits"), str(work / "image.fits")],
            timeout=timeout,
            cwd=work,
        )
        cols = read_table(work / "image.xy.fits", 1, ("X", "Y", "FLUX", "BACKGROUND"))
        if cols is None:
            return None
        return cols["X"], cols["Y"], cols["FLUX"], cols["BACKGROUND"]
