"""No one climbs above their own privilege: the admin role (a group, not a superuser)
cannot make a superuser, grant roles or permissions, take over a stronger account, or
mint a token acting as a user stronger than itself, in the Django admin or the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from missioncontrol import tokens
from missioncontrol.models import APIToken
from tests.conftest import make_user, signed_in, superuser_now

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(admin: User) -> User:
    """The admin persona with access to the Django admin (as `create_user --role admin` makes it)."""
    admin.is_staff = True
    admin.save()
    return admin


def change_form(user: User, **changes: Any) -> dict[str, Any]:
    """The admin's change form of `user` as posted back, with `changes`."""
    data: dict[str, Any] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_an_admin_cannot_make_anyone_superuser_or_give_roles_or_permissions(ada: User, viewer: User) -> None:
    every_permission = list(Permission.objects.values_list("pk", flat=True))
    page = signed_in(ada)
    answer = page.post(
        f"/admin/auth/user/{viewer.pk}/change/",
        change_form(
            viewer,
            is_superuser="on",
            is_staff="on",
            groups=[Group.objects.get(name="admin").pk],
            user_permissions=every_permission,
            first_name="Victor",
        ),
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    viewer.refresh_from_db()
    assert viewer.first_name == "Victor"  # the rest of the form still applies
    assert not viewer.is_superuser
    assert [g.name for g in viewer.groups.all()] == ["viewer"]
    assert not viewer.user_permissions.exists()
    for name in ("is_superuser", "groups", "user_permissions"):
        assert f'name="{name}"' not in page.get(f"/admin/auth/user/{viewer.pk}/change/").content.decode()


def test_an_admin_cannot_raise_itself(ada: User) -> None:
    page = signed_in(ada)
    answer = page.post(
        f"/admin/auth/user/{ada.pk}/change/", change_form(ada, is_superuser="on", is_staff="on")
    )
    assert answer.status_code == 302
    ada.refresh_from_db()
    assert not ada.is_superuser


def test_an_admin_cannot_change_delete_or_set_the_password_of_a_stronger_user(ada: User) -> None:
    root = superuser_now()
    page = signed_in(ada)
    assert page.get(f"/admin/auth/user/{root.pk}/password/").status_code == 403
    answer = page.post(
        f"/admin/auth/user/{root.pk}/password/", {"password1": "taken-over-9", "password2": "taken-over-9"}
    )
    assert answer.status_code == 403
    assert page.post(f"/admin/auth/user/{root.pk}/delete/", {"post": "yes"}).status_code == 403
    assert (
        page.post(f"/admin/auth/user/{root.pk}/change/", change_form(root, email="x@evil")).status_code == 403
    )
    root.refresh_from_db()
    assert root.check_password("root-pw-1234") and root.email == "root@example.com"


def test_an_admin_cannot_edit_groups_in_the_admin(ada: User) -> None:
    page = signed_in(ada)
    group = Group.objects.get(name="viewer")
    assert page.get(f"/admin/auth/group/{group.pk}/change/").status_code == 403
    assert page.post("/admin/auth/group/add/", {"name": "root-like"}).status_code == 403


def test_a_superuser_still_grants_privilege_in_the_admin(viewer: User) -> None:
    root = superuser_now()
    answer = signed_in(root).post(
        f"/admin/auth/user/{viewer.pk}/change/",
        change_form(viewer, is_superuser="on", groups=[Group.objects.get(name="operator").pk]),
    )
    assert answer.status_code == 302
    viewer.refresh_from_db()
    assert viewer.is_superuser and [g.name for g in viewer.groups.all()] == ["operator"]


def test_an_admin_cannot_issue_an_api_token_for_a_stronger_user(ada: User, viewer: User) -> None:
    root = superuser_now()
    api = signed_in(ada)
    body = {"name": "take-over", "owner": root.username}
    answer = api.post("/api/tokens", body, "application/json")
    assert answer.status_code == 400, answer.content
    assert "privileges you do not" in answer.json()["owner"][0]
    assert not APIToken.objects.filter(owner=root).exists()

    extra = make_user("eve", "viewer", "alpha")
    extra.user_permissions.add(Permission.objects.get(codename="change_group"))
    answer = api.post("/api/tokens", {"name": "wider", "owner": "eve"}, "application/json")
    assert answer.status_code == 400, answer.content

    answer = api.post("/api/tokens", {"name": "for-victor", "owner": viewer.username}, "application/json")
    assert answer.status_code == 201, answer.content
    assert api.post("/api/tokens", {"name": "mine"}, "application/json").status_code == 201


def test_a_superuser_issues_tokens_for_anyone(viewer: User) -> None:
    answer = signed_in(superuser_now()).post(
        "/api/tokens", {"name": "for-victor", "owner": viewer.username}, "application/json"
    )
    assert answer.status_code == 201, answer.content


def test_the_token_admin_refuses_a_stronger_owner_on_add_and_on_change(ada: User) -> None:
    root = superuser_now()
    page = signed_in(ada)
    answer = page.post("/admin/missioncontrol/apitoken/add/", {"name": "take-over", "owner": root.pk})
    assert answer.status_code == 200  # the form again, with the error
    assert "privileges you do not" in answer.content.decode()
    assert not APIToken.objects.filter(owner=root).exists()

    mine = tokens.issue(ada, "mine")
    answer = page.post(
        f"/admin/missioncontrol/apitoken/{mine.pk}/change/", {"name": "mine", "owner": root.pk}
    )
    assert answer.status_code == 200 and "privileges you do not" in answer.content.decode()
    mine.refresh_from_db()
    assert mine.owner == ada


def test_issuing_checks_the_owner_whatever_the_surface(ada: User) -> None:
    with pytest.raises(tokens.MoreThanYours):
        tokens.issue(ada, "take-over", owner=superuser_now())
    assert tokens.issue(ada, "mine").owner == ada
    assert tokens.issue(superuser_now(), "any", owner=ada).owner == ada


def test_an_admin_still_manages_weaker_users(ada: User, viewer: User, anonymous_client: Client) -> None:
    page = signed_in(ada)
    assert page.get(f"/admin/auth/user/{viewer.pk}/change/").status_code == 200
    answer = page.post(
        f"/admin/auth/user/{viewer.pk}/password/",
        {"password1": "new-victor-pw-9", "password2": "new-victor-pw-9", "usable_password": "true"},
    )
    assert answer.status_code == 302, answer.content.decode()[:1500]
    viewer.refresh_from_db()
    assert viewer.check_password("new-victor-pw-9")
