from __future__ import annotations

from django.apps import AppConfig


class QueueConfig(AppConfig):
    name = "skysolve.queue"
    label = "queue"
    default_auto_field = "django.db.models.BigAutoField"
