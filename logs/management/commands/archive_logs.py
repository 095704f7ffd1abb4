"""`manage.py archive_logs`: apply the log retention tiers now (the beat task does it daily)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from logs import archive


class Command(BaseCommand):
    help = "Archive days of logs past log_retention.hot; move warm files to cold; drop files past cold."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        bar = tqdm(unit="day", desc="archiving", disable=options["no_progress"], file=self.stderr)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            report = archive.archive(progress=progress)
        finally:
            bar.close()
        self.stdout.write(
            f"archived {report.rows} log(s) in {report.days} day file(s); "
            f"{report.moved_cold} moved to cold; {report.expired} expired"
        )
