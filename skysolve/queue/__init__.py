"""The job queue: moves jobs from submission to a solver and back; it does not solve.

The embedded backend keeps the queue in the database (a ``Job`` row is the
message); :mod:`skysolve.queue.worker` claims rows.  :func:`enqueue` and
:func:`request_cancel` are the whole interface the web layer uses, so another
backend (Celery) can be added behind them.
"""
