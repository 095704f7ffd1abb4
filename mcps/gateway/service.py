"""The gateway: one `Connection` per enabled managed server, and the requests to them.

Runs in `manage.py run_gateway`, or inside the web process on the embedded default.
Loops: discovery (the config file's `mcps.servers` and the database, every
`mcps.discovery_interval`), health (a probe of every server every
`mcps.health_check_interval`, recorded as a HealthCheck row), requests (from the
channel layer, see rpc.py) and logs (server stderr and MCP log notifications,
stored through the ingest pipeline in small batches and so live on the logs channels).
Status changes are stored and sent on `mcp:{id}` and `global`, and logged as the
server's (service `gateway`: connected, degraded and reconnecting with the error,
disconnected, reconnected) through the same batches as its own lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections

from logs.tailing import Tailer, follow
from mcps.gateway import rpc
from mcps.gateway.connection import (
    Backoff,
    Connection,
    Interrupted,
    InvalidArguments,
    Progress,
    Spec,
    ToolError,
    Unavailable,
    try_connect,
)
from mcps.mdns import MdnsDiscovery
from mcps.models import HealthCheck, MCPServer, replace_catalog, schema_with_defaults, with_defaults
from mcps.registration import sync_config_servers
from mcps.registry import RegistryError
from mcps.registry import sync as registry_sync
from missioncontrol.config import ConfigError, McpsConfig, load_config
from missioncontrol.ingest.batcher import EventBatcher
from missioncontrol.live import Outbox, encode, now_iso
from missioncontrol.metrics import GATEWAY_CALL_LATENCY

logger = logging.getLogger(__name__)

_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "notice": "INFO",
    "warning": "WARN",
    "warn": "WARN",
    "error": "ERROR",
    "critical": "ERROR",
    "alert": "ERROR",
    "emergency": "ERROR",
}
LOG_FLUSH_SECONDS = 0.25
# How often the log-file follower reads which servers have log_files (a change applies within this).
SOURCES_EVERY = 5.0
# A test connection's longest wait (it may spawn a server that downloads itself first).
TEST_TIMEOUT = 30.0
LogRelay = Callable[[dict[str, Any]], Awaitable[None]]


def _db(fn: Any) -> Any:
    """Run a sync ORM function off the loop, with fresh connections around it."""

    def run(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)


class Gateway:
    def __init__(self, backoff: Backoff | None = None, *, private: bool = False) -> None:
        """`private`: a gateway of its own for one process (mcp_proxy).

        It holds its own sessions and stores its servers' logs, but serves no requests
        from the channel layer and leaves server status and health to the shared one.
        """
        cfg = settings.MC.mcps
        self.backoff = backoff or Backoff(
            settings.GATEWAY_BACKOFF_BASE, settings.GATEWAY_BACKOFF_CAP, settings.MC.mcps.reconnect_backoff
        )
        self.private = private
        self.discovery_interval = cfg.discovery_interval
        self.health_interval = cfg.health_check_interval
        self.connections: dict[str, Connection] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[Any]] = []
        self.logs = EventBatcher("gateway logs", linger=LOG_FLUSH_SECONDS)
        self._statuses: dict[str, str] = {}  # each server's last status, as this gateway set it
        self._log_relays: dict[str, set[LogRelay]] = {}
        self._calls: dict[str, int] = {}  # tool calls in flight, by server
        self._requests: set[asyncio.Task[Any]] = set()
        self.id = uuid.uuid4().hex  # this gateway's heartbeat names it (monitor.py)
        self._beating: dict[str, str] = {}  # request id -> reply channel, while it runs
        # Server id -> its default_arguments, as of the last discovery.
        self.defaults: dict[str, dict[str, Any]] = {}
        self.log_poll_interval = cfg.log_poll_interval
        # Servers advertised on the local network (mcps/mdns.py), when mcps.discovery.mdns is on.
        self.mdns: MdnsDiscovery | None = None
        self._holding = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        loops = (
            [self._discovery_loop]
            if self.private
            else [self._request_loop, self._discovery_loop, self._heartbeat_loop]
        )
        for loop in loops:
            self._loops.append(asyncio.get_running_loop().create_task(loop()))
        if not self.private and self.log_poll_interval > 0:  # servers' log files (logs/tailing.py)
            self._loops.append(
                asyncio.get_running_loop().create_task(
                    follow(Tailer(sources_every=SOURCES_EVERY), self.log_poll_interval)
                )
            )
        if not self.private and settings.MC.mcps.discovery.mdns:
            self.mdns = MdnsDiscovery(self.hold_registered, settings.MC.mcps.discovery.mdns_interfaces)
            await self.mdns.start()
        await self.discover()
        logger.info("gateway: holding %d server(s)", len(self.connections))

    async def stop(self, grace: float = 10.0) -> None:
        """Close every session and let each connection finish its own bookkeeping.

        Connections are asked to stop, not cancelled, so a status write in flight in an
        executor thread completes before we return; only stragglers are cancelled.
        """
        for task in self._loops:
            task.cancel()
        if not self.private:
            try:
                await self._beat(stopping=True)  # web processes need not wait for the silence
            except Exception:  # noqa: BLE001 - then they notice the silence instead
                logger.warning("gateway: the stopping heartbeat failed", exc_info=True)
        if self.mdns is not None:
            await self.mdns.stop()
        for connection in self.connections.values():
            connection.stop()
        running = list(self.tasks.values())
        if running:
            _done, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
        await asyncio.gather(*running, *self._loops, *self._requests, return_exceptions=True)
        await self.logs.flush()

    async def settled(self, timeout: float) -> None:
        """Wait until every held server has connected or failed once (at most `timeout` s)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while any(c.status in ("unknown", "connecting") for c in self.connections.values()):
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.05)

    async def discover(self) -> None:
        """Re-read the config file's servers and registry, then hold the enabled managed ones."""
        path = settings.MC_CONFIG_PATH
        config: McpsConfig | None = settings.MC.mcps
        if path:
            try:
                config = load_config(path).mcps
            except ConfigError as exc:
                logger.error("gateway: %s: %s (keeping the servers as they are)", path, exc)
                config = None
            else:
                result = await _db(sync_config_servers)(config.servers)
                for name, reason in result.errors.items():
                    logger.error("gateway: mcps.servers.%s: %s", name, reason)
        if config is not None and config.registry.url:
            try:
                result = await _db(registry_sync)(config.registry.url, config.registry.include)
            except RegistryError as exc:
                logger.error("gateway: mcps.registry: %s (keeping its servers as they are)", exc)
            else:
                for name, reason in result.errors.items():
                    logger.warning("gateway: registry server %s skipped: %s", name, reason)
        if self.mdns is not None:
            await self.mdns.sync()
        await self.hold_registered()

    async def hold_registered(self) -> None:
        """Hold the enabled managed servers the database lists, as they are set; drop the rest.

        One at a time: the discovery loop and mDNS changes both call it.
        """
        async with self._holding:
            await self._hold_registered()

    async def _hold_registered(self) -> None:
        specs = await _db(MCPServer.objects.connection_specs)()
        self.defaults = await _db(MCPServer.objects.default_arguments)()
        for server_id in list(self.connections):
            wanted = specs.get(server_id)
            if wanted is None or Spec.of(server_id, wanted) != self.connections[server_id].spec:
                await self._drop(server_id)
        for server_id, spec in specs.items():
            if server_id not in self.connections:
                self._hold(Spec.of(server_id, spec))

    def _hold(self, spec: Spec) -> None:
        connection = Connection(spec, self, self.backoff)
        self.connections[spec.id] = connection
        self.tasks[spec.id] = asyncio.get_running_loop().create_task(connection.run())

    async def _drop(self, server_id: str) -> None:
        connection = self.connections.pop(server_id)
        connection.stop()
        task = self.tasks.pop(server_id)
        _done, late = await asyncio.wait([task], timeout=10)
        for straggler in late:
            straggler.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await self.status(server_id, MCPServer.Status.DISCONNECTED, "removed or disabled", expected=True)

    async def _discovery_loop(self) -> None:
        while True:
            await asyncio.sleep(self.discovery_interval)
            try:
                await self.discover()
            except Exception:
                logger.exception("gateway: discovery failed")

    async def check_health(self, only: str | None = None) -> list[dict[str, Any]]:
        """Probe every held server (or just `only`) once; store and return the results."""
        ids = [self._connection(only).spec.id] if only is not None else list(self.connections)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK warns that ping left the 2026 protocol
            results = await asyncio.gather(*(self.connections[i].probe() for i in ids))
        rows = [
            HealthCheck(server_id=i, ok=ok, latency_ms=ms, error=err)
            for i, (ok, ms, err) in zip(ids, results, strict=True)
        ]
        await _db(HealthCheck.objects.bulk_create)(rows)
        return [
            {"mcp_id": i, "ok": ok, "latency_ms": ms, "error": err}
            for i, (ok, ms, err) in zip(ids, results, strict=True)
        ]

    # -- hooks (called by connections) -------------------------------------------------

    async def status(self, server_id: str, status: str, error: str, *, expected: bool = False) -> None:
        """A server's new status (`expected`: the gateway let it go, nothing failed)."""
        if self.private:
            return
        previous = self._statuses.get(server_id)
        self._statuses[server_id] = status
        await _db(MCPServer.objects.record_status)(server_id, status, error)
        event = encode(
            {"type": "mcp.status", "mcp_id": server_id, "status": status, "error": error, "at": now_iso()}
        )
        outbox = Outbox()
        outbox.add(f"mcp:{server_id}", event)
        outbox.add("global", event)
        await outbox.send()
        self._log_health(server_id, status, previous, error, expected)

    def _log_health(
        self, server_id: str, status: str, previous: str | None, error: str, expected: bool
    ) -> None:
        """The change as a log entry of the server, stored like its own lines (the same
        batcher, so the same pipeline: redacted, live on `logs:*`)."""
        failed = previous in (MCPServer.Status.DEGRADED, MCPServer.Status.DISCONNECTED)
        level, message = "INFO", f"{server_id}: {status}"
        if status == MCPServer.Status.CONNECTED:
            message = f"{server_id}: {'reconnected' if failed else 'connected'}"
        elif status == MCPServer.Status.DEGRADED:
            level, message = "WARN", f"{server_id}: degraded, reconnecting: {error or 'session lost'}"
        elif status == MCPServer.Status.DISCONNECTED:
            if expected:
                message = f"{server_id}: disconnected: {error}"
            else:
                level = "ERROR"
                message = f"{server_id}: disconnected, still retrying: {error or 'session lost'}"
        self.logs.add(
            {
                "id": f"gw-{uuid.uuid4().hex}",
                "type": "log",
                "timestamp": datetime.now(UTC).isoformat(),
                "level": level,
                "service": "gateway",
                "mcp_id": server_id,
                "message": message,
                "context": {"logger": "health", "status": status, "previous": previous, "error": error},
            }
        )

    async def connected(self, server_id: str, info: dict[str, Any], catalog: dict[str, list[Any]]) -> None:
        if self.private:
            return
        await _db(MCPServer.objects.record_connected)(server_id, info, catalog)
        await self._announce_catalog(server_id, catalog)

    async def catalog(self, server_id: str, catalog: dict[str, list[Any]]) -> None:
        if self.private:
            return
        await _db(replace_catalog)(server_id, catalog)
        await self._announce_catalog(server_id, catalog)

    async def _announce_catalog(self, server_id: str, catalog: dict[str, list[Any]]) -> None:
        outbox = Outbox()
        outbox.add(
            f"mcp:{server_id}",
            encode(
                {"type": "mcp.catalog", "mcp_id": server_id, "tools": [t["name"] for t in catalog["tools"]]}
            ),
        )
        await outbox.send()

    async def log(self, server_id: str, level: str, logger_name: str, message: str, data: Any) -> None:
        """A server's log line: stored (live on the logs channels) and relayed to its callers."""
        level = _LEVELS.get(level.lower(), level.upper() if level.isupper() else "INFO")
        self.logs.add(
            {
                "id": f"gw-{uuid.uuid4().hex}",
                "type": "log",
                "timestamp": datetime.now(UTC).isoformat(),
                "level": level,
                "service": server_id,
                "mcp_id": server_id,
                "message": message[:10000],
                "context": {"logger": logger_name, "data": data}
                if data is not None
                else {"logger": logger_name},
            }
        )
        relays = self._log_relays.get(server_id)
        # A notification names no call, and every caller shares the server's one session:
        # it goes to a caller only when its call is the server's only one in flight, so
        # no caller (of another team, say) is sent lines another call made the server say.
        if not relays or len(relays) != 1 or self._calls.get(server_id, 0) != 1:
            return
        for relay in list(relays):
            try:
                await relay({"level": level, "logger": logger_name, "message": message, "data": data})
            except Exception:  # noqa: BLE001 - a caller gone away must not stop the others
                logger.debug("gateway: relaying a log of %s failed", server_id, exc_info=True)

    @contextlib.contextmanager
    def relaying_logs(self, server_id: str, relay: LogRelay | None) -> Iterator[None]:
        """While a call runs, the server's log notifications also go to its caller (when it is the
        server's only call in flight: see `log`)."""
        if relay is None:
            yield
            return
        relays = self._log_relays.setdefault(server_id, set())
        relays.add(relay)
        try:
            yield
        finally:
            relays.discard(relay)

    # -- heartbeat ---------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        """Every BEAT_SECONDS: a beat on each running request's reply channel (its caller
        learns at once when this process dies, rpc.py) and one to every web process
        (monitor.py), naming the servers held here."""
        while True:
            try:
                await self._beat()
            except Exception:  # noqa: BLE001 - the channel layer may be down for a while
                logger.warning("gateway: heartbeat failed", exc_info=True)
            await asyncio.sleep(rpc.BEAT_SECONDS)

    async def _beat(self, *, stopping: bool = False) -> None:
        layer = get_channel_layer()
        assert layer is not None
        for request_id, reply_to in list(self._beating.items()):
            await rpc.reply(reply_to, request_id, "beat", {"gateway": self.id})
        await layer.group_send(
            rpc.heartbeat_group(),
            {
                "type": "gateway.heartbeat",
                "gateway": self.id,
                "servers": {i: [c.status, c.error] for i, c in self.connections.items()},
                "stopping": stopping,
            },
        )

    # -- requests ----------------------------------------------------------------------

    async def _request_loop(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        while True:
            message = await layer.receive(rpc.gateway_channel())
            task = asyncio.get_running_loop().create_task(self._serve(message))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _serve(self, message: dict[str, Any]) -> None:
        reply_to, request_id = message["reply_to"], message["id"]
        op, args = message["op"], message.get("args") or {}
        if reply_to is None:  # a notice
            try:
                await self.handle(op, args)
            except Exception:
                logger.exception("gateway: notice %s failed", op)
            return

        async def progress(done: float, total: float | None, text: str | None) -> None:
            await rpc.reply(
                reply_to, request_id, "progress", {"progress": done, "total": total, "message": text}
            )

        async def log(entry: dict[str, Any]) -> None:
            await rpc.reply(reply_to, request_id, "log", entry)

        if op == "call_tool":
            # Its caller must know whether it may have run: acknowledged before it is
            # forwarded, and not forwarded at all once the caller took it as never sent.
            ack_by = message.get("ack_by")
            if isinstance(ack_by, int | float) and time.time() > ack_by:
                logger.warning("gateway: a tool call arrived after its caller gave up; not sent")
                return
            await rpc.reply(reply_to, request_id, "ack", {"gateway": self.id})
        self._beating[request_id] = reply_to
        try:
            await self._answer(op, args, reply_to, request_id, progress, log)
        finally:
            self._beating.pop(request_id, None)

    async def _answer(
        self, op: str, args: dict[str, Any], reply_to: str, request_id: str, progress: Progress, log: LogRelay
    ) -> None:
        work = asyncio.get_running_loop().create_task(
            self.handle(op, args, progress, log if args.get("relay_logs") else None)
        )
        if op != "call_tool":
            # A quick answer is its own acknowledgement; a slow one is acknowledged first,
            # so the caller can tell "busy" from "no gateway" (rpc.ACK_SECONDS).
            done, _ = await asyncio.wait({work}, timeout=rpc.ACK_AFTER)
            if not done:
                await rpc.reply(reply_to, request_id, "ack", {"gateway": self.id})
        try:
            payload = await work
        except rpc.GatewayError as exc:
            await rpc.reply(reply_to, request_id, "error", exc.as_payload())
        except Exception as exc:
            # A fault of the gateway's own, not the caller's: said without its text (which
            # may quote a server's connection), logged in full; a call may have been sent.
            logger.exception("gateway: %s failed", op)
            reason = f"the gateway failed ({type(exc).__name__}); its log has the details"
            failure = rpc.OutcomeUnknown(reason) if op == "call_tool" else rpc.GatewayError(502, reason)
            await rpc.reply(reply_to, request_id, "error", failure.as_payload())
        else:
            await rpc.reply(reply_to, request_id, "result", payload)

    def _connection(self, server_id: Any) -> Connection:
        connection = self.connections.get(server_id) if isinstance(server_id, str) else None
        if connection is None:
            raise rpc.GatewayError(
                404, f"no connected server {server_id!r} (unknown, disabled or not managed)", "mcp_id"
            )
        return connection

    async def handle(
        self, op: str, args: dict[str, Any], progress: Progress | None = None, on_log: LogRelay | None = None
    ) -> dict[str, Any]:
        """One operation, for the channel layer (`_serve`) or a caller in this process."""
        if op == "status":
            return {
                "servers": {
                    i: {"status": c.status, "error": c.error, "tools": sorted(c.tools)}
                    for i, c in self.connections.items()
                }
            }
        if op == "discover":
            await self.discover()
            return {"servers": sorted(self.connections)}
        if op == "check_health":
            return {"results": await self.check_health(args.get("mcp_id"))}
        if op == "list_tools":
            connection = self._connection(args.get("mcp_id"))
            if connection.client is None:
                raise rpc.GatewayError(503, f"server {connection.spec.id!r} is {connection.status}")
            return {"mcp_id": connection.spec.id, "tools": list(connection.tools.values())}
        if op == "reconnect":
            connection = self._connection(args.get("mcp_id"))
            connection.reconnect()
            return {"mcp_id": connection.spec.id, "reconnecting": True}
        if op == "catalog":
            return {
                "servers": {
                    i: self._listed_tools(i, c) for i, c in self.connections.items() if c.client is not None
                }
            }
        if op == "call_tool":
            return await self._call_tool(args, progress, on_log)
        if op == "test_connection":
            return await self._test_connection(args)
        raise rpc.GatewayError(400, f"unknown operation {op!r}", "op")

    async def _test_connection(self, args: dict[str, Any]) -> dict[str, Any]:
        """Connect once to the server `args["spec"]` describes (saved or not), list what it
        offers and close; the held sessions are left alone."""
        spec, timeout = args.get("spec"), args.get("timeout") or TEST_TIMEOUT
        try:
            target = Spec.of(str(args.get("mcp_id") or "test"), spec)  # type: ignore[arg-type]
        except (KeyError, TypeError, AttributeError):
            raise rpc.GatewayError(400, "expected a connection spec", "spec") from None
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise rpc.GatewayError(400, "expected seconds > 0", "timeout")
        return await try_connect(target, float(min(timeout, TEST_TIMEOUT)))

    def _listed_tools(self, server_id: str, connection: Connection) -> list[dict[str, Any]]:
        """The tools as routed callers see them: an argument with a default is not required."""
        defaults = self.defaults.get(server_id)
        if not defaults:
            return list(connection.tools.values())
        return [
            {**t, "inputSchema": schema_with_defaults(defaults, t["name"], t["inputSchema"])}
            if isinstance(t.get("inputSchema"), dict)
            else t
            for t in connection.tools.values()
        ]

    def listed_schema(self, server_id: str, tool: str) -> dict[str, Any] | None:
        """`tool`'s input schema as listed to routed callers (None: not held or unknown)."""
        connection = self.connections.get(server_id)
        entry = connection.tools.get(tool) if connection is not None else None
        schema = entry.get("inputSchema") if entry is not None else None
        defaults = self.defaults.get(server_id)
        if not defaults or not isinstance(schema, dict):
            return schema
        return schema_with_defaults(defaults, tool, schema)

    async def _call_tool(
        self, args: dict[str, Any], progress: Progress | None, on_log: LogRelay | None
    ) -> dict[str, Any]:
        connection = self._connection(args.get("mcp_id"))
        name, arguments = args.get("tool"), args.get("arguments") or {}
        if not isinstance(name, str) or not name:
            raise rpc.GatewayError(400, "required, the tool's name", "tool")
        if not isinstance(arguments, dict):
            raise rpc.GatewayError(400, "expected an object", "arguments")
        # Every routed call comes through here (/mcp, mcp_proxy, REST, the WebSocket):
        # the server's default arguments go under the caller's (mcps/models.py with_defaults).
        defaults = self.defaults.get(connection.spec.id)
        if defaults and name in connection.tools:
            arguments = with_defaults(defaults, name, connection.tools[name].get("inputSchema"), arguments)
        timeout = args.get("timeout") or settings.GATEWAY_CALL_TIMEOUT
        start, outcome = time.perf_counter(), "error"
        server_id = connection.spec.id
        self._calls[server_id] = self._calls.get(server_id, 0) + 1
        try:
            with self.relaying_logs(server_id, on_log):
                result = await connection.call_tool(name, arguments, float(timeout), progress)
            outcome = "ok"
        except Unavailable as exc:
            raise rpc.GatewayError(503, str(exc), "mcp_id") from exc
        except Interrupted as exc:
            outcome = "interrupted"
            raise rpc.OutcomeUnknown(str(exc)) from exc
        except InvalidArguments as exc:
            field = f"arguments.{exc.path}" if exc.path else "arguments"
            raise rpc.GatewayError(400, f"fails the tool's input schema: {exc.message}", field) from exc
        except ToolError as exc:
            status = 404 if name not in connection.tools else 400
            raise rpc.GatewayError(status, exc.args[0], "tool" if status == 404 else "arguments") from exc
        except TimeoutError as exc:
            outcome = "timeout"
            raise rpc.GatewayError(
                504,
                f"{name} did not answer within {float(timeout):g} s; it may or may not have run",
                "timeout",
                rpc.UNKNOWN,
            ) from exc
        finally:
            self._calls[server_id] -= 1
            GATEWAY_CALL_LATENCY.labels(connection.spec.id, outcome).observe(time.perf_counter() - start)
        return {"mcp_id": connection.spec.id, "tool": name, "result": result}
