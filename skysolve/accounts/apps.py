from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "skysolve.accounts"
    label = "accounts"
    verbose_name = "skysolve accounts"
