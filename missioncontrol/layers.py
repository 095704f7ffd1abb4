"""The production channel layer: channels_redis pub/sub, plus one batched publish.

An ingest batch touching many threads has one message per channel (`logs:*`,
`logs:T-1`, `logs:T-2`, ...). `group_send` would pay one Redis round trip each;
`group_send_many` sends them all in one pipeline, still one message per channel.
It relies on the loop layer's shards (channels_redis 4.3, pinned in requirements).

A group message reaches a process once and is queued, as the same bytes object, to
each local subscriber; `deserialize` decodes it once for all of them. Consumers treat
messages as read-only.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer


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
        decoded = super().deserialize(message)
        if len(self._decoded) >= self._DECODED_KEPT:
            self._decoded.pop(next(iter(self._decoded)))
        self._decoded[id(message)] = (message, decoded)
        return decoded

    async def group_send_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        layer = self._get_layer()
        by_shard: dict[Any, list[tuple[str, bytes]]] = defaultdict(list)
        for group, message in messages:
            channel = layer._get_group_channel_name(group)
            by_shard[layer._get_shard(channel)].append((channel, self.serialize(message)))
        for shard, items in by_shard.items():
            async with shard._lock:
                shard._ensure_redis()
                async with shard._redis.pipeline(transaction=False) as pipe:
                    for channel, data in items:
                        pipe.publish(channel, data)
                    await pipe.execute()

    async def discard_channel(self, channel: str) -> None:
        """Stop listening on a channel made by `new_channel` (a finished RPC's reply channel)."""
        layer = self._get_layer()
        if layer.channels.pop(channel, None) is not None:
            await layer._get_shard(channel).unsubscribe(channel)
