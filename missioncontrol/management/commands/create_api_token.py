"""manage.py create_api_token NAME --user USERNAME [--team SLUG] [--metrics-only]: the token
alone on the last line."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import access
from missioncontrol.models import APIToken, Team


class Command(BaseCommand):
    help = "Issue an API token acting as a user, for a team; prints it once (it is stored hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="What the token is for, e.g. the agent or host using it.")
        parser.add_argument("--user", required=True, help="The user the token acts as (its role applies).")
        parser.add_argument(
            "--team", metavar="SLUG", help="The team its threads belong to (default: the user's only team)."
        )
        parser.add_argument(
            "--metrics-only",
            action="store_true",
            help="A token that reads /metrics and nothing else: a Prometheus scraper's credential.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        owner = get_user_model().objects.filter(username=options["user"]).first()
        if owner is None:
            raise CommandError(f"no user {options['user']!r}; create it with create_user")
        if options["team"]:
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(f"no team {options['team']!r}")
        else:
            teams = list(owner.teams.all()[:2])
            team = teams[0] if len(teams) == 1 else None
        scope = APIToken.Scope.METRICS if options["metrics_only"] else APIToken.Scope.ALL
        token, raw = APIToken.objects.issue(options["name"], owner, team, scope)
        access.record(
            None,
            access.TOKEN_ISSUED,
            f"api_token:{token.pk}",
            details={"via": "create_api_token", "scope": token.scope},
        )
        where = f"team {team.slug}" if team else "no team"
        what = ", reads /metrics only" if token.metrics_only else ""
        self.stderr.write(
            f"Created API token {token.name!r} for {owner.username} ({where}{what}). It is shown once:"
        )
        self.stdout.write(raw)
