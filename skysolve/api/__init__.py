"""The nova.astrometry.net-compatible JSON API and the plain result-file URLs."""
