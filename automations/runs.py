"""A person starts a directive run: the REST `execute` endpoint, the directive page's Run
form, an automation's "Run now", the admin's action and /mcp's `run_directive` all come
through `start()`.

Beyond `engine.submit` (which checks the inputs): the directive must be switched on,
may not already run `automations.max_concurrent` times at once, the run acts for the
user (it reads what they may see, within their API token's or only team: see
automations.scope), and it is recorded in the access audit as theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from audit import access
from automations.models import Automation, Directive, DirectiveExecution
from automations.scope import Scope


class Refused(Exception):
    """The run may not start now; the message says why."""


class Busy(Refused):
    """The directive already runs as often at once as allowed (the API's 429)."""


def start(
    user: Any,
    directive: Directive,
    inputs: Mapping[str, Any] | None = None,
    *,
    automation: Automation | None = None,
    request: Any = None,
    acting_for: Scope | None = None,
    wait: bool = False,
) -> DirectiveExecution:
    """Start `directive` for `user` (InputError for bad inputs, Refused when it may not run);
    `wait` runs it here and returns it finished.

    It acts for `user` within their principal's team (an API token's, else their only
    team), unless the caller knows better (`acting_for`: /mcp knows the request's token).
    """
    from automations import engine  # not at start-up: it brings Jinja2
    from missioncontrol.authentication import principal_of

    if not directive.enabled:
        raise Refused(f"{directive.name!r} is disabled")
    limit = settings.DIRECTIVE_MAX_CONCURRENT
    if DirectiveExecution.objects.running_for(directive) >= limit:
        raise Busy(f"{directive.name} already runs {limit} times at once (automations.max_concurrent)")
    info: dict[str, Any] = {"user": user.get_username()} if user is not None else {}
    if automation is not None:
        info["automation"] = automation.name
    execution = engine.submit(
        directive,
        inputs,
        acting_for=acting_for or Scope.for_user(user, principal_of(user).team_id),
        started_by=user,
        trigger_info=info,
        automation=automation,
        wait=wait,
    )
    access.record(
        user,
        access.DIRECTIVE_RUN,
        f"directive:{directive.name}",
        details={"execution_id": execution.pk, **({"automation": automation.name} if automation else {})},
        request=request,
    )
    return execution
