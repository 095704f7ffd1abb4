from __future__ import annotations

from django.urls import path

from logs import views

urlpatterns = [path("logs", views.log_stream, name="log-page")]
