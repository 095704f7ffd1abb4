"""What a newly registered server tells the live stream: `mcp.registered` on `global`."""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from mcps.models import MCPServer
from missioncontrol.live import Outbox, encode


def registered(sender: type[MCPServer], instance: MCPServer, created: bool, **kwargs: Any) -> None:
    """Once its row is committed, announce a server that was just registered, however (REST,
    the admin, the config file, a registry, import_mcp_config). Servers are shared by every
    team; the event names the server and how it came, never its command, URL or secrets."""
    if not created or kwargs.get("raw"):
        return
    event = {
        "type": "mcp.registered",
        "mcp_id": instance.id,
        "name": instance.name,
        "source": instance.source,
        "transport": instance.transport,
        "at": timezone.now().isoformat(),
    }

    def announce() -> None:
        outbox = Outbox()
        outbox.add("global", encode(event))
        outbox.add(f"mcp:{instance.id}", encode(event))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(outbox.send)()
            return
        # Registered from sync code running on an event loop's thread (a sync test client
        # beside Playwright, a REPL): the loop sends it once the caller yields.
        task = loop.create_task(outbox.send())
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    transaction.on_commit(announce)


_pending: set[asyncio.Task[None]] = set()
