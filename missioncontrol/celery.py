"""The Celery app; settings come from Django's (CELERY_ namespace)."""

from __future__ import annotations

import os

from celery import Celery

from missioncontrol import taskruns

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missioncontrol.settings")

app = Celery("missioncontrol")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
taskruns.connect(app)  # every execution recorded as a TaskRun
