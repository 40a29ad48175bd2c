"""The queue's numbers in the Prometheus text format, computed from the database.

Every web process answers the same (the ``Job`` table is the source of truth,
the ``WorkerHeartbeat`` table says which workers are alive), so the numbers
need no shared in-memory registry and survive restarts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from skysolve.queue.heartbeat import alive_by_kind
from skysolve.submissions.models import Job

#: Upper bounds (seconds) of the duration histograms.
DURATION_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
WAIT_BUCKETS: tuple[float, ...] = (0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


def render() -> str:
    lines: list[str] = []
    counts = dict(Job.objects.values_list("status").annotate(n=Count("id")).order_by())
    lines += _family("skysolve_jobs", "gauge", "Jobs by queue state.")
    for status, _ in Job.STATUS_CHOICES:
        lines.append(f'skysolve_jobs{{status="{status}"}} {counts.get(status, 0)}')

    finished = Job.objects.filter(
        status__in=(Job.SUCCESS, Job.FAILURE), started_at__isnull=False, finished_at__isnull=False
    )
    lines += _histogram(
        "skysolve_job_duration_seconds",
        "Time from a worker starting a job to its result (finished jobs).",
        finished,
        F("finished_at") - F("started_at"),
        DURATION_BUCKETS,
    )
    started = Job.objects.filter(started_at__isnull=False)
    lines += _histogram(
        "skysolve_job_queue_wait_seconds",
        "Time jobs waited in the queue before a worker started them (last start).",
        started,
        F("started_at") - F("queued_at"),
        WAIT_BUCKETS,
    )

    failures = (
        Job.objects.filter(status=Job.FAILURE)
        .values_list("error_code")
        .annotate(n=Count("id"))
        .order_by("error_code")
    )
    lines += _family("skysolve_job_failures_total", "counter", "Failed jobs by error code.")
    for code, n in failures:
        lines.append(f'skysolve_job_failures_total{{error_code="{_label(code or "unknown")}"}} {n}')

    now = timezone.now()
    alive = (
        Job.objects.filter(status=Job.RUNNING, lease_expires__gt=now)
        .values("worker_id")
        .distinct()
        .count()
    )
    lines += _family(
        "skysolve_workers_busy", "gauge", "Workers holding a live lease on a running job."
    )
    lines.append(f"skysolve_workers_busy {alive}")
    stale = Job.objects.filter(status=Job.RUNNING, lease_expires__lte=now).count()
    lines += _family(
        "skysolve_jobs_lease_expired", "gauge", "Running jobs whose worker stopped renewing."
    )
    lines.append(f"skysolve_jobs_lease_expired {stale}")
    oldest = Job.objects.filter(status=Job.QUEUED).order_by("queued_at").first()
    age = 0.0 if oldest is None else max(0.0, (now - oldest.queued_at).total_seconds())
    lines += _family("skysolve_oldest_queued_seconds", "gauge", "Age of the oldest queued job.")
    lines.append(f"skysolve_oldest_queued_seconds {age:.3f}")

    by_kind = alive_by_kind(now)
    lines += _family(
        "skysolve_workers_alive",
        "gauge",
        "Worker processes with a recent heartbeat, idle or busy, by kind.",
    )
    for kind, (processes, _) in by_kind.items():
        lines.append(f'skysolve_workers_alive{{kind="{kind}"}} {processes}')
    lines += _family(
        "skysolve_worker_concurrency",
        "gauge",
        "Jobs the live workers can run at once, by kind (dispatcher: its slots).",
    )
    for kind, (_, concurrency) in by_kind.items():
        lines.append(f'skysolve_worker_concurrency{{kind="{kind}"}} {concurrency}')
    return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _histogram(
    name: str, help_text: str, jobs: QuerySet[Job], expression: Any, buckets: Sequence[float]
) -> list[str]:
    duration = ExpressionWrapper(expression, output_field=DurationField())
    annotated = jobs.annotate(duration=duration)
    aggregates = {
        f"le{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(buckets)
    }
    row = annotated.aggregate(
        count=Count("id"), total=Coalesce(Sum("duration"), timedelta(0)), **aggregates
    )
    lines = _family(name, "histogram", help_text)
    for i, bound in enumerate(buckets):
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {row[f"le{i}"]}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {row["count"]}')
    lines.append(f"{name}_sum {row['total'].total_seconds():.3f}")
    lines.append(f"{name}_count {row['count']}")
    return lines


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
