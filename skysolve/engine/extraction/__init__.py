"""Source extraction: find the stars in an image and return a :class:`SourceList`.

Three interchangeable extractors sit behind :class:`SourceExtractor`:

``sep``
    In-process Source Extractor algorithms (the ``sep`` library); the default.
``image2xy``
    astrometry.net's ``image2xy`` program, what nova.astrometry.net runs.
``sextractor``
    Debian's ``source-extractor`` program (nova's ``use_sextractor``).

Every extractor takes a 2-D array whose rows are in the order the file stores
them and returns positions in 1-based FITS pixel coordinates of that array (the
centre of ``data[0, 0]`` is (1, 1), ``x`` runs along a row), brightest first.

Downsampling
------------
``downsample=f`` bins the image by the integer ``f`` (block mean; rows and
columns left over at the far edges are dropped) before detection; positions are
mapped back to the original pixel grid.  When ``downsample`` is ``None`` an
image whose longest side exceeds :data:`AUTO_DOWNSAMPLE_MAX_SIDE` pixels is
binned by ``ceil(longest / AUTO_DOWNSAMPLE_MAX_SIDE)`` so extraction time and
memory stay bounded; ``downsample=1`` turns that off.

Layout
------
- :mod:`~skysolve.engine.extraction.base`: :class:`SourceExtractor` and the input
  checks, binning and output steps every extractor shares;
- :mod:`~skysolve.engine.extraction.sep_extractor`: :class:`SepExtractor`;
- :mod:`~skysolve.engine.extraction.programs`: running an outside program, shared by
  :mod:`~skysolve.engine.extraction.image2xy` and
  :mod:`~skysolve.engine.extraction.sextractor`;
- :mod:`~skysolve.engine.extraction.bright`: the fast path's
  :func:`extract_bright_sources` and its windowed centroids;
- :mod:`~skysolve.engine.extraction.choosing`: :func:`get_extractor` and
  :func:`extract_sources`;
- :mod:`~skysolve.engine.extraction.ordering`: :func:`resort` and :func:`uniformize`,
  the orders a solver is given.

The names other modules use are re-exported here.
"""

from __future__ import annotations

from skysolve.engine.extraction.base import AUTO_DOWNSAMPLE_MAX_SIDE, SourceExtractor
from skysolve.engine.extraction.bright import extract_bright_sources
from skysolve.engine.extraction.choosing import EXTRACTORS, extract_sources, get_extractor
from skysolve.engine.extraction.image2xy import Image2xyExtractor
from skysolve.engine.extraction.ordering import SOLVER_UNIFORMIZE_CELLS, resort, uniformize
from skysolve.engine.extraction.sep_extractor import SEP_THRESHOLD_SIGMA, SepExtractor
from skysolve.engine.extraction.sextractor import SExtractorExtractor

__all__ = [
    "AUTO_DOWNSAMPLE_MAX_SIDE",
    "EXTRACTORS",
    "Image2xyExtractor",
    "SEP_THRESHOLD_SIGMA",
    "SOLVER_UNIFORMIZE_CELLS",
    "SExtractorExtractor",
    "SepExtractor",
    "SourceExtractor",
    "extract_bright_sources",
    "resort",
    "extract_sources",
    "get_extractor",
    "uniformize",
]
