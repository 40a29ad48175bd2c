"""One BLAS thread for overlapping users (the all-sky search beside the fast path)."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

from skysolve.engine.blas import one_blas_thread


def blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_it_restores_the_threads_when_the_last_user_leaves() -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        first, second = one_blas_thread(), one_blas_thread()
        first.__enter__()
        second.__enter__()
        assert set(blas_threads()) <= {1}
        # The first in leaves while the second still works on one thread.
        first.__exit__(None, None, None)
        assert set(blas_threads()) <= {1}
        second.__exit__(None, None, None)
        # threadpoolctl's own limits, overlapping so, left one thread for good.
        assert blas_threads() == before
