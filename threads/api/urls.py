from __future__ import annotations

from django.urls import path

from threads.api import views

urlpatterns = [
    path("threads", views.ThreadList.as_view(), name="thread-list"),
    path("threads/<str:thread_id>", views.ThreadDetail.as_view(), name="thread-detail"),
    path("threads/<str:thread_id>/timeline", views.ThreadTimeline.as_view(), name="thread-timeline"),
    path("threads/<str:thread_id>/transcript", views.ThreadTranscript.as_view(), name="thread-transcript"),
    path("threads/<str:thread_id>/children", views.ThreadChildren.as_view(), name="thread-children"),
    path("sessions", views.SessionList.as_view(), name="session-list"),
    path("sessions/<str:session_id>", views.SessionDetail.as_view(), name="session-detail"),
]
