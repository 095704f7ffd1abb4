"""Whose rows a directive run reads, and whose its output is.

A run acts for someone. A person's run (the API's execute, a page's Run, /mcp's
`run_directive`) reads what that person may see, narrowed to the run's team: their
API token's team, else their only team (`Principal.team_id`, as for /mcp threads).
A system run (the scheduler, an automation's trigger, `manage.py run_directive`)
reads every team's rows and belongs to no team. What a run produces (its execution,
steps, result, thread, logs, alerts and knowledge) belongs to its team: seen by that
team's members, its starter and admins; a run of no team by admins (and its starter).

The engine sets the scope of the run it executes (`reading`); scripts read through
`current()` (`current().threads()`, `.logs()`...). Outside a run (a test, a shell)
scripts read as the system.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audit.models import PermissionEvent
from logs.models import LogEntry
from missioncontrol import roles
from threads.models import ExecutionStep, Thread

if TYPE_CHECKING:
    from automations.models import DirectiveExecution


@dataclass(frozen=True)
class Scope:
    """`teams`: the teams whose rows the run reads (None: every team's, and rows of no
    team); `team`: the team its output belongs to (None: admins', and its starter's)."""

    teams: tuple[int, ...] | None
    team: int | None = None

    @classmethod
    def for_user(cls, user: Any, team: int | None) -> Scope:
        """What `user` may see (roles.team_scope), narrowed to `team` when given."""
        teams = roles.team_scope(user)
        if team is not None:
            teams = [team] if teams is None or team in teams else []
        return cls(None if teams is None else tuple(teams), team)

    @property
    def everything(self) -> bool:
        return self.teams is None

    def threads(self) -> Any:
        return Thread.objects.of_teams(self.teams)

    def steps(self) -> Any:
        return ExecutionStep.objects.of_teams(self.teams)

    def logs(self) -> Any:
        return LogEntry.objects.of_teams(self.teams)

    def checks(self) -> Any:
        return PermissionEvent.objects.of_teams(self.teams)


SYSTEM = Scope(None, None)
_current: ContextVar[Scope] = ContextVar("directive_scope", default=SYSTEM)
# The run whose steps are executing here: an event or alert its scripts publish fires
# automations one level deeper than it (see triggers._depth_after).
current_run: ContextVar[DirectiveExecution | None] = ContextVar("current_run", default=None)


def current() -> Scope:
    """The scope of the run whose steps execute here (the system's outside a run)."""
    return _current.get()


@contextmanager
def reading(scope: Scope) -> Iterator[Scope]:
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
