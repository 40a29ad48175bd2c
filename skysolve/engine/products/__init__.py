"""What a solve gives back besides the calibration: the things drawn from it.

- :mod:`~skysolve.engine.products.annotations`: the objects in the field;
- :mod:`~skysolve.engine.products.constellations`: constellation lines and boundaries;
- :mod:`~skysolve.engine.products.pictures`: the annotated and red-green pictures;
- :mod:`~skysolve.engine.products.kml`: the KML/KMZ for Google Sky;
- :mod:`~skysolve.engine.products.files`: the result files of a solve (axy, wcs,
  corr, rdls, new FITS, KML) and its picture step.
"""
