from __future__ import annotations

from django.urls import path

from missioncontrol.ingest.views import ingest_events

urlpatterns = [path("events", ingest_events, name="ingest-events")]
