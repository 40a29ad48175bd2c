"""The one exception tree of skysolve.

Everything that goes wrong outside our own code (a library that cannot read a
file, the solver binary, a remote solve host) is translated at the edge into one
of these, so callers need to know only this module.  ``retryable`` tells the
queue whether trying the same job again may succeed.
"""

from __future__ import annotations


class SolveError(Exception):
    """Base class of every error skysolve raises on purpose."""

    #: Short machine-readable reason, stable across versions (used in metrics and the API).
    code: str = "solve_error"
    #: True when the same work may succeed if tried again (a lost worker, a crashed solver).
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInputError(SolveError):
    """The input cannot be used: unreadable, unsupported, empty or absurd."""

    code = "bad_input"


class UnsupportedFormatError(BadInputError):
    """The file is not in any format skysolve reads."""

    code = "unsupported_format"


class CorruptFileError(BadInputError):
    """The file claims a supported format but is truncated or damaged."""

    code = "corrupt_file"


class ImageTooLargeError(BadInputError):
    """The image (or star list) is larger than the configured limits."""

    code = "too_large"


class InvalidParameterError(BadInputError):
    """A solve parameter is out of range or inconsistent with another."""

    code = "invalid_parameter"


class NoStarsError(SolveError):
    """Source extraction found too few stars to attempt a solve."""

    code = "no_stars"


class NoMatchError(SolveError):
    """The solver searched and found no calibration."""

    code = "no_match"


class NoIndexError(SolveError):
    """No configured index file can match the requested scale range."""

    code = "no_index"


class SolveTimeoutError(SolveError):
    """The solve ran past its wall-clock limit and was stopped."""

    code = "timeout"


class SolveCancelledError(SolveError):
    """The solve was cancelled by its owner."""

    code = "cancelled"


class SolverFailedError(SolveError):
    """The solver process crashed or misbehaved; trying again may work."""

    code = "solver_failed"
    retryable = True


class IndexFetchError(SolveError):
    """An index file could not be downloaded whole and correct; nothing was installed."""

    code = "index_fetch"
    retryable = True


class ConfigurationError(SolveError):
    """skysolve itself is misconfigured (missing binary, no index directory)."""

    code = "configuration"
