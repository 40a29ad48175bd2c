"""Synthetic test fields for the tests and benchmarks: not part of the shipped package.

:mod:`testfields.synthetic` renders seeded star fields (star lists, FITS, PNG and
JPEG images with a known WCS) from the real catalogue; :mod:`testfields.allsky`
renders all-sky frames through a lens model.  ``pytest`` finds this package
because the repository root is on its path (``tests`` is a package, so its
rootdir is inserted); the scripts in ``bench/`` put the root on ``sys.path``
themselves.  ``pyproject.toml``'s ``packages.find`` includes only
``skysolve*``, so a wheel never ships it.
"""
