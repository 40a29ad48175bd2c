"""astrometry.net index files and the catalogue inside them.

- :mod:`~skysolve.engine.indexes.files`: reading index headers and finding the
  installed files;
- :mod:`~skysolve.engine.indexes.choosing`: choosing the files a solve loads;
- :mod:`~skysolve.engine.indexes.series`: the published series (4100, 4200, 5200)
  and which files a field needs (the recommendations);
- :mod:`~skysolve.engine.indexes.fetch`: downloading files from a mirror;
- :mod:`~skysolve.engine.indexes.build`: building custom files from a catalogue;
- :mod:`~skysolve.engine.indexes.installed`: where files are installed, checking
  and removing them;
- :mod:`~skysolve.engine.indexes.healpix`: astrometry.net's tile numbers;
- :mod:`~skysolve.engine.indexes.catalog`: the stars stored inside the files.
"""
