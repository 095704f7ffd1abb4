from __future__ import annotations

from django.contrib import admin
from django.urls import path

from missioncontrol import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("health", views.health, name="health"),
    path("admin/", admin.site.urls),
]
