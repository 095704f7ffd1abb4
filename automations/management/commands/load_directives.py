"""manage.py load_directives: create or update the system directives from their YAML files.

Idempotent: an unchanged file changes nothing, a user's directive of the same name is
left alone (and reported). Exit status 1 if a file is invalid or conflicts.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from automations.system import DIRECTIVES_DIR, load_system_directives


class Command(BaseCommand):
    help = "Load Mission Control's system directives (automations/directives/*.yaml)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = load_system_directives()
        for label, names in (("created", result.created), ("updated", result.updated)):
            for name in names:
                self.stdout.write(f"{label} {name}")
        self.stdout.write(
            f"{len(result.created)} created, {len(result.updated)} updated, "
            f"{len(result.unchanged)} unchanged from {DIRECTIVES_DIR}"
        )
        problems = {**result.conflicts, **result.errors}
        for name, reason in problems.items():
            self.stderr.write(f"{name}: {reason}")
        if problems:
            raise CommandError(f"{len(problems)} system directive(s) not loaded")
