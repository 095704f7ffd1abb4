"""The live pipeline's vocabulary: channel names, their channel-layer groups, frames.

Group names are built here and nowhere else. Events are JSON-encoded once per batch
(not once per subscriber) and travel as text; a consumer assembles frames by joining
them, so fan-out to many browsers costs no re-encoding.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict

from channels.layers import InMemoryChannelLayer, get_channel_layer

from missioncontrol import history
from missioncontrol.history import Position, Replay
from missioncontrol.jsontext import dumps
from missioncontrol.metrics import MESSAGE_THROUGHPUT

logger = logging.getLogger(__name__)

# Channel kinds of the contract: global, thread:{id}, mcp:{id}, logs:{thread_id},
# logs:*, permission:{thread_id}.
CHANNEL_KINDS = ("global", "thread", "mcp", "logs", "permission")
_SAFE = re.compile(r"^[A-Za-z0-9_.\-]{1,60}$")


def parse_channel(channel: Any) -> tuple[str, str | None]:
    """(kind, key) of a contract channel name; ValueError with the reason otherwise."""
    if not isinstance(channel, str) or not channel:
        raise ValueError("channel is required, e.g. 'global', 'thread:T-1' or 'logs:*'")
    if channel == "global":
        return "global", None
    kind, sep, key = channel.partition(":")
    if not sep or kind not in CHANNEL_KINDS[1:] or not key or len(key) > 200:
        raise ValueError(
            f"unknown channel {channel!r}; expected global, thread:{{id}}, mcp:{{id}}, "
            "logs:{thread_id}, logs:* or permission:{thread_id}"
        )
    return kind, key


def group_for(channel: str) -> str:
    """The channel-layer group of a contract channel (groups allow only [A-Za-z0-9_.-])."""
    kind, key = parse_channel(channel)
    if key is None:
        return "mc.global"
    if key == "*":
        return f"mc.{kind}.all"
    if _SAFE.match(key):
        return f"mc.{kind}.k.{key}"
    return f"mc.{kind}.h.{hashlib.sha1(key.encode()).hexdigest()}"


class ClientFrame(TypedDict):
    type: Literal["subscribe", "unsubscribe", "command", "query", "ping"]
    channel: NotRequired[str]
    payload: NotRequired[dict[str, Any]]
    request_id: NotRequired[str]


class ServerFrame(TypedDict):
    type: Literal["event", "response", "error", "resync"]
    channel: str
    payload: dict[str, Any]
    timestamp: str
    request_id: NotRequired[str]
    # Live event frames and snapshots: the channel's position (missioncontrol.history).
    epoch: NotRequired[str]
    seq: NotRequired[int]


# Filter fields of a log travelling with its encoded text: id, level, service,
# thread_id, mcp_id, message. Only logs channels carry them.
LogMeta = tuple[str, str, str, str | None, str, str]


Teams = list[int]


class EventsMessage(TypedDict):
    """Channel-layer message: one batch of encoded events for one channel.

    The first unfiltered subscriber in a process assembles the event frame and leaves
    it in `frame` (the layer hands every local subscriber the same decoded message),
    so the rest send it as is; channels nobody listens to cost no assembly at all.
    """

    type: Literal["mc.events"]
    channel: str
    events: list[str]
    meta: list[LogMeta] | None
    # Per event, the teams whose members may see it: null for everyone (a server's
    # status), [] for admins only (a row of no team). A consumer whose user does not
    # see every team sends only the events its teams may see.
    teams: list[Teams | None]
    frame: NotRequired[str]
    # Set when published (missioncontrol.history): the channel's epoch and this message's number.
    epoch: NotRequired[str]
    seq: NotRequired[int]


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def encode(payload: Any) -> str:
    return dumps(payload)


def frame(
    kind: Literal["event", "response", "error", "resync"],
    channel: str,
    payload: dict[str, Any],
    request_id: str | None = None,
) -> str:
    out: ServerFrame = {"type": kind, "channel": channel, "payload": payload, "timestamp": now_iso()}
    if request_id is not None:
        out["request_id"] = request_id
    return encode(dict(out))


def events_frame(channel: str, encoded_events: list[str], position: Position | None = None) -> str:
    """An event frame whose payload is {"events": [...]}, assembled from encoded events.

    With a position (a live message's, or a snapshot's), the frame carries `epoch` and
    `seq`: what the client sends back to resume.
    """
    tail = "" if position is None else ',"epoch":' + encode(position.epoch) + ',"seq":' + str(position.seq)
    return (
        '{"type":"event","channel":'
        + encode(channel)
        + ',"payload":{"events":['
        + ",".join(encoded_events)
        + ']},"timestamp":"'
        + now_iso()
        + '"'
        + tail
        + "}"
    )


def message_position(message: EventsMessage) -> Position | None:
    epoch, seq = message.get("epoch"), message.get("seq")
    return None if epoch is None or seq is None else Position(epoch, seq)


def _sequenced_layer(layer: Any) -> bool:
    return hasattr(layer, "replay")


async def replay(channel: str, epoch: Any, seq: int) -> Replay:
    """What a client at (epoch, seq) on `channel` missed, or why it must resync."""
    layer = get_channel_layer()
    if _sequenced_layer(layer):
        return await layer.replay(group_for(channel), epoch, seq)  # type: ignore[union-attr]
    return history.memory.replay(group_for(channel), epoch, seq)


async def position(channel: str) -> Position:
    """The channel's epoch and last sequence number now."""
    layer = get_channel_layer()
    if _sequenced_layer(layer):
        return await layer.position(group_for(channel))  # type: ignore[union-attr]
    return history.memory.position(group_for(channel))


