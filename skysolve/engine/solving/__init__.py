"""Finding the calibration of a source list.

- :mod:`~skysolve.engine.solving.base`: the solver interface every solver implements;
- :mod:`~skysolve.engine.solving.astrometry`: the ``astrometry-engine`` driver;
- :mod:`~skysolve.engine.solving.fastpath`: the tetra3rs pattern-hash solver in
  front of astrometry.net;
- :mod:`~skysolve.engine.solving.ladder`: the attempt ladder, its clock and the
  time shares of the attempts (tested with fake solvers);
- :mod:`~skysolve.engine.solving.search`: the solving stage, the all-sky hook
  around the ladder;
- :mod:`~skysolve.engine.solving.answer`: a verified answer's final fit and header.
"""
