"""A settable clock and a test worker for the queue's one-step methods."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from skysolve.engine.results import SolveFunction
from skysolve.queue.worker import Worker


class Clock:
    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def worker(solver: SolveFunction | None, clock: Clock | None = None, **kwargs: Any) -> Worker:
    """A worker whose steps tests call directly: no heartbeat thread, a 60 s lease."""
    return Worker(
        solver=solver,
        clock=clock or Clock(),
        heartbeat_thread=False,
        lease_seconds=60,
        **kwargs,
    )
