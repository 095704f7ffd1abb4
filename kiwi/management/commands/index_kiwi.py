"""`manage.py index_kiwi`: index the configured Kiwi workspaces now, and say what changed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from kiwi.models import KiwiWorkspace


class Command(BaseCommand):
    help = "Index the Kiwi workspaces (kiwi: in mission_control.yml): only changed files are read."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("workspace", nargs="*", help="Only these workspaces (by name).")

    def handle(self, *args: Any, **options: Any) -> None:
        KiwiWorkspace.objects.configure(settings.MC.kiwi)
        workspaces = KiwiWorkspace.objects.order_by("name")
        if options["workspace"]:
            workspaces = workspaces.filter(name__in=options["workspace"])
        for workspace in workspaces:
            report = workspace.index()
            self.stdout.write(f"{workspace.name} ({workspace.root}): {report}")
            if workspace.last_error:
                self.stdout.write(f"  {workspace.last_error}")
            for path, reason in sorted(report.errors.items()):
                self.stdout.write(f"  not parsed: {path}: {reason}")
