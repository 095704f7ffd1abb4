"""Tasks the Celery tests run in a real worker (`-I tests.celery_tasks`) or eagerly."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task


@shared_task(name="tests.slow_mark")
def slow_mark(path: str, seconds: float) -> str:
    """Note the start (with this process's pid), wait, note the end: what a killed run leaves."""
    with Path(path).open("a") as out:
        out.write(f"start {os.getpid()}\n")
    time.sleep(seconds)
    with Path(path).open("a") as out:
        out.write("done\n")
    return "done"


@shared_task(name="tests.refuse")
def refuse(reason: str) -> None:
    raise ValueError(reason)
