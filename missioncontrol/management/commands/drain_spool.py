"""`manage.py drain_spool`: replay spooled ingest batches into the database now."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError, CommandParser

from missioncontrol.ingest.spool import default_spool, drain_default


class Command(BaseCommand):
    help = "Replay the ingest spool (batches kept while the database was unreachable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-files", type=int, default=None, help="stop after this many batch files")

    def handle(self, *args: Any, **options: Any) -> None:
        files, size = default_spool().depth()
        self.stdout.write(f"spool: {files} batch file(s), {size} bytes in {default_spool().directory}")
        report = drain_default(max_files=options["max_files"])
        for outbox in report.outboxes:
            async_to_sync(outbox.send)()
        self.stdout.write(
            f"replayed {report.files} batch(es), {report.events} event(s); {report.remaining} left"
        )
        if report.error:
            raise CommandError(f"the database is still unavailable: {report.error}")
