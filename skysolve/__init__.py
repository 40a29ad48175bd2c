"""skysolve: a self-hostable plate-solving service.

Layers: :mod:`skysolve.engine` (no Django) turns images and star lists into
calibrations; the web/API layer and the queue layer build on it.
"""

__version__ = "0.1.0"
