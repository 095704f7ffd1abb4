"""The roles as groups: viewer, operator, admin, with their model permissions.

A frozen copy of missioncontrol.roles.ROLES (tests/test_roles.py checks they agree).
Model permissions are normally created after every migration has run; they are
created here first so the groups can hold them, and `run_directive` (a command on
directives, not a model action) is created with them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management import create_permissions
from django.contrib.contenttypes.management import create_contenttypes
from django.db import migrations

VIEWER = [
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
    "missioncontrol.view_team",
]
OPERATOR = [*VIEWER, "mcps.call_tool", "mcps.reconnect_mcpserver", "automations.run_directive"]
ADMIN = [
    *OPERATOR,
    "missioncontrol.view_all_teams",
    "audit.view_accessevent",
    *(f"mcps.{a}_mcpserver" for a in ("add", "change", "delete")),
    *(f"mcps.{a}_ingestkey" for a in ("add", "change", "delete", "view")),
    *(f"missioncontrol.{a}_apitoken" for a in ("add", "change", "delete", "view")),
    *(f"missioncontrol.{a}_team" for a in ("add", "change", "delete")),
    *(f"auth.{a}_user" for a in ("add", "change", "delete", "view")),
    *(f"automations.{a}_directive" for a in ("add", "change", "delete")),
    *(f"automations.{a}_knowledgeentry" for a in ("add", "change", "delete")),
]
ROLES = {"viewer": VIEWER, "operator": OPERATOR, "admin": ADMIN}


def create_groups(apps: Any, schema_editor: Any) -> None:
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_contenttypes(app_config, verbosity=0, apps=apps)
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    content_type = apps.get_model("contenttypes", "ContentType")
    permission = apps.get_model("auth", "Permission")
    group = apps.get_model("auth", "Group")
    directive_type, _ = content_type.objects.get_or_create(app_label="automations", model="directive")
    permission.objects.get_or_create(
        content_type=directive_type, codename="run_directive", defaults={"name": "Can run a directive"}
    )
    for name, perms in ROLES.items():
        role, _ = group.objects.get_or_create(name=name)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.append(permission.objects.get(content_type__app_label=app_label, codename=codename))
        role.permissions.set(wanted)


def drop_groups(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("missioncontrol", "0002_teams_tokens"),
        ("threads", "0003_thread_team"),
        ("logs", "0003_logentry_team"),
        ("audit", "0002_accessevent"),
        ("mcps", "0005_ingestkey_team"),
        ("automations", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, drop_groups)]
