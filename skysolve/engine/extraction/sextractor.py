"""Debian's ``source-extractor`` program as an extractor."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from skysolve.engine.extraction.base import MAX_ELONGATION
from skysolve.engine.extraction.programs import ProgramExtractor, read_table, run_program


#: 5x5 Gaussian convolution kernel, FWHM 2 px (SExtractor's ``gauss_2.0_5x5``
#: values, generated from the formula so no file outside this module is needed).
def _gauss_kernel_text(fwhm: float = 2.0, size: int = 5) -> str:
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    r = np.arange(size) - (size - 1) / 2.0
    kernel = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2.0 * sigma**2))
    rows = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in kernel)
    return f"CONV NORM\n# {size}x{size} Gaussian, FWHM {fwhm:g} px\n{rows}\n"


_SEXTRACTOR_PARAMS = (
    "X_IMAGE",
    "Y_IMAGE",
    "XWIN_IMAGE",
    "YWIN_IMAGE",
    "FLAGS_WIN",
    "FLUX_AUTO",
    "BACKGROUND",
    "FLAGS",
    "ELONGATION",
)


class SExtractorExtractor(ProgramExtractor):
    """Debian's ``source-extractor`` (SExtractor 2.x), nova's ``use_sextractor``.

    Runs with a configuration written to a temporary directory: 1.5 sigma
    detection on a 5x5 Gaussian-filtered image, 5 pixel minimum area, 64 px
    background mesh, FITS_1.0 catalogue with X_IMAGE, Y_IMAGE (1-based; the
    windowed XWIN_IMAGE/YWIN_IMAGE are used where valid), FLUX_AUTO and
    BACKGROUND.  Non-finite pixels are replaced by the median.
    """

    name = "sextractor"
    program = "source-extractor"

    def _run_program(
        self, binary: str, work: Path, image: np.ndarray, timeout: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        (work / "skysolve.param").write_text("\n".join(_SEXTRACTOR_PARAMS) + "\n")
        (work / "skysolve.conv").write_text(_gauss_kernel_text())
        pixstack = int(np.clip(image.size // 2, 300_000, 8_000_000))
        config = {
            "CATALOG_NAME": str(work / "catalog.fits"),
            "CATALOG_TYPE": "FITS_1.0",
            "PARAMETERS_NAME": str(work / "skysolve.param"),
            "DETECT_TYPE": "CCD",
            "DETECT_MINAREA": "5",
            "DETECT_THRESH": "1.5",
            "ANALYSIS_THRESH": "1.5",
            "FILTER": "Y",
            "FILTER_NAME": str(work / "skysolve.conv"),
            "DEBLEND_NTHRESH": "32",
            "DEBLEND_MINCONT": "0.005",
            "CLEAN": "Y",
            "CLEAN_PARAM": "1.0",
            "MASK_TYPE": "CORRECT",
            "SATUR_LEVEL": "1e29",
            "MAG_ZEROPOINT": "0.0",
            "GAIN": "0.0",
            "PIXEL_SCALE": "1.0",
            "SEEING_FWHM": "2.0",
            "BACK_SIZE": str(int(np.clip(min(image.shape) // 8, 8, 64))),
            "BACK_FILTERSIZE": "3",
            "BACKPHOTO_TYPE": "GLOBAL",
            "CHECKIMAGE_TYPE": "NONE",
            "MEMORY_OBJSTACK": "3000",
            "MEMORY_PIXSTACK": str(pixstack),
            "MEMORY_BUFSIZE": "1024",
            "VERBOSE_TYPE": "QUIET",
            "WRITE_XML": "N",
            "NTHREADS": "1",
        }
        (work / "skysolve.sex").write_text(
            "".join(f"{key:<16} {value}\n" for key, value in config.items())
        )
        run_program(
            [binary, str(work / "image.fits"), "-c", str(work / "skysolve.sex")],
            timeout=timeout,
            cwd=work,
        )
        cols = read_table(work / "catalog.fits", 1, _SEXTRACTOR_PARAMS)
        if cols is None:
            return None
        # Keep neighbours (1), deblended (2), saturated (4) and incomplete Kron
        # apertures (16: a flux problem, not a position one); drop objects cut by
        # the image edge (8) and those with corrupted isophotes or overflows (32+).
        ok = (cols["FLAGS"].astype(int) & ~(1 | 2 | 4 | 16)) == 0
        ok &= cols["ELONGATION"] <= MAX_ELONGATION
        ok &= cols["FLUX_AUTO"] > 0
        # Windowed centroids are far less biased by neighbours and noise than the
        # isophotal X_IMAGE; keep the isophotal ones where the window failed.
        win_ok = (cols["FLAGS_WIN"] == 0) & np.isfinite(cols["XWIN_IMAGE"])
        win_ok &= (
            np.hypot(cols["XWIN_IMAGE"] - cols["X_IMAGE"], cols["YWIN_IMAGE"] - cols["Y_IMAGE"]) < 2
        )
        x = np.where(win_ok, cols["XWIN_IMAGE"], cols["X_IMAGE"])
        y = np.where(win_ok, cols["YWIN_IMAGE"], cols["Y_IMAGE"])
        return x[ok], y[ok], cols["FLUX_AUTO"][ok], cols["BACKGROUND"][ok]
