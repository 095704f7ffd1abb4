"""The Django admin shows team data as the API does: every changelist of a team's rows.

Admins (and superusers) see every team's rows there; a staff member of another role
(bob, a viewer of beta made staff) sees his team's only, in lists, change pages and
inlines alike, whatever ids he types.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth.models import User

from missioncontrol.visibility import VisibleRowsAdmin, is_scoped
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db

TEAM_DATA = [
    "threads/thread",
    "threads/executionstep",
    "threads/llmmessage",
    "logs/logentry",
    "audit/permissionevent",
    "automations/directiveexecution",
    "automations/knowledgeentry",
]


@pytest.fixture
def staff_outsider(outsider: User) -> User:
    outsider.is_staff = True
    outsider.save()
    return outsider


def test_every_admin_of_team_data_shows_only_visible_rows() -> None:
    unscoped = [
        model._meta.label
        for model, model_admin in django_admin.site._registry.items()
        if is_scoped(model) and not isinstance(model_admin, VisibleRowsAdmin)
    ]
    assert unscoped == []


@pytest.mark.parametrize("changelist", TEAM_DATA)
def test_a_staff_member_of_another_team_sees_none_of_alphas_rows(
    two_teams_everywhere: dict[str, Any], staff_outsider: User, changelist: str
) -> None:
    page = signed_in(staff_outsider).get(f"/admin/{changelist}/")
    assert page.status_code == 200
    text = page.content.decode().lower()
    assert "apple" not in text
    assert "banana" in text or changelist.endswith(("executionstep", "directiveexecution"))


def test_another_teams_change_pages_are_not_found(
    two_teams_everywhere: dict[str, Any], staff_outsider: User
) -> None:
    bob = signed_in(staff_outsider)
    run = two_teams_everywhere["alpha"].pk
    for url in (
        "/admin/threads/thread/T-a/change/",
        "/admin/logs/logentry/log-T-a/change/",
        f"/admin/automations/directiveexecution/{run}/change/",
    ):
        response = bob.get(url, follow=True)
        assert b"apple" not in response.content.lower(), url
        assert "exist. Perhaps it was deleted?" in response.content.decode(), url
    directive = bob.get("/admin/automations/directive/").content.decode()
    assert "learn" in directive
    learn = bob.get(f"/admin/automations/directive/{_learn_pk()}/change/").content.decode()
    assert "Banana pattern" in learn and "Apple pattern" not in learn  # its knowledge inline


def _learn_pk() -> int:
    from automations.models import Directive

    return Directive.objects.get(name="learn").pk


@pytest.mark.parametrize("persona", ["admin", "superuser"])
def test_admins_see_every_teams_rows(
    two_teams_everywhere: dict[str, Any], persona: str, request: pytest.FixtureRequest
) -> None:
    user = request.getfixturevalue(persona)
    user.is_staff = True
    user.save()
    text = signed_in(user).get("/admin/threads/thread/").content.decode()
    assert "T-a" in text and "T-b" in text and "T-none" in text