# Called once per sent Outbox with its `global` events (encoded), after they went out:
# how automations' event and alert triggers see the stream (automations.triggers).
PublishListener = Callable[[list[str]], Awaitable[None]]
_listeners: list[PublishListener] = []


def on_publish(listener: PublishListener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


class Outbox:
    """Events of one committed batch, grouped by channel, sent with one group_send each."""

    def __init__(self) -> None:
        self.events: dict[str, list[str]] = {}
        self.meta: dict[str, list[LogMeta]] = {}
        self.teams: dict[str, list[Teams | None]] = {}

    def add(
        self, channel: str, encoded: str, meta: LogMeta | None = None, teams: Teams | None = None
    ) -> None:
        """Queue `encoded` for `channel`, for `teams` to see (None: everyone; []: admins only)."""
        self.events.setdefault(channel, []).append(encoded)
        self.teams.setdefault(channel, []).append(teams)
        if meta is not None:
            self.meta.setdefault(channel, []).append(meta)

    def __len__(self) -> int:
        return sum(len(v) for v in self.events.values())

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for channel, events in self.events.items():
            message: EventsMessage = {
                "type": "mc.events",
                "channel": channel,
                "events": events,
                "meta": self.meta.get(channel),
                "teams": self.teams.get(channel, []),
            }
            out.append((group_for(channel), dict(message)))
        return out

    async def send(self) -> None:
        """Publish the committed events; never raises (what was stored stays readable).

        A connection to Redis broken since the last publish (Redis restarted) fails the
        first attempt and is reopened by the second.
        """
        await self._send()
        global_events = self.events.get("global")
        for listener in _listeners if global_events else ():
            try:
                await listener(global_events)
            except Exception:  # a listener's failure must not fail the publication
                logger.exception("live: a publish listener failed")

    async def _send(self) -> None:
        layer = get_channel_layer()
        if layer is None or not self.events:
            return
        messages = self.messages()
        for attempt in (1, 2):
            try:
                await self._publish(layer, messages)
                break
            except Exception as exc:  # a broken layer must not turn a stored batch into an error
                if attempt == 2:
                    logger.error("live: %d channel message(s) not published: %s", len(messages), exc)
                    return
        for channel, events in self.events.items():
            MESSAGE_THROUGHPUT.labels(channel.partition(":")[0]).inc(len(events))

    @staticmethod
    async def _publish(layer: Any, messages: list[tuple[str, dict[str, Any]]]) -> None:
        send_many = getattr(layer, "group_send_many", None)
        if send_many is not None:  # the Redis layer: every channel in one round trip, numbered there
            await send_many(messages)
            return
        # The in-memory layer's members, by group: all of them are in this process.
        groups = layer.groups if isinstance(layer, InMemoryChannelLayer) else None
        for group, message in messages:
            recorded = history.memory.record(group, message)  # kept for resuming clients
            if groups is not None and not groups.get(group):
                continue  # no socket of this process listens: nothing to deliver
            await layer.group_send(group, recorded)
