"""Events produced inside Mission Control, stored through the same ingest pipeline.

The gateway's server logs and the /mcp endpoint's call records are produced on the
event loop, in the middle of work that must not wait for the database. `EventBatcher`
takes them without blocking, and one background flush at a time stores whatever has
gathered (group commit): `linger` seconds after the first pending event, in one ingest
batch, after which the live channels hear about them. What comes while a batch is
stored waits for the next linger: under a steady stream a store costs one batch per
linger, not one per store's duration.

Where a batch is stored:
- by default in an executor thread of this process;
- with `isolated=True`, in a child process (`StoreProcess`): the ORM work of ingest
  (about 2 ms of CPU per recorded MCP call on SQLite) then neither holds this
  process's GIL nor delays its event loop, which answers the next call meanwhile.
  The child sends the batch's outbox back and it is published from here, so the live
  channels work the same, in-memory channel layer included.

Events may be queued built (`add`) or as a builder (`add_later`), called when their
batch is formed: the /mcp recorder's events of a call are then built in the flush, after
the call was answered, not on its path (about 50 µs of a recorded call's answer, with
the caches as cold as they are between calls).

Events are queued with their `Source` (the /mcp recorder's carries the caller's team);
a batch holds events of one source, the longest run of them at the head of the queue.
Access-audit records of the same work (`add_access`, rows of `audit.access.row`) go
with the next batch and are stored by the same process, in the same transaction.

A batch that fails to store is retried (event ids make the retry idempotent) up to
`max_pending` events; beyond that the oldest are dropped and the loss is logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections, transaction

from audit.access import store_rows
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import IngestResult, ingest
from missioncontrol.jsontext import dumps, loads
from missioncontrol.live import Outbox
from missioncontrol.metrics import LOG_BUFFER_SIZE

logger = logging.getLogger(__name__)

DATABASE_NAMES_ENV = "MC_STORE_DATABASE_NAMES"  # the parent's database names (a test database, say)
MAX_REPLY = 256 * 1024 * 1024
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Django is set up before this module (which imports models) is imported.
CHILD_MAIN = "import django; django.setup(); from missioncontrol.ingest.batcher import serve; serve()"


UNBOUND = Source(mcp_id=None)
# Builds queued events when their batch is formed (EventBatcher.add_later).
Builder = Callable[[], list[dict[str, Any]]]


def _store_with_access(
    events: list[dict[str, Any]], source: Source, access: list[dict[str, Any]]
) -> IngestResult:
    """A batch and its access records in one transaction: one commit, and a retry after a
    failure never stores a record twice."""
    with transaction.atomic():
        result = ingest(events, source)
        if access:
            store_rows(access)
    return result


def _store(events: list[dict[str, Any]], source: Source, access: list[dict[str, Any]]) -> IngestResult:
    close_old_connections()
    try:
        return _store_with_access(events, source, access)
    finally:
        close_old_connections()


def _log_rejected(name: str, result: IngestResult) -> None:
    rejected = [v for v in result.verdicts if v.status == "rejected"]
    for verdict in rejected[:5]:
        logger.error("%s: event %s rejected: %s: %s", name, verdict.id, verdict.field, verdict.reason)


class StoreProcess:
    """A child process (`serve()`) that stores batches.

    One JSON line per batch on its stdin, one JSON line back with the batch's outbox
    (or an error). It holds one database connection for its lifetime. Started on the
    first batch; it ends when its stdin closes (`close()`, or this process exiting),
    after storing what it was given.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._proc: asyncio.subprocess.Process | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def _started(self) -> asyncio.subprocess.Process:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop (tests run one per test): a new child
            self._abandon()
            self._loop, self._lock = loop, asyncio.Lock()
        if self._proc is None or self._proc.returncode is not None:
            names = {alias: str(connections[alias].settings_dict["NAME"]) for alias in connections}
            path = os.environ.get("PYTHONPATH")
            env = {
                **os.environ,
                "PYTHONPATH": f"{PROJECT_ROOT}{os.pathsep}{path}" if path else str(PROJECT_ROOT),
                "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE")
                or settings.SETTINGS_MODULE
                or "missioncontrol.settings",
                DATABASE_NAMES_ENV: dumps(names),
            }
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                CHILD_MAIN,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                limit=MAX_REPLY,
            )
        return self._proc

    async def store(
        self, events: list[dict[str, Any]], source: Source, access: list[dict[str, Any]] | None = None
    ) -> Outbox:
        """Store one batch (and access-audit rows) in the child; its outbox, to send from here."""
        proc = await self._started()
        assert self._lock is not None and proc.stdin is not None and proc.stdout is not None
        line = {"mcp_id": source.mcp_id, "team_id": source.team_id, "events": events, "access": access or []}
        async with self._lock:
            proc.stdin.write(dumps(line).encode() + b"\n")
            await proc.stdin.drain()
            line = await proc.stdout.readline()
        if not line:
            self._proc = None
            raise RuntimeError(f"the store process exited ({await proc.wait()})")
        reply = loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        outbox = Outbox()
        outbox.events = reply["events"]
        outbox.meta = {channel: [tuple(m) for m in metas] for channel, metas in reply["meta"].items()}
        outbox.teams = reply["teams"]
        return outbox

    async def close(self) -> None:
        """Let the child finish and exit."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None or self._loop is not asyncio.get_running_loop():
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def _abandon(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
        self._proc = None


class EventBatcher:
    def __init__(
        self,
        name: str,
        *,
        linger: float = 0.05,
        max_batch: int = 1000,
        max_pending: int = 100_000,
        retry_seconds: float = 1.0,
        isolated: bool = False,
    ) -> None:
        self.name = name
        self.linger, self.max_batch, self.max_pending = linger, max_batch, max_pending
        self.retry_seconds = retry_seconds
        self._pending: list[tuple[Source, dict[str, Any] | Builder]] = []
        self._builders = 0  # entries of _pending still to build
        self._access: list[dict[str, Any]] = []
        self._stored = 0  # events and access records stored so far
        self._task: asyncio.Task[None] | None = None
        self._storing: asyncio.Task[bool] | None = None
        self._store = sync_to_async(_store, thread_sensitive=False)
        self.process = StoreProcess(name) if isolated else None
        self._gauge = LOG_BUFFER_SIZE.labels(name)  # set on every add: looked up once

    async def warm(self) -> None:
        """Start the store process now (isolated batchers), not on the first batch: its
        Django start-up takes seconds, and a short stdio session that stores only when its
        host closes it would otherwise store after the host stopped waiting for it."""
        if self.process is not None:
            await self.process._started()

    def add(self, *events: dict[str, Any], source: Source = UNBOUND) -> None:
        """Queue events (ingest's JSON shape), pushed by `source`, to be stored soon. Never waits."""
        self._pending.extend((source, event) for event in events)
        self._queued()

    def add_later(self, build: Builder, source: Source = UNBOUND) -> None:
        """Queue the events `build()` returns, called when their batch is formed, after the
        events queued before them are built. Never waits; `build` should not either."""
        self._pending.append((source, build))
        self._builders += 1
        self._queued()

    def _queued(self) -> None:
        self._bound(self._pending, "event(s)")
        self._gauge.set(len(self._pending))
        self._schedule()

    def _build(self) -> None:
        """Replace every builder in the queue by the events it builds, in queue order."""
        if not self._builders:
            return
        built: list[tuple[Source, dict[str, Any] | Builder]] = []
        for source, item in self._pending:
            if not callable(item):
                built.append((source, item))
                continue
            try:
                built.extend((source, event) for event in item())
            except Exception:  # a bug in one builder must not stop the others' storing
                logger.exception("%s: building queued events failed; they are dropped", self.name)
        self._pending, self._builders = built, 0
        self._gauge.set(len(self._pending))

    def add_access(self, *rows: dict[str, Any]) -> None:
        """Queue access-audit records (`audit.access.row`) to be stored soon. Never waits."""
        self._access.extend(rows)
        self._bound(self._access, "access record(s)")
        self._schedule()

    def _bound(self, queue: list[Any], what: str) -> None:
        """Drop the oldest of `queue` past max_pending, and say so."""
        overflow = len(queue) - self.max_pending
        if overflow > 0:
            del queue[:overflow]
            logger.error("%s: %d %s dropped, the database is not keeping up", self.name, overflow, what)

    def _schedule(self) -> None:
        self._forget_other_loops()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _forget_other_loops(self) -> None:
        """Tasks of a loop that is gone (tests run one loop per test) will never finish:
        what they left pending is stored from this loop instead."""
        loop = asyncio.get_running_loop()
        if self._task is not None and self._task.get_loop() is not loop:
            self._task = None
        if self._storing is not None and self._storing.get_loop() is not loop:
            self._storing = None

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._access)

    async def _run(self) -> None:
        # One store per `linger` (more when a linger gathered more than a batch): what
        # comes while a batch is stored waits for the next linger, so a steady stream of
        # calls makes batches of a linger's worth, not of one store's duration, and the
        # store's cost per call stays low however busy the calls are.
        while self.pending:
            await asyncio.sleep(self.linger)
            self._build()
            goal = self._stored + self.pending
            while self._stored < goal and self.pending:
                if not await self._flush_once():
                    await asyncio.sleep(self.retry_seconds)

    async def _flush_once(self) -> bool:
        # The store runs as its own task, so cancelling the flush loop (flush()) never
        # interrupts it halfway: a reply from the store process left unread would
        # answer the next batch.
        if self._storing is None or self._storing.done():
            self._storing = asyncio.get_running_loop().create_task(self._store_next())
        return await asyncio.shield(self._storing)

    def _next_batch(self) -> tuple[Source, list[dict[str, Any]]]:
        """The longest run of events of one source at the head of the queue, up to max_batch."""
        self._build()
        if not self._pending:
            return UNBOUND, []
        source = self._pending[0][0]
        batch: list[dict[str, Any]] = []
        for event_source, event in self._pending[: self.max_batch]:
            if event_source != source:
                break
            assert not callable(event)  # built just above
            batch.append(event)
        return source, batch

    async def _store_next(self) -> bool:
        source, batch = self._next_batch()
        access = self._access[: self.max_batch]
        try:
            if self.process is not None:
                outbox = await self.process.store(batch, source, access)
            else:
                result = await self._store(batch, source, access)
                _log_rejected(self.name, result)
                outbox = result.outbox
        except Exception:
            logger.exception(
                "%s: storing %d event(s), %d access record(s) failed; will retry",
                self.name,
                len(batch),
                len(access),
            )
            return False
        del self._pending[: len(batch)]
        del self._access[: len(access)]
        self._stored += len(batch) + len(access)
        self._gauge.set(len(self._pending))
        await outbox.send()
        return True

    async def flush(self) -> None:
        """Store everything pending now (on shutdown, and in tests)."""
        self._forget_other_loops()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._storing is not None and not self._storing.done():  # a store in progress finishes first
            await asyncio.gather(self._storing, return_exceptions=True)
        while self.pending:
            if not await self._flush_once():
                return

    async def close(self) -> None:
        """Flush, then stop the store process (if any)."""
        await self.flush()
        if self.process is not None:
            await self.process.close()


def serve() -> None:
    """The store process (Django set up): batches in on stdin, outboxes out on stdout."""
    wire = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints must not corrupt the replies
    # Ended by its stdin closing, after the batch at hand: a Ctrl-C or SIGTERM to the
    # whole process group must not lose it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A worker, not a site: no query log (DEBUG's cursor wrapper formats and keeps every
    # statement, a fifth of this process's CPU on the embedded default).
    settings.DEBUG = False
    names = loads(os.environ.get(DATABASE_NAMES_ENV) or "{}")
    for alias, name in names.items():
        connections[alias].settings_dict["NAME"] = name
    for line in sys.stdin.buffer:
        try:
            batch = loads(line)
            source = Source(mcp_id=batch["mcp_id"], team_id=batch["team_id"])
            result = _store_with_access(batch["events"], source, batch.get("access") or [])
        except Exception as exc:
            logger.exception("store process: a batch failed")
            connections.close_all()  # a broken connection is reopened for the retry
            reply: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"}
        else:
            _log_rejected("store process", result)
            reply = {"events": result.outbox.events, "meta": result.outbox.meta, "teams": result.outbox.teams}
        wire.write(dumps(reply).encode() + b"\n")
        wire.flush()
    connections.close_all()
