from __future__ import annotations

from django.urls import path

from skysolve.ops import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("health/", views.health),
    path("health/workers", views.workers, name="health-workers"),
    path("health/workers/", views.workers),
    path("metrics", views.metrics, name="metrics"),
    path("metrics/", views.metrics),
]
