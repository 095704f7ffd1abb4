"""A web process watches the gateway's heartbeat, so a dead gateway is not shown as healthy.

Every `run_gateway` beats to `rpc.heartbeat_group()` each `rpc.BEAT_SECONDS`, naming the
servers it holds (and once more, `stopping`, when it stops). One monitor per web process
listens. A gateway silent for `rpc.DEAD_AFTER` (or stopping) is gone: its servers'
status becomes `unknown`, with the reason, stored and sent on `mcp:{id}` and `global`
like any status change, unless another live gateway holds them (it says how they are).
A monitor that hears no gateway at all within `rpc.DEAD_AFTER` of starting does the same
for every server still shown as reachable. A gateway heard (again) puts back the statuses
its beat reports over those this marked unknown: one that was only silent for a while
(Redis away, a stalled loop) is shown as it is, and a new one as it connects.

Calls in flight learn of the death on their own reply channel (rpc.py), so no call waits
for this monitor. On the embedded default the gateway lives in the web process: no monitor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import close_old_connections

from mcps.gateway import rpc
from mcps.models import MCPServer
from missioncontrol.live import Outbox, encode, now_iso

logger = logging.getLogger(__name__)

# A status that says the server can be reached now: not true once its gateway is gone.
REACHABLE = (MCPServer.Status.CONNECTED, MCPServer.Status.CONNECTING, MCPServer.Status.DEGRADED)
GONE = "the MCP gateway holding it stopped (no heartbeat): its state is unknown"
NONE_RUNNING = "no MCP gateway is running (start `manage.py run_gateway`)"


@dataclass
class Heard:
    servers: dict[str, list[str]]  # server id -> [status, error], as the gateway holds it
    at: float = field(default_factory=time.monotonic)


class Monitor:
    def __init__(self) -> None:
        self.gateways: dict[str, Heard] = {}
        self.started = time.monotonic()
        self.ever_heard = False
        self._orphans_marked = False
        self._task: asyncio.Task[None] | None = None
        self._newly_heard: list[str] = []

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def alive(self) -> bool:
        """Whether some gateway beats now (as far as this process heard)."""
        return bool(self.gateways)

    async def run(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        channel = await layer.new_channel("mc.gateway.monitor.")
        await layer.group_add(rpc.heartbeat_group(), channel)
        # Never a timeout on receive: a cancelled receive unsubscribes its channel (channels_redis).
        listener = asyncio.get_running_loop().create_task(self._listen(layer, channel))
        try:
            while True:
                await asyncio.sleep(rpc.BEAT_SECONDS / 2)
                try:
                    await self.check()
                except Exception:  # noqa: BLE001 - the database may be down: try again next turn
                    logger.warning("gateway monitor: marking a lost gateway's servers failed", exc_info=True)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _listen(self, layer: Any, channel: str) -> None:
        while True:
            self.heard(await layer.receive(channel))

    def heard(self, message: dict[str, Any]) -> None:
        gateway = message.get("gateway")
        if not isinstance(gateway, str):
            return
        if message.get("stopping"):
            previous = self.gateways.get(gateway)
            if previous is not None:
                previous.at = float("-inf")  # gone now, without waiting for the silence
            return
        self.ever_heard = True
        servers = message.get("servers")
        if gateway not in self.gateways:
            self._newly_heard.append(gateway)
        self.gateways[gateway] = Heard(servers if isinstance(servers, dict) else {})

    async def check(self) -> None:
        while self._newly_heard:
            heard = self.gateways.get(self._newly_heard[0])
            if heard is not None and heard.servers:
                restored = await sync_to_async(_restore, thread_sensitive=False)(heard.servers)
                await _announce([(i, *heard.servers[i]) for i in restored])
            self._newly_heard.pop(0)
        now = time.monotonic()
        dead = [g for g, heard in self.gateways.items() if now - heard.at > rpc.DEAD_AFTER]
        for gateway in dead:
            heard = self.gateways.pop(gateway)
            logger.warning(
                "gateway monitor: gateway %s is gone; %d server(s) unknown", gateway, len(heard.servers)
            )
            if not self.gateways:  # a live one holds its servers now, or will say how they are
                await self.mark_unknown(frozenset(heard.servers), GONE)
        if not self.ever_heard and not self._orphans_marked and now - self.started > rpc.DEAD_AFTER:
            self._orphans_marked = True
            await self.mark_unknown(None, NONE_RUNNING)

    async def mark_unknown(self, servers: frozenset[str] | None, reason: str) -> list[str]:
        """Servers (all when None) still shown as reachable become unknown; stored and sent."""
        changed = await sync_to_async(_mark_unknown, thread_sensitive=False)(servers, reason)
        await _announce([(i, MCPServer.Status.UNKNOWN, reason) for i in changed])
        return changed


async def _announce(changes: list[tuple[str, str, str]]) -> None:
    """Status changes on `mcp:{id}` and `global`, as the gateway sends its own."""
    if not changes:
        return
    outbox = Outbox()
    for server_id, status, error in changes:
        event = encode(
            {"type": "mcp.status", "mcp_id": server_id, "status": status, "error": error, "at": now_iso()}
        )
        outbox.add(f"mcp:{server_id}", event)
        outbox.add("global", event)
    await outbox.send()


def _mark_unknown(servers: frozenset[str] | None, reason: str) -> list[str]:
    close_old_connections()
    try:
        candidates = MCPServer.objects.filter(status__in=REACHABLE)
        if servers is not None:
            candidates = candidates.filter(id__in=servers)
        changed = []
        for server_id in candidates.values_list("id", flat=True):
            # One row at a time, still reachable: of several web processes, one announces it.
            if MCPServer.objects.filter(id=server_id, status__in=REACHABLE).update(
                status=MCPServer.Status.UNKNOWN, last_error=reason
            ):
                changed.append(server_id)
        return changed
    finally:
        close_old_connections()


def _restore(servers: dict[str, list[str]]) -> list[str]:
    """The statuses a live gateway reports, over those a monitor marked unknown."""
    close_old_connections()
    try:
        return [
            server_id
            for server_id, (status, error) in servers.items()
            if status != MCPServer.Status.UNKNOWN
            and MCPServer.objects.filter(
                id=server_id, status=MCPServer.Status.UNKNOWN, last_error__in=(GONE, NONE_RUNNING)
            ).update(status=status, last_error=error)
        ]
    finally:
        close_old_connections()


_monitor: Monitor | None = None


def start() -> None:
    """Start this process's monitor on the running loop, once (again if that loop ended)."""
    global _monitor
    if _monitor is not None and _monitor._task is not None and not _monitor._task.done():
        return
    _monitor = Monitor()
    _monitor.start()


def running() -> Monitor | None:
    return _monitor
