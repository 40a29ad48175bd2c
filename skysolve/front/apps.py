from __future__ import annotations

from django.apps import AppConfig


class FrontConfig(AppConfig):
    name = "skysolve.front"
    label = "front"
    verbose_name = "skysolve web site"
