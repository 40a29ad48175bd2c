from __future__ import annotations

from datetime import datetime

from django.db import models


class ServedOwner(models.Model):
    """When a submitter (user or anonymous session) last had a job started.

    The worker serves the submitter served longest ago first, so one user's
    burst of uploads cannot starve another user's single job.
    """

    owner_key: models.CharField[str, str] = models.CharField(max_length=80, primary_key=True)
    last_served: models.DateTimeField[datetime, datetime] = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.owner_key} served {self.last_served}"
