"""`manage.py restore_logs --from DAY --to DAY`: make archived days queryable again."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from logs import archive


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"expected a day as YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = "Restore archived days of logs into the database (kept there for log_retention.hot)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD")
        parser.add_argument("--mcp", action="append", dest="mcps", help="only this server (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        first, last = _day(options["first"]), _day(options["last"])
        if last < first:
            raise CommandError("--to is before --from")
        days, rows = archive.restore(first, last, options["mcps"])
        self.stdout.write(f"restored {rows} log(s) from {days} archived day file(s)")
