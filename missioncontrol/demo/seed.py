"""`seed_demo` and the demo agent's credentials.

Seeding registers mcp-server-time as a managed server, gives the demo agent an ingest
key (its marker: the demo is seeded when the key exists) and plays one round of the
agent at once, so the first page shows a real tool call's thread, steps and logs.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.db import close_old_connections

from logs.models import LogEntry
from mcps.models import AGGREGATE_ID, IngestKey, MCPServer
from mcps.registration import register
from missioncontrol.demo.agent import AGENT_ID, TIME_SERVER, run_round, tools_via_stdio
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from missioncontrol.jsontext import dumps, loads
from missioncontrol.models import hash_secret
from threads.models import Thread

KEY_NAME = "demo-agent"


@dataclass
class Seeded:
    seeded: bool
    reason: str
    thread_id: str | None = None


DEMO_USER = "demo-agent"
DEMO_TEAM = "demo"
DEMO_TOKEN = "demo agent"


def demo_credential() -> dict[str, str]:
    """The HTTP headers the demo agent sends to /mcp: a fresh API token of its operator.

    The demo agent is a user of the operator role in team `demo` (made here once); raw
    tokens are never stored, so each run of the agent gets a new one and the previous
    ones are revoked.
    """
    from django.contrib.auth.models import Group, User

    from missioncontrol.models import APIToken, Team
    from missioncontrol.roles import Role

    user, created = User.objects.get_or_create(username=DEMO_USER)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=Role.OPERATOR))
    team, _ = Team.objects.get_or_create(slug=DEMO_TEAM, defaults={"name": "Demo"})
    team.members.add(user)
    for old in APIToken.objects.active().filter(owner=user, name=DEMO_TOKEN):
        old.revoke()
    _token, raw = APIToken.objects.issue(DEMO_TOKEN, user, team)
    return {"Authorization": f"Bearer {raw}"}


def is_seeded() -> bool:
    return IngestKey.objects.active().filter(name=KEY_NAME).exists()


def is_empty() -> bool:
    servers = MCPServer.objects.exclude(id=AGGREGATE_ID)  # Mission Control itself is always there
    return not (Thread.objects.exists() or LogEntry.objects.exists() or servers.exists())


def rotate_demo_key() -> str:
    """A fresh raw key for the demo agent (raw keys are never stored, so each run gets one)."""
    raw = "mc_" + secrets.token_urlsafe(32)
    IngestKey.objects.filter(name=KEY_NAME).update(
        prefix=raw[:10], key_hash=hash_secret(raw), revoked_at=None
    )
    return raw


def _in_process(mcp_id: str) -> Any:
    """An SDK transport into the ingest pipeline of this process (no web server runs yet)."""

    def post(body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            result = ingest(loads(body)["events"], Source(mcp_id=mcp_id))
            async_to_sync(result.outbox.send)()
        finally:
            close_old_connections()
        return 200, {}, dumps(result.as_dict()).encode()

    return post


def seed(run_agent: bool = True) -> Seeded:
    """Register the demo server and agent, then play one round; nothing if already seeded."""
    from missioncontrol_sdk import MissionControl, MissionControlHandler

    if is_seeded():
        return Seeded(False, "already seeded")
    registration = register(
        TIME_SERVER,
        {"command": sys.executable, "args": ["-m", "mcp_server_time"], "name": "time (demo)"},
        MCPServer.Source.CONFIG,
    )
    if registration.errors:
        raise RuntimeError(f"registering {TIME_SERVER}: {registration.errors}")
    agent, _ = MCPServer.objects.get_or_create(id=AGENT_ID, defaults={"name": "demo agent"})
    IngestKey.objects.issue(KEY_NAME, agent)
    if not run_agent:
        return Seeded(True, "seeded")
    mc = MissionControl(
        "in-process", "", mcp_id=AGENT_ID, transport=_in_process(AGENT_ID), close_at_exit=False
    )
    handler = MissionControlHandler(mc, service=AGENT_ID)
    agent_logger = logging.getLogger("missioncontrol.demo.agent")
    agent_logger.addHandler(handler)
    agent_logger.setLevel(logging.INFO)
    try:

        async def one_round() -> str:
            async with tools_via_stdio() as tools:
                return await run_round(tools, mc, 0)

        thread_id = asyncio.run(one_round())
    finally:
        agent_logger.removeHandler(handler)
        mc.close(timeout=30)
    return Seeded(True, "seeded", thread_id)
