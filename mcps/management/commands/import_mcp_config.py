"""manage.py import_mcp_config PATH: register the servers of an MCP host's config file.

Reads the `{"mcpServers": {...}}` JSON that Claude Desktop, Cursor and VS Code use.
Each server is created or updated by slug; one that fails validation is reported with
its reason and the others are still imported. Exit status 1 if any failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mcps.models import MCPServer
from mcps.registration import EntryError, register_host_config


class Command(BaseCommand):
    help = "Import MCP servers from a host's mcpServers JSON (Claude Desktop, Cursor)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="e.g. ~/.cursor/mcp.json or claude_desktop_config.json")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"]).expanduser()
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise CommandError(f"{path}: no such file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{path}: cannot read it: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: not valid JSON: {exc}") from exc
        try:
            result = register_host_config(data, MCPServer.Source.IMPORT)
        except EntryError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        for label, slugs in (("created", result.created), ("updated", result.updated)):
            for slug in slugs:
                self.stdout.write(f"{label} {slug}")
        for slug in result.unchanged:
            self.stdout.write(f"unchanged {slug}")
        for name, reason in result.errors.items():
            self.stderr.write(f"error {name}: {reason}")
        total = len(result.created) + len(result.updated) + len(result.unchanged)
        self.stdout.write(f"{total} server(s) imported, {len(result.errors)} failed")
        if result.errors:
            raise SystemExit(1)
