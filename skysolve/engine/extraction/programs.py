"""Extractors that run an outside program on a temporary FITS file."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from skysolve.engine.extraction.base import (
    SourceExtractor,
    check_options,
    empty_sources,
    finish_sources,
    prepare_image,
)
from skysolve.engine.inputs.fitscards import read_table_columns, write_plain_image
from skysolve.engine.results import SourceList
from skysolve.errors import (
    ConfigurationError,
    SolverFailedError,
    SolveTimeoutError,
)

if TYPE_CHECKING:
    pass

_DEBIAN_PACKAGE = {"image2xy": "astrometry.net", "source-extractor": "source-extractor"}


def _find_binary(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise ConfigurationError(
            f"{program} is not installed (Debian package {_DEBIAN_PACKAGE[program]})"
        )
    return path


def run_program(argv: list[str], *, timeout: float, cwd: Path) -> None:
    """Run a program without a shell; translate its failures."""
    try:
        # argv is a list (no shell) of a binary found by shutil.which and our temp paths.
        proc = subprocess.run(  # noqa: S603
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SolveTimeoutError(
            f"{Path(argv[0]).name} took longer than {timeout:g} s and was stopped"
        ) from exc
    except OSError as exc:
        raise ConfigurationError(f"cannot run {argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or b"").decode("utf-8", "replace").strip()
        tail = tail[-500:] if tail else "no output"
        raise SolverFailedError(
            f"{Path(argv[0]).name} failed with exit status {proc.returncode}: {tail}"
        )


def _write_fits(path: Path, image: np.ndarray) -> None:
    # Without astropy: image2xy runs beside sep in a blind solve that
    # astrometry.net answers, which otherwise never imports it (0.2 s).
    write_plain_image(path, image)


def read_table(path: Path, hdu: int, columns: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The named columns of a FITS binary table; ``None`` when there are no rows."""
    if not path.exists():
        raise SolverFailedError(f"the source extractor wrote no output file {path.name}")
    try:
        plain = read_table_columns(path, hdu, columns)
    except (OSError, ValueError) as exc:
        raise SolverFailedError(f"cannot read {path.name}: {exc}") from exc
    if plain is not None:
        return plain if len(plain[columns[0]]) else None
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            if len(hdul) <= hdu or hdul[hdu].data is None or len(hdul[hdu].data) == 0:
                return None
            table = hdul[hdu].data
            names = {n.upper(): n for n in table.columns.names}
            out = {}
            for col in columns:
                if col.upper() not in names:
                    raise SolverFailedError(f"{path.name} has no column {col}")
                out[col] = np.array(table[names[col.upper()]], dtype=float)
            return out
    except (OSError, ValueError, TypeError) as exc:
        raise SolverFailedError(f"cannot read {path.name}: {exc}") from exc


class ProgramExtractor(SourceExtractor):
    """An extractor that runs an outside program on a temporary FITS file.

    Subclasses name the ``program`` and implement :meth:`_run_program`, which
    runs it in ``work`` on ``work/image.fits`` and returns its catalogue's
    columns (X, Y, FLUX, BACKGROUND) or None when it found nothing.
    """

    program: ClassVar[str]

    def extract(
        self,
        data: np.ndarray,
        *,
        max_sources: int = 1000,
        downsample: float | None = None,
        invert: bool = False,
        timeout: float = 120.0,
    ) -> SourceList:
        check_options(max_sources, downsample, timeout)
        binary = _find_binary(self.program)
        original, image, bad, factor = prepare_image(data, downsample=downsample, invert=invert)
        shape = original.shape
        if (bad is not None and bad.all()) or float(np.ptp(image)) == 0.0:
            # A flat image has no noise to scale a threshold by: the programs
            # divide by it and report garbage.
            return empty_sources(shape)
        with tempfile.TemporaryDirectory(prefix=f"skysolve-{self.name}-") as tmp:
            work = Path(tmp)
            _write_fits(work / "image.fits", image)
            found = self._run_program(binary, work, image, timeout)
        if found is None:
            return empty_sources(shape)
        x, y, flux, background = found
        return finish_sources(
            x, y, flux, background, original=original, factor=factor, max_sources=max_sources
        )

    @abstractmethod
    def _run_program(
        self, binary: str, work: Path, image: np.ndarray, timeout: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Run the program on ``work/image.fits``; X, Y, FLUX, BACKGROUND or None."""
