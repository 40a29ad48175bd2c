"""Choosing an extractor by name, and the one call the pipeline makes."""

from __future__ import annotations

import numpy as np

from skysolve.engine.extraction.base import SourceExtractor
from skysolve.engine.extraction.image2xy import Image2xyExtractor
from skysolve.engine.extraction.ordering import uniformize
from skysolve.engine.extraction.sep_extractor import SepExtractor
from skysolve.engine.extraction.sextractor import SExtractorExtractor
from skysolve.engine.results import SourceList
from skysolve.errors import (
    InvalidParameterError,
)

_EXTRACTORS: dict[str, type[SourceExtractor]] = {
    cls.name: cls for cls in (SepExtractor, Image2xyExtractor, SExtractorExtractor)
}

#: Names accepted by :func:`get_extractor`, default first.
EXTRACTORS: tuple[str, ...] = tuple(_EXTRACTORS)


def get_extractor(name: str) -> SourceExtractor:
    """The extractor called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`EXTRACTORS` (``"sep"``, ``"image2xy"``, ``"sextractor"``).

    Returns
    -------
    SourceExtractor
        A new instance with default settings.

    Raises
    ------
    InvalidParameterError
        ``name`` is not a known extractor.
    """
    try:
        cls = _EXTRACTORS[name]
    except (KeyError, TypeError):
        raise InvalidParameterError(
            f"unknown source extractor {name!r}; choose one of {', '.join(EXTRACTORS)}"
        ) from None
    return cls()


def extract_sources(
    data: np.ndarray,
    *,
    method: str = "sep",
    max_sources: int = 1000,
    downsample: float | None = None,
    invert: bool = False,
    timeout: float = 120.0,
    uniformize_cells: int = 0,
) -> SourceList:
    """Find the stars in an image with the extractor called ``method``.

    Parameters
    ----------
    data : numpy.ndarray
        2-D image, rows in file order.  Not modified.
    method : str
        ``"sep"`` (default), ``"image2xy"`` or ``"sextractor"``.
    max_sources : int
        Keep at most this many sources (the brightest).
    downsample : float or None
        Bin by this integer factor first (nova's ``downsample_factor``);
        ``None`` bins only images larger than :data:`AUTO_DOWNSAMPLE_MAX_SIDE`.
    invert : bool
        Negate the image first (negative images).
    timeout : float
        Wall-clock limit in seconds.
    uniformize_cells : int
        0 (default): brightest first.  Otherwise reorder the (capped) list with
        :func:`uniformize` over about this many cells, which is what a solver
        should be given (see :data:`SOLVER_UNIFORMIZE_CELLS`).

    Returns
    -------
    SourceList
        1-based FITS pixel coordinates of ``data``, brightest first unless
        ``uniformize_cells`` asks otherwise.

    Raises
    ------
    InvalidParameterError
        Unknown ``method`` or an option out of range.
    BadInputError
        ``data`` is not a non-empty 2-D numeric array.
    ConfigurationError
        The external program for ``method`` is not installed.
    SolveTimeoutError
        Extraction took longer than ``timeout``.
    """
    if isinstance(uniformize_cells, bool) or not isinstance(uniformize_cells, int | np.integer):
        raise InvalidParameterError("uniformize_cells must be an integer")
    if uniformize_cells < 0:
        raise InvalidParameterError("uniformize_cells must not be negative")
    sources = get_extractor(method).extract(
        data, max_sources=max_sources, downsample=downsample, invert=invert, timeout=timeout
    )
    return uniformize(sources, cells=uniformize_cells) if uniformize_cells else sources
