"""The job queue: claims jobs, leases, dispatches, times out, cancels and records.

It does not solve and it does not prepare input: a job's input (fetched URL,
expanded archive, star list, parameters and hints) comes from
:func:`skysolve.submissions.preparation.prepare`, the solve from the engine (or
a Celery worker, or an ssh solve host; for an image too large to send to
Celery the engine finds its sources and draws its pictures on this side,
:mod:`skysolve.engine.offload`).  The ``Job`` row is the queue entry;
:mod:`skysolve.queue.worker` claims rows, :mod:`skysolve.queue.dispatch` sends
them to Celery.  The submissions never import this package: they announce a
queued job through :data:`skysolve.submissions.signals.job_queued`.
"""
