from __future__ import annotations

from django.urls import path

from usage.api import views

urlpatterns = [
    path("usage", views.UsageReport.as_view(), name="usage-report"),
]
