from __future__ import annotations

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "skysolve.web"
    label = "web"
    verbose_name = "skysolve web service"

    def ready(self) -> None:
        # Importing registers the system checks.
        from skysolve.web import checks  # noqa: F401
