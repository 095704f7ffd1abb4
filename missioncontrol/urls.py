from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from missioncontrol import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("health", views.health, name="health"),
    path("api/", include("mcps.api.urls")),
    path("api/", include("threads.api.urls")),
    path("api/", include("logs.api.urls")),
    path("api/", include("audit.api.urls")),
    path("admin/", admin.site.urls),
]
