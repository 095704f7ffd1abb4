"""Servers advertised on the local network over mDNS / DNS-SD (`mcps.discovery.mdns`).

A server advertises the service type `_mcp._tcp.local.` with TXT keys `path` (default
`/mcp`) and `transport` (`streamable-http`, the default, or `sse`). Each becomes one
`mcpServers` entry, `http://<address>:<port><path>`, and goes through `register` like
any other source (source `mdns`); its id is the advertised instance name, as a slug
(`Build Box._mcp._tcp.local.` -> `Build-Box`). One that stops advertising (a goodbye
packet, or its records expiring) is disabled, as the registry does; one that comes
back is enabled again. A name already taken by a server from another source is
skipped and logged, never overwritten.

The browser runs in the gateway process (the web process's gateway on the embedded
default, `run_gateway` otherwise), on the gateway's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from mcps.models import MCPServer
from mcps.registration import Registration, register, slug_for

logger = logging.getLogger(__name__)

SERVICE_TYPE = "_mcp._tcp.local."
TRANSPORTS = {"streamable-http": "http", "sse": "sse"}
# How long after start the browser has heard every server that answers: only then is a
# server registered earlier but not heard disabled (a restart must not flap them all).
SETTLE_SECONDS = 3.0
RESOLVE_TIMEOUT_MS = 3000


class Unusable(ValueError):
    """An advertisement that does not say how to reach an MCP server."""


def instance_name(name: str) -> str:
    """`Build Box._mcp._tcp.local.` -> `Build Box`."""
    return name.removesuffix("." + SERVICE_TYPE)


def entry_for(info: AsyncServiceInfo) -> dict[str, Any]:
    """The `mcpServers` entry for one resolved advertisement, or Unusable with the reason."""
    txt = {k: v for k, v in info.decoded_properties.items() if v is not None}
    transport = txt.get("transport", "streamable-http").lower()
    if transport not in TRANSPORTS:
        raise Unusable(f"TXT transport {transport!r}: expected streamable-http or sse")
    path = txt.get("path") or "/mcp"
    path = path if path.startswith("/") else f"/{path}"
    addresses = info.parsed_scoped_addresses(IPVersion.V4Only) or info.parsed_scoped_addresses(
        IPVersion.V6Only
    )
    if not addresses or not info.port:
        raise Unusable("no address or port in the advertisement")
    host = addresses[0] if ":" not in addresses[0] else f"[{addresses[0]}]"
    return {"url": f"http://{host}:{info.port}{path}", "type": TRANSPORTS[transport]}


def sync(found: dict[str, dict[str, Any]], *, settled: bool) -> Registration:
    """Make the database match what is advertised: register each of `found` (instance name
    -> entry); once `settled`, disable the mdns servers no longer advertised."""
    result = Registration()
    taken = dict(
        MCPServer.objects.filter(id__in=[slug_for(n) for n in found])
        .exclude(source=MCPServer.Source.MDNS)
        .values_list("id", "source")
    )
    for name, entry in found.items():
        slug = slug_for(name)
        if slug in taken:
            result.errors[name] = f"the id {slug!r} belongs to a server from {taken[slug]}; not replaced"
            continue
        register(name, entry, MCPServer.Source.MDNS, result)
    if settled:
        advertised = {slug_for(n) for n in found}
        gone = MCPServer.objects.filter(source=MCPServer.Source.MDNS, enabled=True).exclude(id__in=advertised)
        result.updated += list(gone.values_list("id", flat=True))
        gone.update(enabled=False)
    return result


def _sync_in_thread(found: dict[str, dict[str, Any]], settled: bool) -> Registration:
    close_old_connections()
    try:
        return sync(found, settled=settled)
    finally:
        close_old_connections()


class MdnsDiscovery:
    """Browses `_mcp._tcp.local.`; after each change, registers what it found and calls `changed`."""

    def __init__(self, changed: Callable[[], Awaitable[None]], interfaces: tuple[str, ...] = ()) -> None:
        self.changed = changed
        self.interfaces: Any = list(interfaces) or InterfaceChoice.All
        self.found: dict[str, dict[str, Any]] = {}
        # Seen appear since the last sync: registered enabled (one that came back, say).
        self.appeared: set[str] = set()
        self.settled = False
        self._zeroconf: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start browsing; if the network refuses (no such interface), log why and stay idle:
        the gateway serves its other servers all the same."""
        try:
            self._zeroconf = AsyncZeroconf(interfaces=self.interfaces)
        except OSError as exc:
            logger.error("mdns: cannot browse on %s: %s; mDNS discovery is off", self.interfaces, exc)
            return
        self._browser = AsyncServiceBrowser(
            self._zeroconf.zeroconf, [SERVICE_TYPE], handlers=[self._on_change]
        )
        self._spawn(self._settle())
        logger.info("mdns: browsing %s", SERVICE_TYPE)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zeroconf is not None:
            await self._zeroconf.async_close()

    async def sync(self) -> None:
        """Register what is advertised now (the gateway's discovery calls this too)."""
        async with self._lock:
            found = {
                name: {**entry, "enabled": True} if name in self.appeared else entry
                for name, entry in self.found.items()
            }
            self.appeared.clear()
            result = await sync_to_async(_sync_in_thread, thread_sensitive=False)(found, self.settled)
        for name, reason in result.errors.items():
            logger.warning("mdns: %s skipped: %s", name, reason)
        if result.created or result.updated:
            logger.info("mdns: registered %s, updated %s", result.created, result.updated)

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            self._spawn(self._removed(name))
        else:
            self._spawn(self._resolved(name))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self) -> None:
        await asyncio.sleep(SETTLE_SECONDS)
        self.settled = True
        await self._apply()

    async def _resolved(self, name: str) -> None:
        assert self._zeroconf is not None
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self._zeroconf.zeroconf, RESOLVE_TIMEOUT_MS):
            logger.warning("mdns: %s did not answer with its address", name)
            return
        try:
            entry = entry_for(info)
        except Unusable as exc:
            logger.warning("mdns: %s skipped: %s", name, exc)
            return
        instance = instance_name(name)
        if self.found.get(instance) == entry:
            return
        self.appeared.add(instance)
        self.found[instance] = entry
        await self._apply()

    async def _removed(self, name: str) -> None:
        if self.found.pop(instance_name(name), None) is not None:
            await self._apply()

    async def _apply(self) -> None:
        try:
            await self.sync()
            await self.changed()
        except Exception:
            logger.exception("mdns: applying a change failed")
