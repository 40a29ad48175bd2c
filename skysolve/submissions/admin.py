from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from skysolve.submissions import services
from skysolve.submissions.models import Job, Submission, UserImage

admin.site.register([Submission, UserImage])


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """The queue: what waits, what runs where, what failed and why."""

    list_display = (
        "id",
        "status",
        "stage",
        "owner_key",
        "submission_id",
        "queued_at",
        "started_at",
        "finished_at",
        "attempts",
        "worker_id",
        "lease_expires",
        "error_code",
    )
    list_filter = ("status", "error_code", "stage")
    search_fields = ("=id", "owner_key", "worker_id", "=user_image__submission__id")
    ordering = ("-queued_at",)
    list_select_related = ("user_image",)
    readonly_fields = ("result", "log")
    actions = ("retry_jobs", "cancel_jobs")

    @admin.display(description="submission")
    def submission_id(self, job: Job) -> int:
        return int(job.user_image.submission_id)  # type: ignore[attr-defined]

    @admin.action(description="Retry the selected failed or cancelled jobs")
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        done = sum(services.retry_job(job_id) for job_id in queryset.values_list("id", flat=True))
        skipped = queryset.count() - done
        self.message_user(request, f"{done} job(s) queued again, {skipped} not finished so skipped")

    @admin.action(description="Cancel the selected queued or running jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        pending = list(
            queryset.filter(status__in=(Job.QUEUED, Job.RUNNING)).values_list("id", flat=True)
        )
        for job_id in pending:
            services.request_cancel(job_id)
        self.message_user(request, f"{len(pending)} job(s) cancelled", messages.SUCCESS)
