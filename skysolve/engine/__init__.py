"""The solving engine: images and star lists in, calibrations out.

This layer imports no Django; the web and queue layers call it.  Laid out by job:

- :mod:`~skysolve.engine.inputs`: images, archives, star lists, header hints and
  the camera-keyword reader;
- :mod:`~skysolve.engine.extraction`: finding the stars of an image;
- :mod:`~skysolve.engine.solving`: the solver interface, the astrometry.net driver
  and the pattern-hash fast path;
- :mod:`~skysolve.engine.fitting`: the final fit of every answer;
- :mod:`~skysolve.engine.allsky`: lens models of all-sky and fisheye frames;
- :mod:`~skysolve.engine.indexes`: astrometry.net's index files, installed,
  chosen, fetched and built;
- :mod:`~skysolve.engine.products`: what is drawn from an answer (annotations,
  pictures, KML);
- :mod:`~skysolve.engine.pipeline`: the whole solve, with :mod:`~skysolve.engine.params`
  (what a request asks), :mod:`~skysolve.engine.results` (what it gets back),
  :mod:`~skysolve.engine.wire` (both as JSON between hosts) and
  :mod:`~skysolve.engine.offload` (an image too large to send to a worker).
"""
