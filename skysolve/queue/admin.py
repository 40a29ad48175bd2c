from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from skysolve.queue import heartbeat
from skysolve.queue.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """The worker processes, idle or busy, as their heartbeats tell; read-only."""

    list_display = (
        "worker_id",
        "kind",
        "alive",
        "host",
        "pid",
        "concurrency",
        "started_at",
        "last_seen",
    )
    list_filter = ("kind", "host")
    search_fields = ("worker_id", "host")
    ordering = ("kind", "-last_seen")

    @admin.display(boolean=True, description="alive")
    def alive(self, row: WorkerHeartbeat) -> bool:
        return row.last_seen > heartbeat.alive_cutoff()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
