"""Roles (Django groups with model permissions) and the questions every surface asks of a user.

- viewer: reads everything visible to it (its teams' threads, logs and checks; servers,
  tools, directives and knowledge).
- operator: a viewer that also calls tools, reconnects servers and runs directives.
- admin: an operator that also manages servers, ingest keys, API tokens, teams, users
  and policies, sees every team's rows, and reads the access audit.

Superusers hold every permission, so they are admins. The groups are created by the
migration `missioncontrol/0003_roles`, which freezes this table; a test checks the two
agree.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


# What each surface checks (app_label.codename).
READ = "threads.view_thread"
CALL_TOOL = "mcps.call_tool"
RECONNECT = "mcps.reconnect_mcpserver"
RUN_DIRECTIVE = "automations.run_directive"
MANAGE_SERVERS = "mcps.add_mcpserver"
MANAGE_TOKENS = "missioncontrol.add_apitoken"
VIEW_ALL_TEAMS = "missioncontrol.view_all_teams"
VIEW_ACCESS_AUDIT = "audit.view_accessevent"

_VIEWER = [
    "threads.view_thread",
    "threads.view_executionstep",
    "threads.view_llmmessage",
    "logs.view_logentry",
    "audit.view_permissionevent",
    "mcps.view_mcpserver",
    "mcps.view_tool",
    "mcps.view_resource",
    "mcps.view_prompt",
    "mcps.view_healthcheck",
    "automations.view_directive",
    "automations.view_knowledgeentry",
    "automations.view_directiveexecution",
    "automations.view_steprun",
    "automations.view_automation",
    "audit.view_policyrule",
    "missioncontrol.view_team",
    "notifications.view_channel",
    "notifications.view_delivery",
]
_OPERATOR = [*_VIEWER, CALL_TOOL, RECONNECT, RUN_DIRECTIVE, "notifications.test_channel"]
_ADMIN = [
    *_OPERATOR,
    VIEW_ALL_TEAMS,
    VIEW_ACCESS_AUDIT,
    *(f"mcps.{a}_mcpserver" for a in ("add", "change", "delete")),
    *(f"mcps.{a}_ingestkey" for a in ("add", "change", "delete", "view")),
    *(f"missioncontrol.{a}_apitoken" for a in ("add", "change", "delete", "view")),
    *(f"missioncontrol.{a}_team" for a in ("add", "change", "delete")),
    *(f"auth.{a}_user" for a in ("add", "change", "delete", "view")),
    *(f"automations.{a}_directive" for a in ("add", "change", "delete")),
    *(f"automations.{a}_knowledgeentry" for a in ("add", "change", "delete")),
    *(f"automations.{a}_automation" for a in ("add", "change", "delete")),
    *(f"audit.{a}_policyrule" for a in ("add", "change", "delete")),
    "missioncontrol.view_taskrun",
    *(f"notifications.{a}_channel" for a in ("add", "change", "delete")),
]
ROLES: dict[Role, list[str]] = {Role.VIEWER: _VIEWER, Role.OPERATOR: _OPERATOR, Role.ADMIN: _ADMIN}


def role_of(user: Any) -> Role | None:
    """The strongest role `user` holds (superusers: admin), or None."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    names = {g.name for g in user.groups.all()}
    for role in (Role.ADMIN, Role.OPERATOR, Role.VIEWER):
        if role.value in names:
            return role
    return None


def holds_no_more_than(user: Any, actor: Any) -> bool:
    """Whether `user` holds no privilege that `actor` lacks: what lets `actor` issue a
    token acting as `user`, or edit `user`, without climbing above itself."""
    if actor is None or not actor.is_active:
        return False
    if actor.is_superuser:
        return True
    if user.is_superuser:
        return False
    return user.get_all_permissions() <= actor.get_all_permissions()


def sees_all(user: Any) -> bool:
    """Admins (and superusers) see every team's rows, and rows of no team."""
    return user is not None and user.is_authenticated and user.has_perm(VIEW_ALL_TEAMS)


def team_ids(user: Any) -> list[int]:
    """The ids of the teams `user` is a member of (cached on the user for the request)."""
    if user is None or not user.is_authenticated:
        return []
    cached = getattr(user, "_mc_team_ids", None)
    if cached is None:
        cached = list(user.teams.values_list("id", flat=True))
        user._mc_team_ids = cached
    return cached


def can(user: Any, permission: str) -> bool:
    return user is not None and user.is_authenticated and user.is_active and user.has_perm(permission)


def team_scope(user: Any) -> list[int] | None:
    """None if `user` sees every team's rows; else the ids of its teams (maybe none).

    What every `visible_to(user)` queryset method filters by.
    """
    if user is not None and sees_all(user):
        return None
    return team_ids(user)


def ensure_groups(**kwargs: Any) -> None:
    """Make sure the three groups exist and hold at least their permissions.

    Run after every `migrate` (post_migrate), so that a database flushed and migrated
    again (a test database, say) has its roles too; it only adds, so a permission an
    admin gave a role stays.
    """
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    # post_migrate reaches this app before the apps listed after it: make theirs now.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    directive_type = ContentType.objects.get_or_create(app_label="automations", model="directive")[0]
    Permission.objects.get_or_create(
        content_type=directive_type, codename="run_directive", defaults={"name": "Can run a directive"}
    )
    for role, dotted in ROLES.items():
        group = Group.objects.get_or_create(name=role.value)[0]
        wanted = []
        for name in dotted:
            app_label, codename = name.split(".")
            wanted += Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        group.permissions.add(*wanted)
