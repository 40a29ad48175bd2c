"""Solving an image on another machine without sending the image.

A Celery solve request carries an image file only up to a size cap
(``SKYSOLVE_TASK_MAX_FILE_BYTES``); a larger image stays where it is and only
its sources travel.  The steps of :func:`skysolve.engine.pipeline.solve` that
need the pixels then run here, with the engine's own functions:

* :func:`image_sources` reads the image, its metadata hints (the same
  :func:`skysolve.engine.inputs.hints.hints_from_image` the pipeline calls on a file)
  and its sources (the same extractor and options).  The hints go in
  ``params.file_hints``; the pipeline on the other machine applies them to the
  source list as it would the file's own, blind retry included, so a large
  FITS with RA/DEC and scale keywords is not solved blind.
* :func:`draw_pictures` draws the pictures here once the answer is back, on
  the image itself, with the WCS, the catalogue stars (``rdls.fits``) and the
  annotations of the reply.

Why the pictures are drawn here rather than on the worker from a downscaled
preview sent along: this host holds the full image anyway (it just found its
stars), the pictures come out exactly as an embedded worker draws them, from
the same drawing code with no second set of scaled coordinates, and the
request stays small.  The cost is the image read a second time and the
drawing on this host, after the answer is already recorded (results in two
steps: a client sees ``success`` first, the pictures follow).
"""

from __future__ import annotations

from pathlib import Path

from skysolve.engine.params import SolveParameters
from skysolve.engine.results import SolveResult, SourceList, wcs_from_header


def image_sources(path: Path, params: SolveParameters) -> tuple[SourceList, SolveParameters]:
    """The sources of the image at ``path`` and the parameters carrying its file's hints.

    The hints are left out when ``params.use_hints`` is off or the file has none.
    """
    from skysolve.engine.extraction import extract_sources
    from skysolve.engine.inputs.hints import hints_from_image
    from skysolve.engine.inputs.images import load_image

    image = load_image(path)
    hints = hints_from_image(image) if params.use_hints else None
    sources = extract_sources(
        image.data,
        method=params.effective_extractor,
        max_sources=params.max_sources,
        downsample=params.downsample_factor,
        invert=params.invert,
        timeout=params.timeout,
    )
    return sources, params.replace(file_hints=None if hints is None or hints.empty else hints)


def draw_pictures(
    result: SolveResult, path: Path, sources: SourceList, out_dir: Path
) -> SolveResult:
    """Draw the pictures of ``result`` on the image at ``path`` into ``out_dir``.

    ``sources`` are the ones sent for the solve.  The pictures' files are
    added to ``result.files`` (replacing any of the same name drawn without
    the pixels); returns ``result``.
    """
    from skysolve.engine.fitting.quality import read_residuals
    from skysolve.engine.inputs.images import load_image
    from skysolve.engine.products.files import catalog_xy, draw_result_pictures

    image = load_image(path)
    if result.solved and result.wcs_header is not None:
        wcs = wcs_from_header(result.wcs_header, result.image_width, result.image_height)
        catalogue = catalog_xy(result.files.get("rdls"), wcs)
        # The final fit's residuals travelled in corr.fits.
        residuals = read_residuals(result.files.get("corr"))
        draw_result_pictures(
            result, image, sources, wcs, catalogue, result.annotations, out_dir,
            residuals=residuals,
        )  # fmt: skip
    else:
        draw_result_pictures(result, image, sources, None, None, [], out_dir)
    return result
