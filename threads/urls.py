from __future__ import annotations

from django.urls import path

from threads import views

urlpatterns = [
    path("threads", views.thread_list, name="thread-list-page"),
    path("threads/<str:thread_id>", views.thread_page, name="thread-page"),
    path("sessions", views.session_list, name="session-list-page"),
    path("sessions/<str:session_id>", views.session_page, name="session-page"),
]
