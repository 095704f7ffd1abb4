"""The production channel layer: channels_redis pub/sub, plus one batched publish.

An ingest batch touching many threads has one message per channel (`logs:*`,
`logs:T-1`, `logs:T-2`, ...). `group_send` would pay one Redis round trip each;
`group_send_many` sends them all in one pipeline, still one message per channel.
It relies on the loop layer's shards (channels_redis 4.3, pinned in requirements).

A group message reaches a process once and is queued, as the same bytes object, to
each local subscriber; `deserialize` decodes it once for all of them. Consumers treat
messages as read-only.

Live messages (`mc.events`) are sequenced (missioncontrol.history): a Lua script takes
each message's channel's next number, keeps the message in the channel's capped
history list and publishes it, atomically, so every process sees numbers in order; one
script call carries all the live messages of a publish. On
the wire such a message is `#seq <epoch> <seq>|` followed by the serialized message;
`deserialize` puts epoch and seq back into it. (A serialized message is a msgpack map,
whose first byte is never `#`.)
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError

from missioncontrol.history import Position, Replay, new_epoch, plan_replay

logger = logging.getLogger(__name__)
_HEADER = b"#seq "
_AFTER_EVERYTHING = 1 << 53  # a seq past any channel's: asks for the position alone

# KEYS: epoch, seq, history of each message in turn. ARGV: history cap, key TTL (s),
# then for each message: a new epoch (used if the channel has none), the serialized
# message, the pub/sub channel. Returns the number of messages published.
_PUBLISH = """
local cap, ttl = -tonumber(ARGV[1]), ARGV[2]
local n = #KEYS / 3
for m = 0, n - 1 do
  local k, a = m * 3, 2 + m * 3
  local epoch = redis.call('GET', KEYS[k + 1])
  if not epoch then epoch = ARGV[a + 1]; redis.call('SET', KEYS[k + 1], epoch) end
  local seq = redis.call('INCR', KEYS[k + 2])
  local framed = '#seq ' .. epoch .. ' ' .. seq .. '|' .. ARGV[a + 2]
  redis.call('RPUSH', KEYS[k + 3], framed)
  redis.call('LTRIM', KEYS[k + 3], cap, -1)
  for i = 1, 3 do redis.call('EXPIRE', KEYS[k + i], ttl) end
  redis.call('PUBLISH', ARGV[a + 3], framed)
end
return n
"""

# KEYS: epoch, seq, history. ARGV: a new epoch, the client's seq, key TTL (s).
# Returns {epoch, seq, newest messages after the client's seq (at most what is kept)}.
_REPLAY = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch, 'EX', ARGV[3])
  redis.call('DEL', KEYS[2], KEYS[3])
end
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local missed = seq - tonumber(ARGV[2])
local items = {}
if missed > 0 then items = redis.call('LRANGE', KEYS[3], -missed, -1) end
return {epoch, seq, items}
"""


async def _once_more(operation: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    try:
        return await operation(*args)
    except (RedisConnectionError, ConnectionError, OSError) as exc:
        logger.warning("channel layer: %s failed (%s); retrying on a new connection", operation.__name__, exc)
        return await operation(*args)


class PubSubChannelLayer(RedisPubSubChannelLayer):
    _DECODED_KEPT = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # id(bytes) -> (bytes, message); the bytes are kept so their id is not reused.
        self._decoded: dict[int, tuple[bytes, Any]] = {}

    def deserialize(self, message: bytes) -> Any:
        hit = self._decoded.get(id(message))
        if hit is not None and hit[0] is message:
            return hit[1]
        decoded = self._decode(message)
        if len(self._decoded) >= self._DECODED_KEPT:
            self._decoded.pop(next(iter(self._decoded)))
        self._decoded[id(message)] = (message, decoded)
        return decoded

    # Subscribing goes through each shard's one pub/sub connection. After a Redis
    # restart the first command on it fails and reconnects it (redis-py resubscribes
    # the channels it had); the second succeeds. Without the retry the socket that
    # happened to come first would fail to connect or subscribe.
    async def new_channel(self, prefix: str = "specific.") -> str:
        return await _once_more(self._get_layer().new_channel, prefix)

    async def group_add(self, group: str, channel: str) -> None:
        await _once_more(self._get_layer().group_add, group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await _once_more(self._get_layer().group_discard, group, channel)

    def _decode(self, message: bytes) -> Any:
        if not message.startswith(_HEADER):
            return super().deserialize(message)
        header, _, body = message.partition(b"|")
        _, epoch, seq = header.split(b" ")
        decoded = super().deserialize(body)
        decoded["epoch"], decoded["seq"] = epoch.decode(), int(seq)
        return decoded

    def _history_keys(self, group: str) -> list[str]:
        prefix = f"{self._get_layer().prefix}:history:{group}"
        return [f"{prefix}:epoch", f"{prefix}:seq", f"{prefix}:messages"]

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self.group_send_many([(group, message)])

    async def group_send_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish every message in one round trip per shard; live events numbered and kept.

        The live messages of a shard are one script call (a batch touching 50 threads
        used to be 50 calls, whose client-side cost was most of the publish).
        """
        layer = self._get_layer()
        by_shard: dict[Any, list[tuple[str, str, bytes]]] = defaultdict(list)
        for group, message in messages:
            channel = layer._get_group_channel_name(group)
            by_shard[layer._get_shard(channel)].append((group, channel, self.serialize(message)))
        cap, ttl = settings.WS_RESUME_HISTORY, settings.WS_RESUME_SECONDS
        for shard, items in by_shard.items():
            async with shard._lock:
                shard._ensure_redis()
                script = shard._redis.register_script(_PUBLISH)
                keys: list[str] = []
                args: list[Any] = [cap, ttl]
                async with shard._redis.pipeline(transaction=False) as pipe:
                    for group, channel, data in items:
                        if data and cap > 0 and self._is_live(group):
                            keys += self._history_keys(group)
                            args += [new_epoch(), data, channel]
                        else:
                            pipe.publish(channel, data)
                    if keys:
                        await script(keys, args, pipe)
                    await pipe.execute()

    @staticmethod
    def _is_live(group: str) -> bool:
        return group.startswith("mc.")  # the contract's channels (live.group_for)

    async def replay(self, group: str, epoch: Any, seq: int) -> Replay:
        """What a client at (epoch, seq) on `group` missed (missioncontrol.history).

        Read-only, so safe to retry: after a Redis restart the pooled connection it
        takes first is dead, and the retry gets a new one (a resume must be answered
        with its replay or a resync, never a closed socket)."""
        return await _once_more(self._replay, group, epoch, seq)

    async def _replay(self, group: str, epoch: Any, seq: int) -> Replay:
        layer = self._get_layer()
        shard = layer._get_shard(layer._get_group_channel_name(group))
        async with shard._lock:
            shard._ensure_redis()
            script = shard._redis.register_script(_REPLAY)
            raw_epoch, current, items = await script(
                self._history_keys(group), [new_epoch(), seq, settings.WS_RESUME_SECONDS]
            )
        position = Position(raw_epoch.decode() if isinstance(raw_epoch, bytes) else raw_epoch, int(current))
        return plan_replay(position, epoch, seq, [self._decode(item) for item in items])

    async def position(self, group: str) -> Position:
        return (await self.replay(group, None, _AFTER_EVERYTHING)).position

    async def discard_channel(self, channel: str) -> None:
        """Stop listening on a channel made by `new_channel` (a finished RPC's reply channel)."""
        layer = self._get_layer()
        if layer.channels.pop(channel, None) is not None:
            await layer._get_shard(channel).unsubscribe(channel)
