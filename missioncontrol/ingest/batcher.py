"""Events produced inside Mission Control, stored through the same ingest pipeline.

The gateway's server logs and the /mcp endpoint's call records are produced on the
event loop, in the middle of work that must not wait for the database. `EventBatcher`
takes them without blocking, and one background flush at a time stores whatever has
gathered (group commit): at most `linger` seconds after the first pending event, in
one ingest batch, after which the live channels hear about them.

A batch that fails to store is retried (event ids make the retry idempotent) up to
`max_pending` events; beyond that the oldest are dropped and the loss is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import IngestResult, ingest

logger = logging.getLogger(__name__)


def _store(events: list[dict[str, Any]], source: Source) -> IngestResult:
    close_old_connections()
    try:
        return ingest(events, source)
    finally:
        close_old_connections()


class EventBatcher:
    def __init__(
        self,
        name: str,
        *,
        linger: float = 0.05,
        max_batch: int = 1000,
        max_pending: int = 100_000,
        retry_seconds: float = 1.0,
    ) -> None:
        self.name = name
        self.linger, self.max_batch, self.max_pending = linger, max_batch, max_pending
        self.retry_seconds = retry_seconds
        self._pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._store = sync_to_async(_store, thread_sensitive=False)

    def add(self, *events: dict[str, Any]) -> None:
        """Queue events (ingest's JSON shape) to be stored soon. Never waits."""
        self._pending.extend(events)
        overflow = len(self._pending) - self.max_pending
        if overflow > 0:
            del self._pending[:overflow]
            logger.error("%s: %d event(s) dropped, the database is not keeping up", self.name, overflow)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _run(self) -> None:
        await asyncio.sleep(self.linger)
        while self._pending:
            if not await self._flush_once():
                await asyncio.sleep(self.retry_seconds)

    async def _flush_once(self) -> bool:
        batch = self._pending[: self.max_batch]
        try:
            result = await self._store(batch, Source(mcp_id=None))
        except Exception:
            logger.exception("%s: storing %d event(s) failed; will retry", self.name, len(batch))
            return False
        del self._pending[: len(batch)]
        rejected = [v for v in result.verdicts if v.status == "rejected"]
        for verdict in rejected[:5]:
            logger.error(
                "%s: event %s rejected: %s: %s", self.name, verdict.id, verdict.field, verdict.reason
            )
        await result.outbox.send()
        return True

    async def flush(self) -> None:
        """Store everything pending now (on shutdown, and in tests)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        while self._pending:
            if not await self._flush_once():
                return
