"""Tasks the Celery tests run in a real worker (`-I tests.celery_tasks`) or eagerly."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task

from automations.scripts import script


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


def _marked_wait(path: str, seconds: float) -> dict[str, float]:
    with Path(path).open("a") as out:
        out.write(f"start {os.getpid()}\n")
    time.sleep(seconds)
    with Path(path).open("a") as out:
        out.write("done\n")
    return {"waited": seconds}


# Directive steps for the tests of a worker killed mid-run (tests/test_directive_worker_lost.py):
# one that only reads, so safe to repeat, and one that writes.
script("tests_wait_read", "Notes its start, waits, notes its end.", permissions=["read:tests"])(_marked_wait)
script("tests_wait_write", "The same, as if it wrote.", permissions=["write:tests"])(_marked_wait)
