"""The production channel layer: channels_redis pub/sub, plus one batched publish.

An ingest batch touching many threads has one message per channel (`logs:*`,
`logs:T-1`, `logs:T-2`, ...). `group_send` would pay one Redis round trip each;
`group_send_many` sends them all in one pipeline, still one message per channel.
It relies on the loop layer's shards (channels_redis 4.3, pinned in requirements).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer


class PubSubChannelLayer(RedisPubSubChannelLayer):
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
