"""Solver logs as people read them: what happened, not where the files live.

A job's log is written by the engine and by astrometry-engine, which name the
files they read and write by absolute path: the data directory, a job's attempt
directory (``.../jobs/.attempts/7.1.ab12cd34/work/field.axy``), the fast-path
database and the index files.  Those paths say nothing a user needs and tell
everyone how the server is laid out, so every log shown on a page or served by
URL goes through :func:`shown_log`, which keeps only the file's name.
"""

from __future__ import annotations

import re

#: An absolute path of two or more parts, not part of a URL (``http://h/p``) or
#: of a longer word: ``/a/b/c.fits`` and ``"/tmp/x y"``'s ``/tmp/x`` alike.
_ABSOLUTE = re.compile(r"(?<![\w.:/~-])(?:~)?/(?:[\w.@+=,%-]+/)+([\w.@+=,%-]*)")
#: A path relative to the jobs directory, as an attempt names its own files.
_ATTEMPT = re.compile(r"(?<![\w/])(?:[\w.@+=,%-]+/)*\.attempts/(?:[\w.@+=,%-]+/)*([\w.@+=,%-]*)")


def shown_log(text: str) -> str:
    """``text`` with every file path reduced to the file's name.

    A path that ends in a directory (``/srv/skysolve/``) becomes nothing more
    than that directory's role would tell, so it is dropped to ``…``.
    """

    def name(match: re.Match[str]) -> str:
        return match.group(1) or "…"

    return _ATTEMPT.sub(name, _ABSOLUTE.sub(name, text))
