"""One BLAS thread while many small least-squares problems run.

The fast path's refit, the all-sky search and the final fit each solve
hundreds of small problems, where BLAS threads only wait for each other.
``threadpoolctl``'s limit is process-wide and restores, on leaving, what it
found on entering: two threads inside overlapping limits (the all-sky search
beside the ordinary solvers) could leave the process on one thread for good
(the second to leave restores the first's limit).  :func:`one_blas_thread`
counts who is inside: the first in sets the limit, the last out restores it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_inside = 0
_limits: Any = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread in the block (and in any other thread meanwhile)."""
    global _inside, _limits
    from threadpoolctl import threadpool_limits

    with _lock:
        if _inside == 0:
            _limits = threadpool_limits(limits=1, user_api="blas")
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _limits.restore_original_limits()
                _limits = None
