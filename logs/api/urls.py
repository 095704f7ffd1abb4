from __future__ import annotations

from django.urls import path

from logs.api import views

urlpatterns = [
    path("logs", views.LogList.as_view(), name="log-list"),
    path("logs/export", views.export, name="log-export"),
    path("logs/<str:log_id>", views.LogDetail.as_view(), name="log-detail"),
]
