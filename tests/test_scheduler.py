"""The beat schedule's tasks are registered in every process kind, and a missing one is refused."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from missioncontrol.checks import beat_schedule_tasks
from tests.processes import ROOT, clean_env

# A process that imports nothing but Django's setup, as `serve`, `run_gateway`, `celery
# beat` and the management commands do: its Celery app must know every scheduled task.
FRESH_PROCESS = """
import django
django.setup()
from django.conf import settings
from missioncontrol.celery import app
print(sorted(e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] not in app.tasks))
"""


def test_a_fresh_process_knows_every_task_of_the_beat_schedule(tmp_path: Any) -> None:
    env = clean_env(DJANGO_SETTINGS_MODULE="missioncontrol.settings", MC_DATA_DIR=str(tmp_path))
    seen = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert seen.stdout.strip() == "[]", seen.stderr


def test_the_system_check_refuses_an_entry_whose_task_no_app_registers(settings: Any) -> None:
    settings.CELERY_BEAT_SCHEDULE = {
        **settings.CELERY_BEAT_SCHEDULE,
        "typo": {"task": "mcps.chek_health", "schedule": 60.0},
    }
    (error,) = beat_schedule_tasks()
    assert error.id == "missioncontrol.E001"
    assert "'typo'" in error.msg and "'mcps.chek_health'" in error.msg
