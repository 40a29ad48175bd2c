"""Finding the calibration of a source list.

- :mod:`~skysolve.engine.solving.base`: the solver interface every solver implements;
- :mod:`~skysolve.engine.solving.astrometry`: the ``astrometry-engine`` driver;
- :mod:`~skysolve.engine.solving.fastpath`: the tetra3rs pattern-hash solver in
  front of astrometry.net.
"""
