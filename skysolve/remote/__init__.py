"""Solving on another machine.

:mod:`skysolve.remote.protocol` is the framed stream a solve host speaks,
:mod:`skysolve.remote.server` answers one job on stdin/stdout (``skysolve
solve-server``, an ssh forced command) and :mod:`skysolve.remote.ssh` is the
client, a drop-in for :func:`skysolve.engine.pipeline.solve`.
"""
