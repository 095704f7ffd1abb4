"""manage.py create_user NAME --role viewer|operator|admin [--team SLUG ...] [--password-from-env VAR]

Creates the user, or updates an existing one: its role (the one group of the three it
is in), its teams (created if new) and, if given, its password. Like Django's
`createsuperuser --noinput`, the password comes from the environment, never the
command line; without one the user can sign in only once a password is set (API
tokens still work). Admins are also staff, so they can use the Django admin.
"""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.text import slugify

from missioncontrol.models import Team
from missioncontrol.roles import Role


class Command(BaseCommand):
    help = "Create or update a user with a role (viewer, operator, admin) and teams."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument(
            "--team",
            action="append",
            default=[],
            metavar="SLUG",
            help="A team the user belongs to (created if new); repeat for several.",
        )
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-from-env",
            metavar="VAR",
            help="Read the password from this environment variable.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = None
        if options["password_from_env"]:
            password = os.environ.get(options["password_from_env"])
            if not password:
                raise CommandError(
                    f"the environment variable {options['password_from_env']} is empty or unset"
                )
        users = get_user_model()
        with transaction.atomic():
            user, created = users.objects.get_or_create(username=options["username"])
            if options["email"]:
                user.email = options["email"]
            if password is not None:
                try:
                    password_validation.validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("password: " + " ".join(exc.messages)) from None
                user.set_password(password)
            elif created:
                user.set_unusable_password()
            user.is_staff = options["role"] == Role.ADMIN
            user.save()
            user.groups.remove(*Group.objects.filter(name__in=[r.value for r in Role]))
            user.groups.add(Group.objects.get(name=options["role"]))
            teams = [
                Team.objects.get_or_create(slug=slugify(slug), defaults={"name": slug})[0]
                for slug in options["team"]
            ]
            if teams:
                user.teams.set(teams)
        verb = "Created" if created else "Updated"
        where = ", ".join(t.slug for t in teams) or "no team"
        self.stdout.write(f"{verb} {user.username}: {options['role']} in {where}.")
