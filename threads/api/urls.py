from __future__ import annotations

from django.urls import path

from threads.api import views

urlpatterns = [
    path("threads/<str:thread_id>", views.ThreadDetail.as_view(), name="thread-detail"),
    path("threads/<str:thread_id>/timeline", views.ThreadTimeline.as_view(), name="thread-timeline"),
]
