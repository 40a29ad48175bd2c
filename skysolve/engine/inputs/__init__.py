"""What a solve starts from: images, archives of images, star lists, and the
hints (position, scale) read from their headers.

- :mod:`~skysolve.engine.inputs.images`: reading any image format into pixels;
- :mod:`~skysolve.engine.inputs.archives`: tar and zip archives of images, read safely;
- :mod:`~skysolve.engine.inputs.starlists`: star lists (``xyls``, text tables);
- :mod:`~skysolve.engine.inputs.hints`: RA/Dec/scale from FITS headers, EXIF and
  learned hints;
- :mod:`~skysolve.engine.inputs.camera`: the one reader of camera keywords (focal
  length, pixel size, binning) from header cards.
"""
