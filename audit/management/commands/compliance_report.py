"""manage.py compliance_report --from 2026-11-01 --to 2026-12-01 --format json|csv|text [--output FILE]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.compliance import BadPeriod, compliance_report, period
from missioncontrol.jsontext import dumps


class Command(BaseCommand):
    help = "The compliance report of a period: checks, grants, denials, top denials, escalations."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--from", dest="start", help="ISO 8601 date or datetime (default: --to minus 7 days)"
        )
        parser.add_argument("--to", dest="end", help="ISO 8601 date or datetime, excluded (default: now)")
        parser.add_argument("--format", choices=("json", "csv", "text"), default="text")
        parser.add_argument("--output", help="Write to this file instead of stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            start, end = period(options["start"], options["end"])
        except BadPeriod as exc:
            raise CommandError(f"--{exc.field}: {exc.reason}") from None
        report = compliance_report(start, end)
        fmt = options["format"]
        if fmt == "json":
            text = dumps(report.as_dict()) + "\n"
        elif fmt == "csv":
            text = report.as_csv()
        else:
            text = report.as_text()
        if options["output"]:
            Path(options["output"]).write_text(text)
            self.stderr.write(f"wrote {options['output']}")
        else:
            self.stdout.write(text, ending="")
