"""`manage.py seed_demo`: the first-run demo (see missioncontrol.demo.seed); idempotent."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from missioncontrol.demo.seed import is_empty, seed


class Command(BaseCommand):
    help = "Register mcp-server-time and the demo agent, and record one round of it (once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="only on a database with no data yet")
        parser.add_argument("--no-round", action="store_true", help="register only; record no round")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO:
            self.stdout.write("demo: switched off (config `demo: false` or MC_DEMO=0)")
            return
        if options["if_empty"] and not is_empty():
            self.stdout.write("demo: the database has data already; not seeding")
            return
        result = seed(run_agent=not options["no_round"])
        if result.thread_id:
            self.stdout.write(f"demo: {result.reason}; first thread {result.thread_id}")
        else:
            self.stdout.write(f"demo: {result.reason}")
