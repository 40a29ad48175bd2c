from __future__ import annotations

from django.contrib import admin

from skysolve.submissions.models import Album, ApiKey, Job, Profile, Submission, UserImage

admin.site.register([Profile, ApiKey, Album, Submission, UserImage])


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "stage", "owner_key", "queued_at", "attempts", "worker_id")
    list_filter = ("status",)
