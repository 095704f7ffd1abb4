"""The admin's actions ask for the role the REST API asks for: a staff member who is a
viewer cannot reconnect servers, run directives or cancel runs there; an operator can.

bob (a viewer of team beta) and olga (an operator of alpha) are made staff; what each
may do is decided by their role alone, not by being staff.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from automations.models import Directive, DirectiveExecution
from mcps.models import MCPServer
from tests.conftest import signed_in, team
from tests.teams import LEARN

pytestmark = pytest.mark.django_db


def staff(user: User) -> Client:
    user.is_staff = True
    user.save()
    return signed_in(user)


def act(client: Client, changelist: str, action: str, ids: list[Any]) -> list[str]:
    """Run `action` on the rows `ids` of `changelist`; the messages the page shows."""
    page = client.post(f"/admin/{changelist}/", {"action": action, "_selected_action": ids}, follow=True)
    assert page.status_code == 200
    return [str(m) for m in page.context["messages"]]


# What the admin answers an action it does not offer the user: nothing ran (a changelist
# with no action it may run shows no action form at all, so says nothing either).
NOT_OFFERED = ([], ["No action selected."])


@pytest.fixture
def managed_server(db: None) -> MCPServer:
    return MCPServer.objects.create(id="time", name="time", transport="stdio", command="uvx")


def test_a_viewer_cannot_reconnect_servers_from_the_admin(
    managed_server: MCPServer, outsider: User, operator: User
) -> None:
    assert act(staff(outsider), "mcps/mcpserver", "reconnect", ["time"]) in NOT_OFFERED
    # An operator may (no gateway runs in the tests: it says so).
    said = act(staff(operator), "mcps/mcpserver", "reconnect", ["time"])
    assert said[0].startswith("time: the MCP gateway is not running")


def test_a_viewer_cannot_run_directives_from_the_admin(outsider: User, operator: User) -> None:
    learn = Directive.objects.upsert_from_yaml(LEARN)
    assert act(staff(outsider), "automations/directive", "run_directive", [learn.pk]) in NOT_OFFERED
    assert not DirectiveExecution.objects.exists()
    said = act(staff(operator), "automations/directive", "run_directive", [learn.pk])
    assert said[0].startswith("Ran learn: execution")
    assert DirectiveExecution.objects.get().started_by == operator


def test_a_viewer_cannot_cancel_runs_from_the_admin(outsider: User) -> None:
    learn = Directive.objects.upsert_from_yaml(LEARN)
    run = DirectiveExecution.objects.create(
        directive=learn, directive_name="learn", team=team("beta"), read_teams=[team("beta").pk]
    )
    bob = staff(outsider)
    assert bob.get(f"/admin/automations/directiveexecution/{run.pk}/change/").status_code == 200
    assert act(bob, "automations/directiveexecution", "cancel_execution", [run.pk]) in NOT_OFFERED
    run.refresh_from_db()
    assert run.status == DirectiveExecution.Status.PENDING and not run.cancel_requested


def test_an_operator_cancels_its_teams_runs_from_the_admin(operator: User) -> None:
    learn = Directive.objects.upsert_from_yaml(LEARN)
    run = DirectiveExecution.objects.create(
        directive=learn, directive_name="learn", team=team("alpha"), read_teams=[team("alpha").pk]
    )
    said = act(staff(operator), "automations/directiveexecution", "cancel_execution", [run.pk])
    assert said == ["1 execution(s) asked to stop; the others had finished."]
