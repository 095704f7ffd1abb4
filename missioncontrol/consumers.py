"""The one WebSocket endpoint, /ws/, speaking the contract's frames.

Client frames: subscribe, unsubscribe, command, query, ping. Server frames: event,
response, error, resync. A subscription first receives the channel's current state (a
thread's details, timeline and transcript; the last N matching logs; the active
threads), then live events as batches commit.

Resuming (missioncontrol.history): live event frames carry the channel's `epoch` and
`seq`, and so does the snapshot frame. A client that reconnects subscribes with
`{"resume": {"epoch": ..., "seq": ...}}` (the last it saw on that channel) and receives
the frames it missed, in order, instead of a snapshot; or, when the history cannot
answer, a `resync` frame followed by the snapshot.

Authentication: `?token=<JWT access token or API token>` in the URL, the same in the
handshake's `Authorization: Bearer` header (clients that can set headers keep it out of
URLs and logs), or the session cookie. Without any the socket is sent an error frame
and closed with code 4401; a user with no role (or a metrics-only token), 4403. A user
sees what `visible_to` lets it see: another team's `thread:{id}`, `logs:{id}` or
`permission:{id}` answers an error frame, and events on every channel are filtered per
connection by their teams (EventsMessage.teams).
Commands need the operator role (call_tool, reconnect) and are in the access audit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.cache import caches

from audit import access
from audit.models import PermissionEvent
from logs.events import LogFilter, recent
from mcps.endpoint.gate import open_call
from mcps.gateway import rpc as gateway_rpc
from mcps.models import MCPServer
from missioncontrol import live, ratelimit, roles
from missioncontrol.authentication import METRICS_ONLY, metrics_only, user_for_bearer
from missioncontrol.credentials import scope_bearer
from missioncontrol.jsontext import JSONDecodeError, loads
from missioncontrol.live import EventsMessage, encode, events_frame, frame, group_for, parse_channel
from missioncontrol.metrics import WEBSOCKET_CONNECTIONS
from missioncontrol.ratelimit import FrameWindow
from threads.models import Thread

logger = logging.getLogger(__name__)

# A log sent in a subscription's history may also come by live message (its batch
# committed before the history query, its group_send after); its id is remembered
# this long to drop the repeat.
_HISTORY_DEDUP_SECONDS = 10.0
COMMANDS = ("call_tool", "list_tools", "reconnect")
# Close codes of the limits, application codes (4000-4999: daphne refuses to send the
# protocol's own 1008, and a client would see 1011): a user past
# rate_limits.websocket_connections (after HTTP's 429), a client flooding frames
# (after the protocol's 1008, policy violation).
CLOSE_TOO_MANY_CONNECTIONS = 4029
CLOSE_FLOOD = 4008
CLOSE_BUSY = 4013  # this process is at websocket.max_connections (the protocol's 1013)
# What each command needs of the user's role.
COMMAND_PERMISSIONS = {"call_tool": roles.CALL_TOOL, "list_tools": roles.READ, "reconnect": roles.RECONNECT}
UNAUTHENTICATED = 4401  # close codes: no valid credentials; a user without a role
FORBIDDEN = 4403


# The longest a call_tool command may ask to wait for its answer, in seconds.
MAX_CALL_TIMEOUT = 3600.0
# A command's `command_id` is remembered (per user, across sockets and processes: the
# shared cache) this long, so that a client re-sending it after a reconnect gets the
# first run's answer instead of running it again.
COMMAND_MEMORY_SECONDS = 900
MAX_COMMAND_ID = 200
# How often a repeat polls for the answer of a first run still under way.
_REPEAT_POLL_SECONDS = 0.1


def _command_key(user_id: int, command_id: str) -> str:
    return f"ws-command:{user_id}:{hashlib.sha256(command_id.encode()).hexdigest()}"


async def _cache(method: str, *args: Any) -> Any:
    """A call of the shared cache, off the one thread-sensitive executor."""
    return await sync_to_async(getattr(caches["shared"], method), thread_sensitive=False)(*args)


def _valid_timeout(value: Any) -> bool:
    """A call_tool timeout: absent (the gateway's default), or seconds in (0, MAX_CALL_TIMEOUT]."""
    if value is None:
        return True
    return not isinstance(value, bool) and isinstance(value, int | float) and 0 < value <= MAX_CALL_TIMEOUT


def _thread_state(thread_id: str, user: Any) -> dict[str, Any]:
    thread = Thread.objects.visible_to(user).filter(id=thread_id).first()
    if thread is None:
        return {"type": "thread.state", "thread": None, "children": [], "timeline": [], "transcript": []}
    return {"type": "thread.state", **thread.state(user)}


def _active_threads(user: Any) -> dict[str, Any]:
    threads = Thread.objects.visible_to(user).active().order_by("-started_at")[:200]
    return {"type": "threads.active", "threads": [t.summary() for t in threads]}


def _mcp_state(mcp_id: str, user: Any) -> dict[str, Any]:
    server = MCPServer.objects.filter(id=mcp_id).first()
    active = Thread.objects.visible_to(user).active().filter(mcp_id=mcp_id).order_by("-started_at")[:200]
    return {
        "type": "mcp.state",
        "mcp": None
        if server is None
        else {
            "id": server.id,
            "name": server.name,
            "status": server.status,
            "last_seen": server.last_seen.isoformat() if server.last_seen else None,
        },
        "active_threads": [t.summary() for t in active],
    }


def _permission_history(thread_id: str, limit: int, user: Any) -> list[dict[str, Any]]:
    rows = PermissionEvent.objects.visible_to(user).filter(thread_id=thread_id).order_by("-timestamp")[:limit]
    return [row.as_event() for row in reversed(list(rows))]


def _snapshot(channel: str, log_filter: LogFilter | None, limit: int, user: Any) -> list[dict[str, Any]]:
    """What a new subscriber of `channel` receives before live events (what `user` may see)."""
    kind, key = parse_channel(channel)
    assert key is not None or kind == "global"
    if kind == "global":
        return [_active_threads(user)]
    if kind == "thread":
        return [_thread_state(key, user)]  # type: ignore[arg-type]
    if kind == "mcp":
        return [_mcp_state(key, user)]  # type: ignore[arg-type]
    if kind == "logs":
        return recent(log_filter or LogFilter(), limit, None if key == "*" else key, user)
    return _permission_history(key, limit, user)  # type: ignore[arg-type]


def _hidden_thread(channel: str, user: Any) -> bool:
    """True if `channel` is about a stored thread that `user` may not see."""
    kind, key = parse_channel(channel)
    if kind not in ("thread", "logs", "permission") or key in (None, "*") or roles.sees_all(user):
        return False
    threads = Thread.objects.filter(id=key)
    return threads.exists() and not threads.visible_to(user).exists()


def _connecting_user(scope: dict[str, Any]) -> tuple[Any, str | None]:
    """(user, None), or (None, why not): `?token=` first, then the handshake's
    `Authorization: Bearer`, else the session's user."""
    token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
    token = token or scope_bearer(scope)
    if token:
        if ratelimit.bearer_user_id(token) is None:
            # Not seen valid yet: counted against the address before it costs a lookup.
            client = scope.get("client") or (None, None)
            denied = ratelimit.check_api(None, client[0])
            if denied is not None:
                return None, denied.reason
        user = user_for_bearer(token, scope, via="ws")
        return (user, None) if user is not None else (None, "invalid, expired or revoked token")
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return None, (
            "authentication required: connect with ?token=<access token>, an "
            "'Authorization: Bearer <access token>' header, or a session"
        )
    return user, None


def _admit(scope: dict[str, Any]) -> tuple[Any, str | None, frozenset[int], bool]:
    """(user, why it is refused or None, its team ids, whether it sees every team).

    Read once per connection: a change of teams or role applies from the next one.
    """
    user, refusal = _connecting_user(scope)
    if user is None:
        return None, refusal, frozenset(), False
    if metrics_only(user):
        return user, METRICS_ONLY, frozenset(), False
    if not roles.can(user, roles.READ):
        return user, "your account has no role that may read; ask an admin", frozenset(), False
    return user, None, frozenset(roles.team_ids(user)), roles.sees_all(user)


class Subscription:
    """One channel a socket listens to, with its server-side log filter."""

    __slots__ = ("channel", "log_filter", "history_ids", "history_until", "sent_seq")

    def __init__(self, channel: str, log_filter: LogFilter | None) -> None:
        self.channel = channel
        self.log_filter = None if log_filter is None or log_filter.is_empty else log_filter
        self.history_ids: set[str] = set()
        self.history_until = 0.0
        # After a resume: the last seq replayed; live messages up to it are repeats.
        self.sent_seq = 0


def _resume_point(payload: dict[str, Any]) -> tuple[str, int] | None:
    """The (epoch, seq) of a subscribe's `resume`; ValueError naming the field."""
    resume = payload.get("resume")
    if resume is None:
        return None
    if not isinstance(resume, dict):
        raise ValueError("resume: expected an object {epoch, seq}")
    epoch, seq = resume.get("epoch"), resume.get("seq")
    if not isinstance(epoch, str) or not epoch:
        raise ValueError("resume.epoch: expected the epoch of the last event frame received")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError("resume.seq: expected the seq (an integer >= 0) of the last event frame received")
    return epoch, seq


class LiveConsumer(AsyncWebsocketConsumer):
    """Bridges a browser (or any client) to the channel-layer groups it subscribes to."""

    subscriptions: dict[str, Subscription]
    # Sockets open in this process, against settings.WS_MAX_CONNECTIONS.
    open_sockets = 0
    # Commands with a command_id under way in this process (they outlive their socket).
    remembered: set[asyncio.Task[None]] = set()
    closed = False

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch minus its per-message `aclose_old_connections()`.

        That call is a hop to the one thread-sensitive executor thread for every message
        of every consumer: with a hundred sockets on `logs:*` it queued each batch's
        fan-out behind a hundred hops. Every database access here goes through
        `database_sync_to_async`, which closes old connections around itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.subscriptions = {}
        self.commands: set[asyncio.Task[None]] = set()
        self.counted = False
        self.identity: str | None = None  # set while counted against its user's socket cap
        self.renewal: asyncio.Task[None] | None = None
        self.frames = FrameWindow(settings.RATE_LIMITS.websocket_frames)
        self.user, refusal, self.team_set, self.sees_all = await database_sync_to_async(_admit)(self.scope)
        await self.accept()
        if refusal is not None:
            await self.send_error(refusal, field="token")
            await self.close(code=FORBIDDEN if self.user is not None else UNAUTHENTICATED)
            return
        if LiveConsumer.open_sockets >= settings.WS_MAX_CONNECTIONS:
            await self.send_error(
                f"this server holds its maximum of {settings.WS_MAX_CONNECTIONS} live connections; "
                "retry later",
                field="websocket.max_connections",
            )
            await self.close(code=CLOSE_BUSY)
            return
        # Counted before the user's cap is asked (an await with Redis): a socket opened
        # meanwhile sees this one.
        LiveConsumer.open_sockets += 1
        WEBSOCKET_CONNECTIONS.inc()
        self.counted = True
        client = self.scope.get("client") or (None,)
        identity, who = ratelimit.identity(self.user, client[0])
        cap = settings.RATE_LIMITS.websocket_connections
        if cap:
            if not await ratelimit.sockets().open(identity, self.channel_name, cap):
                LiveConsumer.open_sockets -= 1
                self.counted = False
                await self.send_error(
                    f"{who} already holds {cap} live connections; close one and retry",
                    field="rate_limits.websocket_connections",
                )
                await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
                return
            self.identity = identity
            self.renewal = asyncio.get_running_loop().create_task(self._renew_socket(identity))

    async def _renew_socket(self, identity: str) -> None:
        """Keep this socket counted against its user's cap while it is open."""
        while True:
            await asyncio.sleep(ratelimit.SOCKET_RENEW)
            await ratelimit.sockets().renew(identity, self.channel_name)

    async def disconnect(self, code: int) -> None:
        self.closed = True
        for task in list(getattr(self, "commands", ())):
            task.cancel()
        if getattr(self, "counted", False):
            LiveConsumer.open_sockets -= 1
            WEBSOCKET_CONNECTIONS.dec()
            self.counted = False
        identity = getattr(self, "identity", None)
        if identity is not None:
            if self.renewal is not None:
                self.renewal.cancel()
            await ratelimit.sockets().close(identity, self.channel_name)
            self.identity = None
        for channel in list(getattr(self, "subscriptions", {})):
            try:
                await self.channel_layer.group_discard(group_for(channel), self.channel_name)
            except Exception as exc:  # Redis gone or restarted: the group is left locally anyway
                logger.warning("ws: leaving %s failed: %s", channel, exc)
        self.subscriptions = {}

    async def send_error(
        self,
        reason: str,
        channel: str = "",
        request_id: str | None = None,
        field: str | None = None,
        **extra: Any,
    ) -> None:
        payload: dict[str, Any] = {"reason": reason, **extra}
        if field:
            payload["field"] = field
        await self.send(text_data=frame("error", channel, payload, request_id))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        retry_after = self.frames.take()
        if retry_after:
            await self._over_frame_limit(retry_after)
            return
        try:
            message = loads(text_data if text_data is not None else (bytes_data or b""))
        except JSONDecodeError as exc:
            await self.send_error(f"frame is not valid JSON: {exc}")
            return
        if not isinstance(message, dict):
            await self.send_error("frame must be a JSON object")
            return
        request_id = message.get("request_id")
        request_id = request_id if isinstance(request_id, str) else None
        kind = message.get("type")
        handler = {
            "subscribe": self.on_subscribe,
            "unsubscribe": self.on_unsubscribe,
            "ping": self.on_ping,
            "query": self.on_query,
            "command": self.on_command,
        }.get(kind if isinstance(kind, str) else "")
        if handler is None:
            await self.send_error(
                f"unknown frame type {kind!r}; expected subscribe, unsubscribe, command, query or ping",
                request_id=request_id,
                field="type",
            )
            return
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.send_error("payload must be an object", request_id=request_id, field="payload")
            return
        await handler(message.get("channel"), payload, request_id)

    async def _over_frame_limit(self, retry_after: int) -> None:
        """Past rate_limits.websocket_frames: one error frame, then frames are dropped until
        the next window; a client that keeps flooding (twice the limit) is disconnected."""
        if self.frames.flooding:
            if self.frames.hits == 2 * self.frames.rate.count + 1:
                await self.close(code=CLOSE_FLOOD)
            return
        if self.frames.first_over:
            await self.send_error(
                f"more than {self.frames.rate} frames on this connection; frames are dropped for "
                f"{retry_after} s, and the connection is closed if they keep coming",
                field="rate_limits.websocket_frames",
                retry_after=retry_after,
            )

    async def on_subscribe(self, channel: Any, payload: dict[str, Any], request_id: str | None) -> None:
        try:
            kind, _key = parse_channel(channel)
            log_filter = LogFilter.parse(payload.get("filter", payload)) if kind == "logs" else None
        except ValueError as exc:
            await self.send_error(str(exc), str(channel or ""), request_id, field="channel")
            return
        try:
            resume = _resume_point(payload)
        except ValueError as exc:
            await self.send_error(str(exc), channel, request_id, field="resume")
            return
        limit = payload.get("history", settings.WS_LOG_HISTORY)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 1000:
            await self.send_error(
                "history: expected an integer from 0 to 1000", channel, request_id, "history"
            )
            return
        if await database_sync_to_async(_hidden_thread)(channel, self.user):
            # Another team's thread is "not found", as on REST.
            await self.send_error(f"no thread {_key_of(channel)!r}", channel, request_id, "channel")
            return
        subscription = Subscription(channel, log_filter)
        if channel not in self.subscriptions:
            # Join before reading the snapshot (or the history) so nothing committed
            # meanwhile is missed; what both bring is dropped by id (or seq).
            await self.channel_layer.group_add(group_for(channel), self.channel_name)
        self.subscriptions[channel] = subscription
        if resume is not None:
            replay = await live.replay(channel, *resume)
            if replay.resync is None:
                await self.send(
                    text_data=frame("response", channel, {"subscribed": True, "resumed": True}, request_id)
                )
                for message in replay.messages:
                    await self._forward(subscription, message)  # type: ignore[arg-type]
                subscription.sent_seq = replay.position.seq
                return
            await self.send(
                text_data=frame("response", channel, {"subscribed": True, "resumed": False}, request_id)
            )
            resync = {"reason": replay.resync, "epoch": replay.position.epoch, "seq": replay.position.seq}
            await self.send(text_data=frame("resync", channel, resync, request_id))
        else:
            await self.send(text_data=frame("response", channel, {"subscribed": True}, request_id))
        # The position first: a live message after it may come before the snapshot is read.
        at = await live.position(channel)
        snapshot = await database_sync_to_async(_snapshot)(channel, log_filter, limit, self.user)
        if kind == "logs":
            subscription.history_ids = {event["id"] for event in snapshot}
            subscription.history_until = time.monotonic() + _HISTORY_DEDUP_SECONDS
        if snapshot or kind == "logs":
            await self.send(text_data=events_frame(channel, [encode(e) for e in snapshot], at))

    async def on_unsubscribe(self, channel: Any, payload: dict[str, Any], request_id: str | None) -> None:
        if not isinstance(channel, str) or channel not in self.subscriptions:
            await self.send_error(f"not subscribed to {channel!r}", str(channel or ""), request_id, "channel")
            return
        del self.subscriptions[channel]
        await self.channel_layer.group_discard(group_for(channel), self.channel_name)
        await self.send(text_data=frame("response", channel, {"unsubscribed": True}, request_id))

    async def on_ping(self, channel: Any, payload: dict[str, Any], request_id: str | None) -> None:
        await self.send(text_data=frame("response", "", {"pong": True}, request_id))

    async def on_query(self, channel: Any, payload: dict[str, Any], request_id: str | None) -> None:
        """Read a channel's current state without subscribing: {"type": "query", "channel": ...}."""
        try:
            kind, _key = parse_channel(channel)
            log_filter = LogFilter.parse(payload.get("filter", payload)) if kind == "logs" else None
        except ValueError as exc:
            await self.send_error(str(exc), str(channel or ""), request_id, field="channel")
            return
        limit = payload.get("limit", settings.WS_LOG_HISTORY)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 1000:
            await self.send_error("limit: expected an integer from 0 to 1000", channel, request_id, "limit")
            return
        if await database_sync_to_async(_hidden_thread)(channel, self.user):
            await self.send_error(f"no thread {_key_of(channel)!r}", channel, request_id, "channel")
            return
        snapshot = await database_sync_to_async(_snapshot)(channel, log_filter, limit, self.user)
        await self.send(text_data=frame("response", channel, {"events": snapshot}, request_id))

    async def on_command(self, channel: Any, payload: dict[str, Any], request_id: str | None) -> None:
        """{"type": "command", "channel": "mcp:{id}", "payload": {"command": "call_tool", ...}}.

        Commands: call_tool (tool, arguments, timeout), list_tools, reconnect. Progress
        comes as event frames carrying the request_id, then one response (or error).

        A `command_id` in the payload (a string the client makes unique, up to 200
        characters) makes a re-send safe: the same user sending the same id again within
        15 minutes, on any socket, is answered with the first run's response (or error),
        waiting for it if that run is still under way, and nothing runs twice. A run
        with an id goes on when its socket closes, so its answer is there for the
        re-send.
        """
        try:
            kind, mcp_id = parse_channel(channel)
        except ValueError as exc:
            await self.send_error(str(exc), str(channel or ""), request_id, field="channel")
            return
        command = payload.get("command")
        if kind != "mcp" or mcp_id == "*":
            await self.send_error(
                "commands go to a server's channel, mcp:{id}", channel, request_id, "channel"
            )
            return
        if command not in COMMANDS:
            reason = f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}"
            await self.send_error(reason, channel, request_id, field="command")
            return
        command_id = payload.get("command_id")
        if command_id is not None and (
            not isinstance(command_id, str) or not 0 < len(command_id) <= MAX_COMMAND_ID
        ):
            reason = f"command_id: expected a string of 1 to {MAX_COMMAND_ID} characters"
            await self.send_error(reason, channel, request_id, field="command_id")
            return
        timeout = payload.get("timeout")
        if command == "call_tool" and not _valid_timeout(timeout):
            reason = f"timeout: expected a number of seconds above 0, at most {MAX_CALL_TIMEOUT:g}"
            await self.send_error(reason, channel, request_id, field="timeout")
            return
        needed = COMMAND_PERMISSIONS[command]
        if not await database_sync_to_async(roles.can)(self.user, needed):
            if command != "list_tools":
                await self._audit(command, mcp_id, payload, access.DENIED)
            payload_out = {"reason": f"your role may not {command} (needs {needed})", "status": 403}
            await self.send(text_data=frame("error", channel, payload_out, request_id))
            return
        loop = asyncio.get_running_loop()
        if command_id is None:
            task = loop.create_task(self._run_command(channel, mcp_id, command, payload, request_id))
            self.commands.add(task)
            task.add_done_callback(self.commands.discard)
            return
        # Not cancelled with the socket: its answer is kept for the client's re-send.
        task = loop.create_task(self._run_once(command_id, channel, mcp_id, command, payload, request_id))
        LiveConsumer.remembered.add(task)
        task.add_done_callback(LiveConsumer.remembered.discard)

    async def _answer(self, kind: str, channel: str, payload: dict[str, Any], request_id: str | None) -> None:
        """Send a command's final frame, unless the socket has closed meanwhile."""
        if not self.closed:
            await self.send(text_data=frame(kind, channel, payload, request_id))

    async def _run_command(
        self, channel: str, mcp_id: str, command: str, payload: dict[str, Any], request_id: str | None
    ) -> None:
        kind, answer = await self._execute(channel, mcp_id, command, payload, request_id)
        await self._answer(kind, channel, answer, request_id)

    async def _run_once(
        self,
        command_id: str,
        channel: str,
        mcp_id: str,
        command: str,
        payload: dict[str, Any],
        request_id: str | None,
    ) -> None:
        """Run a command carrying `command_id` unless this user sent it before: then answer
        with the first run's answer (waiting for it while that run goes on)."""
        key = _command_key(self.user.pk, command_id)
        if await _cache("add", key, {"state": "running"}, COMMAND_MEMORY_SECONDS):
            try:
                kind, answer = await self._execute(channel, mcp_id, command, payload, request_id)
            except BaseException as exc:
                # Whether it took effect is unknown: a re-send is told so, never run again.
                reason = (
                    f"the command's run ended without an answer ({type(exc).__name__}); "
                    "it may have taken effect"
                )
                ended = {"state": "done", "type": "error", "payload": {"reason": reason, "status": 500}}
                await asyncio.shield(_cache("set", key, ended, COMMAND_MEMORY_SECONDS))
                raise
            done = {"state": "done", "type": kind, "payload": answer}
            await _cache("set", key, done, COMMAND_MEMORY_SECONDS)
            await self._answer(kind, channel, answer, request_id)
            return
        wait = float(payload.get("timeout") or settings.GATEWAY_CALL_TIMEOUT) + 30.0
        deadline = time.monotonic() + wait
        while True:
            first = await _cache("get", key)
            if first is None:
                reason = f"command {command_id!r} was sent before and its answer is no longer known"
                await self._answer("error", channel, {"reason": reason, "status": 409}, request_id)
                return
            if first.get("state") == "done":
                await self._answer(first["type"], channel, first["payload"], request_id)
                return
            if time.monotonic() > deadline:
                reason = f"command {command_id!r} was sent before and is still running; ask again later"
                await self._answer("error", channel, {"reason": reason, "status": 409}, request_id)
                return
            await asyncio.sleep(_REPEAT_POLL_SECONDS)

    async def _execute(
        self, channel: str, mcp_id: str, command: str, payload: dict[str, Any], request_id: str | None
    ) -> tuple[str, dict[str, Any]]:
        """Run a command: its final frame's type ("response" or "error") and payload.
        Progress events are sent while it runs (while the socket is open)."""
        args: dict[str, Any] = {"mcp_id": mcp_id}
        timeout = 10.0
        if command == "call_tool":
            args.update(tool=payload.get("tool"), arguments=payload.get("arguments") or {})
            args["timeout"] = payload.get("timeout")
            timeout = float(payload.get("timeout") or settings.GATEWAY_CALL_TIMEOUT)

        async def progress(update: dict[str, Any]) -> None:
            if not self.closed:
                await self.send(
                    text_data=frame("event", channel, {"type": "tool.progress", **update}, request_id)
                )

        call = None
        if command == "call_tool" and isinstance(args["tool"], str) and isinstance(args["arguments"], dict):
            # Decided by the policies and recorded as a thread, like every routed call.
            from mcps.endpoint.http import mcp_endpoint

            call = await open_call(
                mcp_endpoint.recorder, self.user, mcp_id, args["tool"], args["arguments"], via="WebSocket"
            )
            if not call.decision.granted:
                call.record(error=call.decision.denial_text())
                denied = {"reason": call.decision.denial_text(), "status": 403, "field": "policy"}
                await self._audit(command, mcp_id, payload, access.DENIED)
                return "error", {**denied, "thread_id": call.thread_id}
        try:
            result = await gateway_rpc.request(command, args, timeout=timeout, on_progress=progress)
        except gateway_rpc.GatewayError as exc:
            if call is not None:
                call.record(
                    error=exc.reason,
                    unknown_server=exc.status == 404 and exc.field == "mcp_id",
                    outcome=exc.outcome,
                )
            payload_out: dict[str, Any] = {"reason": exc.reason, "status": exc.status}
            if exc.field:
                payload_out["field"] = exc.field
            if exc.outcome is not None:  # "unknown": it may have run (a 503 was never sent)
                payload_out["outcome"] = exc.outcome
            if call is not None:
                payload_out["thread_id"] = call.thread_id
            await self._audit(command, mcp_id, payload, access.FAILURE)
            return "error", payload_out
        if call is not None:
            call.record(result=result.get("result"))
            result = {**result, "thread_id": call.thread_id}
        await self._audit(command, mcp_id, payload, access.SUCCESS)
        return "response", result

    async def _audit(self, command: str, mcp_id: str, payload: dict[str, Any], outcome: str) -> None:
        """Tool calls and reconnects go to the access audit (listing tools does not)."""
        if command == "call_tool":
            action, target = access.TOOL_CALL, f"{mcp_id}/{payload.get('tool')}"
        elif command == "reconnect":
            action, target = access.RECONNECT, f"mcp:{mcp_id}"
        else:
            return
        # Shielded: a client that closes its socket right after the answer must not cancel
        # the audit of what it just did.
        await asyncio.shield(
            access.arecord(
                self.user, action, target, outcome=outcome, details={"via": "ws"}, request=self.scope
            )
        )

    async def mc_events(self, message: EventsMessage) -> None:
        """A committed batch's events for one channel (one channel-layer message per batch)."""
        subscription = self.subscriptions.get(message["channel"])
        if subscription is None:
            return
        seq = message.get("seq")
        if seq is not None and seq <= subscription.sent_seq:
            return  # already sent by the resume's replay
        await self._forward(subscription, message)

    async def _forward(self, subscription: Subscription, message: EventsMessage) -> None:
        at = live.message_position(message)
        allowed = None if self.sees_all else self._allowed(message.get("teams"))
        if allowed is not None:
            if not any(allowed):
                return
            if all(allowed):
                allowed = None
        meta = message.get("meta")
        if allowed is not None:
            events = [e for e, ok in zip(message["events"], allowed, strict=True) if ok]
            meta = [m for m, ok in zip(meta, allowed, strict=True) if ok] if meta is not None else None
            message = {**message, "events": events, "meta": meta}  # type: ignore[typeddict-item]
            message.pop("frame", None)  # that frame is everyone's; this one is this user's
        if meta is None or not (subscription.log_filter or subscription.history_ids):
            text = message.get("frame")
            if text is None:
                text = message["frame"] = events_frame(message["channel"], message["events"], at)
            await self.send(text_data=text)
            return
        log_filter = subscription.log_filter or LogFilter()
        skip = subscription.history_ids if time.monotonic() < subscription.history_until else set()
        if not skip:
            subscription.history_ids = set()
        events = [
            encoded
            for encoded, m in zip(message["events"], meta, strict=True)
            if m[0] not in skip and log_filter.matches(m)
        ]
        if events:
            await self.send(text_data=events_frame(message["channel"], events, at))

    def _allowed(self, teams: list[list[int] | None] | None) -> list[bool] | None:
        """Per event, whether this user's teams may see it (None: no teams said, all may)."""
        if teams is None:
            return None
        mine = self.team_set
        return [t is None or not mine.isdisjoint(t) for t in teams]


def _key_of(channel: str) -> str | None:
    return parse_channel(channel)[1]
