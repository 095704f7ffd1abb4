"""Sequenced live channels: what lets a reconnecting client receive exactly what it missed.

Every channel-layer message published on a channel (one per channel per committed batch,
see live.Outbox) gets the next sequence number of that channel and the channel's
epoch, and is kept in a bounded per-channel history. A client that reconnects sends
the (epoch, seq) of the last event frame it saw per channel; it receives the messages
after it, or a `resync` frame when the history cannot answer:

- the epoch differs: the history was lost (a Redis restart without persistence, an
  expired idle channel, or a restarted process on the in-memory layer), sequence
  numbers started again;
- the gap is older than the history keeps (`WS_RESUME_HISTORY` messages per channel).

Two stores, one behaviour:
- Redis (`layers.PubSubChannelLayer`): numbering, history and PUBLISH happen in one Lua
  script per message, so the order subscribers see is the order of the numbers, across
  every web process. Keys expire `WS_RESUME_SECONDS` after a channel's last message.
- In memory (`MemoryHistory`), for the in-memory channel layer of the embedded default:
  the one process is the only publisher; channels are evicted least recently used past
  `MAX_MEMORY_CHANNELS`, and an evicted channel comes back with a new epoch.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from django.conf import settings

MAX_MEMORY_CHANNELS = 10_000


def new_epoch() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class Position:
    """Where a channel's numbering stands: its epoch and the last sequence number used."""

    epoch: str
    seq: int


@dataclass(frozen=True)
class Replay:
    """The answer to a resume: the missed messages in order, or why a resync is needed."""

    position: Position
    messages: list[dict[str, Any]]
    resync: str | None = None


def plan_replay(position: Position, epoch: Any, seq: Any, available: list[dict[str, Any]]) -> Replay:
    """Decide a resume from the channel's position and the newest `available` messages."""
    if epoch != position.epoch:
        return Replay(position, [], "the channel's history was reset (new epoch); start from a snapshot")
    if seq > position.seq:
        return Replay(position, [], "sequence number ahead of the channel; start from a snapshot")
    missed = position.seq - seq
    if missed > len(available):
        return Replay(position, [], f"{missed} message(s) missed, more than the history keeps")
    return Replay(position, available[len(available) - missed :] if missed else [])


class _Channel:
    __slots__ = ("epoch", "seq", "messages")

    def __init__(self) -> None:
        self.epoch = new_epoch()
        self.seq = 0
        self.messages: deque[dict[str, Any]] = deque()


class MemoryHistory:
    """Per-channel numbering and history in this process (the in-memory channel layer)."""

    def __init__(self, cap: int | None = None, max_channels: int = MAX_MEMORY_CHANNELS) -> None:
        self.cap = cap
        self.max_channels = max_channels
        self._channels: OrderedDict[str, _Channel] = OrderedDict()
        self._lock = threading.Lock()

    def _channel(self, group: str) -> _Channel:
        channel = self._channels.get(group)
        if channel is None:
            channel = self._channels[group] = _Channel()
            while len(self._channels) > self.max_channels:
                self._channels.popitem(last=False)
        else:
            self._channels.move_to_end(group)
        return channel

    def record(self, group: str, message: dict[str, Any]) -> dict[str, Any]:
        """Number `message` (in place) and keep it; returns it."""
        with self._lock:
            channel = self._channel(group)
            channel.seq += 1
            message["epoch"], message["seq"] = channel.epoch, channel.seq
            channel.messages.append(message)
            cap = settings.WS_RESUME_HISTORY if self.cap is None else self.cap
            while len(channel.messages) > cap:
                channel.messages.popleft()
        return message

    def position(self, group: str) -> Position:
        with self._lock:
            channel = self._channel(group)
            return Position(channel.epoch, channel.seq)

    def replay(self, group: str, epoch: Any, seq: int) -> Replay:
        with self._lock:
            channel = self._channel(group)
            position = Position(channel.epoch, channel.seq)
            available = list(channel.messages)
        return plan_replay(position, epoch, seq, available)

    def reset(self) -> None:
        """Forget every channel (as a restart would)."""
        with self._lock:
            self._channels.clear()


memory = MemoryHistory()
