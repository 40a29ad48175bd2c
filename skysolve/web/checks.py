"""System checks for configuration (stable ids skysolve.E0xx / W0xx)."""
