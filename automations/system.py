"""Mission Control's own directives: the YAML files of `automations/directives/`.

`load_system_directives()` makes the database match the files: a new file is created
as a system directive, a changed one updated (its `enabled` switch kept), an unchanged
one left alone, so running it again changes nothing. A user's directive is never
touched: one of the same name is reported as a conflict and keeps its YAML. It runs
after every `migrate` (post_migrate) and as `manage.py load_directives`.

The health monitor: each scheduled system directive gets a system automation
(`system:<directive>`, cron in SYSTEM_SCHEDULES) that the `automations.tick` beat task
fires like any user automation. It is created once; an operator may then change its
schedule or switch it off, and loading again leaves it as they set it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from automations.definition import parse
from automations.models import Automation, Directive

DIRECTIVES_DIR = Path(__file__).resolve().parent / "directives"

# System directive -> when the health monitor runs it (cron, UTC).
SYSTEM_SCHEDULES = {
    "monitor_thread_health": "*/5 * * * *",
    "detect_anomalies": "*/15 * * * *",
    "cleanup_stale_sessions": "7 * * * *",
    "generate_performance_report": "17 * * * *",
    "analyze_permission_patterns": "27 */6 * * *",
    "analyze_patterns": "37 */6 * * *",
    "optimize_log_retention": "47 3 * * *",
}


@dataclass
class LoadResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: dict[str, str] = field(default_factory=dict)  # name -> why it was skipped
    errors: dict[str, str] = field(default_factory=dict)  # file name -> what is wrong
    scheduled: list[str] = field(default_factory=list)  # system automations created


def system_files(directory: Path = DIRECTIVES_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def load_system_directives(directory: Path = DIRECTIVES_DIR) -> LoadResult:
    """Create or update the system directives from the YAML files in `directory`."""
    result = LoadResult()
    for path in system_files(directory):
        text = path.read_text(encoding="utf-8")
        try:
            with transaction.atomic():
                _load(text, result)
        except ValueError as exc:
            result.errors[path.name] = str(exc)
    result.scheduled = schedule_system_directives()
    return result


def schedule_system_directives() -> list[str]:
    """Create the missing `system:<directive>` automations; the names created."""
    created = []
    for directive in Directive.objects.filter(system=True, name__in=SYSTEM_SCHEDULES):
        _, new = Automation.objects.get_or_create(
            name=f"system:{directive.name}",
            defaults={
                "directive": directive,
                "trigger": Automation.Trigger.SCHEDULE,
                "schedule": SYSTEM_SCHEDULES[directive.name],
            },
        )
        if new:
            created.append(directive.name)
    return created


def _load(text: str, result: LoadResult) -> None:
    name = parse(text)["name"]
    existing = Directive.objects.filter(name=name).first()
    if existing is not None and not existing.system:
        result.conflicts[name] = "a user's directive has this name; it is left as it is"
        return
    if existing is not None and existing.source == text:
        result.unchanged.append(name)
        return
    Directive.objects.upsert_from_yaml(text, system=True)
    (result.updated if existing is not None else result.created).append(name)


def on_post_migrate(sender: Any, **kwargs: Any) -> None:
    """After `migrate` (and a test database's flush): the system directives, current."""
    if not getattr(settings, "LOAD_SYSTEM_DIRECTIVES", True):
        return
    if kwargs.get("using", "default") != "default":
        return
    if Directive._meta.db_table not in connection.introspection.table_names():
        return  # a partial migrate (`migrate threads`) that has not reached automations yet
    result = load_system_directives()
    out = kwargs.get("stdout") or sys.stdout
    if kwargs.get("verbosity", 1) >= 1 and (result.created or result.updated):
        out.write(f"  System directives: {len(result.created)} created, {len(result.updated)} updated\n")
    for name, reason in {**result.conflicts, **result.errors}.items():
        out.write(f"  System directive {name}: {reason}\n")
