"""Per-user and per-address limits, counted in the database: new submissions, and
lookups of ids that do not exist (:func:`check_id_lookups`, :func:`record_miss`).

``SKYSOLVE_RATE_LIMIT_USER_PER_HOUR`` and ``SKYSOLVE_RATE_LIMIT_IP_PER_HOUR``
(0 = off) cap the submissions of the last hour; staff are exempt.  The API's
upload and url_upload and the web site's upload form reserve their slots with
:func:`submission_slots` around the submission, so a refused or invalid
request costs nothing.  Over the limit a request gets HTTP 429 with nova's
error shape, a ``Retry-After`` header and the same words as its reason phrase
(clients that stop at the status code still show them).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils import timezone

from skysolve.accounts.models import LookupMiss, SubmissionEvent
from skysolve.errors import RateLimited

WINDOW = timedelta(hours=1)

log = logging.getLogger(__name__)


__all__ = ["RateLimited"]  # raised here; it lives in skysolve.errors


def client_ip(request: HttpRequest) -> str:
    """The client's address; behind a proxy (USE_X_FORWARDED_FOR) the one it appended.

    Only the last X-Forwarded-For entry is the proxy's own observation; the
    ones before it are whatever the client wrote.
    """
    if settings.USE_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        if forwarded:
            return forwarded[:64]
    return str(request.META.get("REMOTE_ADDR") or "")[:64]


def _limits(
    user: User | None, ip: str, *, anonymous_web: bool = False
) -> list[tuple[int, dict[str, object], str]]:
    limits: list[tuple[int, dict[str, object], str]] = []
    if user is not None:
        limits.append((settings.SKYSOLVE_RATE_LIMIT_USER_PER_HOUR, {"user": user}, "per user"))
    if ip:
        limits.append((settings.SKYSOLVE_RATE_LIMIT_IP_PER_HOUR, {"ip": ip}, "per address"))
    if anonymous_web and user is None:
        # Anonymous submissions from one address: the form's, and the API's
        # anonymous ones as far as they were recorded (under the address limit).
        limits.append(
            (
                settings.SKYSOLVE_RATE_LIMIT_ANONYMOUS_PER_HOUR,
                {"ip": ip, "user__isnull": True},
                "per address without signing in",
            )
        )
    return [item for item in limits if item[0] > 0]


@contextmanager
def submission_slots(
    user: User | None, ip: str, count: int = 1, *, anonymous_web: bool = False
) -> Iterator[None]:
    """Reserve ``count`` submissions for the body of the ``with``; raise RateLimited when over.

    ``anonymous_web``: the web site's upload form without an account, which
    also counts against ``SKYSOLVE_RATE_LIMIT_ANONYMOUS_PER_HOUR``.

    The rows are written first and counted after, so concurrent requests in
    other processes cannot both slip under the limit; a request that fails
    (over the limit, or rejected by validation) takes its rows back.
    """
    if (user is not None and user.is_staff) or count <= 0:
        yield
        return
    limits = _limits(user, ip, anonymous_web=anonymous_web)
    if not limits:
        yield
        return
    now = timezone.now()
    SubmissionEvent.objects.filter(at__lt=now - WINDOW).delete()
    created = SubmissionEvent.objects.bulk_create(
        [SubmissionEvent(at=now, user=user, ip=ip) for _ in range(count)]
    )
    ids = [event.pk for event in created if event.pk is not None]
    try:
        for limit, match, scope in limits:
            recent = SubmissionEvent.objects.filter(at__gt=now - WINDOW, **match)
            over = recent.count() - limit
            if over > 0:
                # A slot frees when the over-th oldest of these leaves the window.
                times = recent.order_by("at").values_list("at", flat=True)
                freed = (times[over - 1] if over <= limit else now) + WINDOW
                retry = max(1, math.ceil((freed - now).total_seconds()))
                raise RateLimited(
                    f"rate limit reached: at most {limit} submissions per hour {scope}; "
                    f"try again in {math.ceil(retry / 60)} min",
                    retry_after=retry,
                )
        yield
    except BaseException:
        if ids:
            SubmissionEvent.objects.filter(pk__in=ids).delete()
        else:  # databases that do not return ids from bulk inserts
            SubmissionEvent.objects.filter(at=now, user=user, ip=ip).delete()
        raise


# -- guessing ids -----------------------------------------------------------------
#
# In the open privacy mode whoever holds a job id reads its results, so ids must
# not be guessable in bulk.  Each lookup of an id that does not exist is stored
# (one row per address and distinct id, for an hour); past
# SKYSOLVE_ID_MISSES_PER_HOUR distinct misses the address's id lookups answer
# 429 until the oldest misses age out.  Hits never touch these rows: a process
# remembers the addresses it found over the limit, so checking costs a lookup
# in a dict, not a query, and honest pollers of their own jobs pay nothing.
# Other processes learn of an address on its next miss there (a prober's
# requests are nearly all misses, so within a request or two).

_blocked: dict[str, float] = {}  # address -> time.time() when its lookups resume
_blocked_lock = threading.Lock()


def _probe_refusal(retry_after: int) -> RateLimited:
    limit = settings.SKYSOLVE_ID_MISSES_PER_HOUR
    return RateLimited(
        f"too many lookups of ids that do not exist: at most {limit} per hour per address; "
        f"try again in {math.ceil(retry_after / 60)} min",
        retry_after=retry_after,
    )


def check_id_lookups(ip: str) -> None:
    """Raise RateLimited when this process knows ``ip`` is over the miss limit."""
    if not _blocked or settings.SKYSOLVE_ID_MISSES_PER_HOUR <= 0:
        return
    until = _blocked.get(ip)
    if until is None:
        return
    remaining = until - time.time()
    if remaining <= 0:
        with _blocked_lock:
            if _blocked.get(ip) == until:
                del _blocked[ip]
        return
    raise _probe_refusal(max(1, math.ceil(remaining)))


def record_miss(ip: str, kind: str, object_id: int) -> None:
    """Count a lookup of a missing ``kind`` id from ``ip``; raise RateLimited past the limit."""
    limit = settings.SKYSOLVE_ID_MISSES_PER_HOUR
    if limit <= 0 or not ip:
        return
    now = timezone.now()
    LookupMiss.objects.filter(at__lt=now - WINDOW).delete()
    # One row per distinct id: a repeated miss (a client polling a vanished job) is free.
    LookupMiss.objects.bulk_create(
        [LookupMiss(at=now, ip=ip, kind=kind, object_id=max(-(2**63), min(object_id, 2**63 - 1)))],
        ignore_conflicts=True,
    )
    recent = LookupMiss.objects.filter(ip=ip, at__gt=now - WINDOW)
    over = recent.count() - limit
    if over <= 0:
        return
    # Lookups resume when the over-th oldest miss leaves the window.
    times = recent.order_by("at").values_list("at", flat=True)
    freed = times[over - 1] + WINDOW
    retry = max(1, math.ceil((freed - now).total_seconds()))
    with _blocked_lock:
        first = ip not in _blocked
        _blocked[ip] = time.time() + retry
    if first:
        log.warning(
            "address %s looked up %d ids that do not exist within an hour (limit %d); "
            "refusing its id lookups for %d s",
            ip, limit + over, limit, retry,
        )  # fmt: skip
    raise _probe_refusal(retry)


def forget_blocked_addresses() -> None:
    """Empty this process's memory of blocked addresses (tests; the rows stay)."""
    with _blocked_lock:
        _blocked.clear()
