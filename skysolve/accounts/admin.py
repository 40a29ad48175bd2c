from __future__ import annotations

from django.contrib import admin

from skysolve.accounts.models import ApiKey, Profile

admin.site.register([Profile, ApiKey])
