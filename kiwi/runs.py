"""Kiwi directive runs seen through the gateway: an `execute` call becomes a thread.

Kiwi's `execute` tool takes `item_type`, `action`, `item_id`, `parameters` and
`project_path` (kiwi_mcp/tools/execute.py). When an agent's call of it with
`item_type: directive, action: run` succeeds through `/mcp` (or `mcp_proxy`), the
directive is looked up in the indexed workspaces (the call's `project_path`, else the
server's projects, then the user space) and a run begins (mcps/endpoint/recorder.py):

- a thread, child of the thread the `execute` call was recorded on (that call's own),
  in the agent's session, running on the Kiwi server, `execution_context.kind` =
  `kiwi_directive` and `execution_context.kiwi` naming the directive (its graph key,
  version, path, parameters) and its declared permissions; in the graph it `executed`
  the directive (kiwi/graph.py);
- the directive's `<process>` steps on its timeline from the start, pending;
- every later call of the agent's session recorded in that thread, and checked against
  the directive's permissions on top of the policy (audit/policy.py `Declared`): a tool
  may be called when the directive declares `<execute resource="tool" id="...">` for it
  (`id` a glob over `tool`, or `server/tool`); `<read resource="tool">` allows read-only
  calls, `<write resource="tool">` destructive ones. Other resources (filesystem,
  network, env, shell, spawn) are recorded with the thread; they govern no routed call.
  The run lasts until the session ends or runs another directive.

A directive no workspace holds still gets its thread, marked `indexed: false`, with
no steps and no declared permissions to check.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from audit.policy import Declared, Rule
from kiwi.models import KiwiItem, KiwiWorkspace
from mcps.endpoint.recorder import CallRecorder, Session

EXECUTE_TOOL = "execute"
RUN_KIND = "kiwi_directive"
TOOL_ACTIONS = {"execute": "any", "read": "read", "write": "write"}


def starts_run(tool: str, arguments: dict[str, Any]) -> bool:
    """Whether a call of `tool` with `arguments` is Kiwi's execute of a directive (run)."""
    return (
        tool == EXECUTE_TOOL
        and arguments.get("item_type") == "directive"
        and arguments.get("action") == "run"
        and isinstance(arguments.get("item_id"), str)
        and bool(arguments["item_id"])
    )


def declared(item: KiwiItem) -> Declared:
    """The directive's permissions as the rules its run's calls are checked against."""
    source = f"kiwi directive {item.name}" + (f" {item.version}" if item.version else "")
    rules: list[Rule] = []
    for n, permission in enumerate(item.permissions, 1):
        action = TOOL_ACTIONS.get(permission.get("tag", ""))
        attrs = permission.get("attrs") or {}
        if permission.get("resource") != "tool" or action is None:
            continue
        target = str(attrs.get("id") or attrs.get("name") or "*")
        server, sep, tool = target.partition("/")
        if not sep:
            server, sep, tool = target.partition("__")
        if not sep:
            server, tool = "*", target
        rules.append(
            Rule(
                id=f"kiwi:{item.key}#{n}",
                description=f'<{permission["tag"]} resource="tool" id="{target}"/>',
                effect="allow",
                priority=0,
                subject_kind="any",
                subject_value="",
                server=server or "*",
                tool=tool or "*",
                action=action,
            )
        )
    return Declared(source, tuple(rules))


def _lookup(server: str, arguments: dict[str, Any]) -> KiwiItem | None:
    close_old_connections()
    try:
        workspaces = KiwiWorkspace.objects.for_call(server, arguments.get("project_path"))
        return KiwiItem.objects.resolve("directive", arguments["item_id"], workspaces)
    finally:
        close_old_connections()


async def begin(
    recorder: CallRecorder,
    root: Session,
    parent: Session,
    parent_thread: str,
    server: str,
    arguments: dict[str, Any],
    when: datetime,
) -> Session:
    """Begin the run `arguments` (a starts_run call on `server`) asks for, recorded from `when`.

    `root` is the agent's session, `parent` the session the execute call was recorded in
    (the root, or a run it began before, which this one replaces), `parent_thread` the
    execute call's thread: the run's thread is its child.
    """
    item = await sync_to_async(_lookup, thread_sensitive=False)(server, arguments)
    name = arguments["item_id"]
    kiwi: dict[str, Any] = {
        "server": server,
        "directive": name,
        "indexed": item is not None,
        "parameters": arguments.get("parameters") or {},
        "project_path": arguments.get("project_path") or "",
        "started_by": parent_thread,
    }
    if item is not None:
        kiwi |= {
            "key": item.key,
            "workspace": item.workspace.name,
            "version": item.version,
            "path": item.path,
            "permissions": item.permissions,
        }
    run = recorder.session(
        (*root.key, "kiwi", uuid.uuid4().hex),
        via=root.via,
        principal=root.principal,
        client=root.client,
        subject=root.subject,
        parent_id=parent_thread,
        team_id=root.team_id,
        may_call_tools=root.may_call_tools,
        user_id=root.user_id,
    )
    run.id = root.id  # the run's thread is one of the agent's session
    recorder.begin_run(run, f"mcp-{uuid.uuid4().hex}")
    version = f" {item.version}" if item is not None and item.version else ""
    run.mcp_id = server
    run.user_input = f"Kiwi directive {name}{version} on {server}"
    run.context = {"kind": RUN_KIND, "kiwi": kiwi}
    run.planned = [{"kiwi_step": n, **step} for n, step in enumerate(item.steps, 1)] if item else []
    run.declared = declared(item) if item is not None else None
    if root.run is not None:
        recorder.end(root.run.key)
    root.run = run
    recorder.start(run, when)
    return run
