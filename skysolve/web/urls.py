from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("skysolve.ops.urls")),
    path("", include("skysolve.api.urls")),
    path("", include("skysolve.front.urls")),
    path("", include("skysolve.accounts.urls")),
]
