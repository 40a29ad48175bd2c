from __future__ import annotations

from django.apps import AppConfig


class QueueConfig(AppConfig):
    name = "skysolve.queue"
    label = "queue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The submissions announce queued jobs without importing the queue.
        from skysolve.queue.backend import on_job_queued
        from skysolve.submissions.signals import job_queued

        job_queued.connect(on_job_queued, dispatch_uid="skysolve.queue.enqueue")
        # The fair queue's waiting submitters (skysolve.queue.waiting).
        from django.db.models.signals import post_save

        from skysolve.queue import waiting
        from skysolve.submissions.models import Job

        post_save.connect(waiting.job_marked, sender=Job, dispatch_uid="skysolve.queue.waiting")
        job_queued.connect(waiting.job_queued, dispatch_uid="skysolve.queue.waiting")
