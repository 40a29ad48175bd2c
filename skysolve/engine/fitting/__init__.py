"""The final fit of every answer: all the stars a solution explains, the distortion
they support, and how good the result is.

Whichever solver found the field (the pattern-hash fast path or astrometry.net,
whichever index and process verified first), its WCS is only the start:

- :mod:`~skysolve.engine.fitting.matching` pairs detected sources with projected
  catalogue stars, one to one;
- :mod:`~skysolve.engine.fitting.wcsfit` fits TAN-SIP by least squares with the
  covariance of the fit, and chooses the SIP order by cross-validation;
- :mod:`~skysolve.engine.fitting.refine` grows the matched stars from the centre
  across the frame, rejects outliers and iterates until the matches settle;
- :mod:`~skysolve.engine.fitting.quality` states how good the answer is
  (residuals, uncertainties, limiting magnitude, photometric zero point, star
  shapes) and writes the per-star residuals.

Arrays in, a model out: nothing here knows about solvers or files beyond the
tables it is asked to write.
"""

from __future__ import annotations

from skysolve.engine.fitting.matching import match_one_to_one, pairs_within
from skysolve.engine.fitting.refine import MIN_STARS, Catalogue, Projection, Refit, refit
from skysolve.engine.fitting.wcsfit import MAX_ORDER, WcsFit, choose_order, fit_wcs

__all__ = [
    "MAX_ORDER",
    "MIN_STARS",
    "Catalogue",
    "Projection",
    "Refit",
    "WcsFit",
    "choose_order",
    "fit_wcs",
    "match_one_to_one",
    "pairs_within",
    "refit",
]
