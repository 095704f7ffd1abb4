"""manage.py create_ingest_key NAME [--mcp SERVER_ID] [--team SLUG]: the raw key alone on the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mcps.models import IngestKey, MCPServer
from missioncontrol.models import Team


class Command(BaseCommand):
    help = "Create an ingest key; prints it once (it is stored hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="A unique name for the key, e.g. the server it is for.")
        parser.add_argument(
            "--mcp",
            metavar="SERVER_ID",
            help="Bind the key to this MCP server (created if new): its events default to, "
            "and may only name, this server.",
        )

        parser.add_argument(
            "--team",
            metavar="SLUG",
            help="The team whose members see what this key pushes (without one: admins only).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        if IngestKey.objects.filter(name=name).exists():
            raise CommandError(
                f"an ingest key named {name!r} exists; revoke it in the admin or pick another name"
            )
        server = None
        if options["mcp"]:
            server, _ = MCPServer.objects.get_or_create(id=options["mcp"], defaults={"name": options["mcp"]})
        team = None
        if options["team"]:
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(
                    f"no team {options['team']!r}; create it with create_user --team or the admin"
                )
        key, raw = IngestKey.objects.issue(name, server, team)
        scope = f"server {server.id}" if server else "any server"
        self.stderr.write(f"Created ingest key {key.name!r} for {scope}. It is shown once:")
        self.stdout.write(raw)
