"""The client: a bounded buffer of events and one background thread that sends them in batches.

Delivery is at least once and storage exactly once: every event gets its id when it is
made, and a batch that failed (connection error, timeout, 429 or 5xx) is sent again
with the same ids, which Mission Control stores once and answers as duplicates.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from missioncontrol_sdk.threads import ThreadContext

logger = logging.getLogger("missioncontrol_sdk")
Overflow = Literal["drop_oldest", "block"]
# Posts one JSON batch body, answers (status, headers, body): HTTP by default; another
# transport for in-process use (Mission Control's own demo seeding) or tests.
Transport = Callable[[bytes], tuple[int, Mapping[str, str], bytes]]
INGEST_PATH = "/api/ingest/events"
_RETRYABLE = {408, 429, 500, 502, 503, 504}


def now() -> str:
    return datetime.now(UTC).isoformat()


def new_id(prefix: str = "ev") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@dataclass
class Stats:
    """What became of the events handed to the client so far."""

    sent: int = 0  # events in batches the server answered
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0  # refused by the server (reported per event), or in a batch it refused
    dropped: int = 0  # pushed out of a full buffer, or undeliverable after every retry
    retries: int = 0  # batch attempts repeated after a retryable failure
    batches: int = 0


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class MissionControl:
    """Sends events to one Mission Control in the background.

    `batch_size` events or `flush_interval` seconds, whichever comes first, make a
    batch. The buffer holds at most `max_buffer` events: when full, `overflow`
    ="drop_oldest" drops the oldest (counted in `stats.dropped`), "block" makes the
    producer wait. A failed batch is retried `max_retries` times with exponential
    backoff from `backoff` seconds (or the server's Retry-After), capped at
    `max_backoff`. `close()` (registered with atexit) sends what is buffered.
    `transport` replaces the HTTP POST (see `Transport`).
    """

    def __init__(
        self,
        url: str,
        ingest_key: str,
        *,
        mcp_id: str | None = None,
        batch_size: int = 200,
        flush_interval: float = 0.5,
        max_buffer: int = 10_000,
        overflow: Overflow = "drop_oldest",
        max_retries: int = 8,
        backoff: float = 0.25,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        close_at_exit: bool = True,
        transport: Transport | None = None,
    ) -> None:
        if overflow not in ("drop_oldest", "block"):
            raise ValueError("overflow must be 'drop_oldest' or 'block'")
        self.endpoint = url.rstrip("/") + INGEST_PATH
        self.mcp_id = mcp_id
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.overflow = overflow
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.stats = Stats()
        self._key = ingest_key
        self._transport = transport
        self._buffer: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._flushing = 0
        self._closed = False
        self._sender = threading.Thread(target=self._run, name="missioncontrol-sdk-sender", daemon=True)
        self._sender.start()
        if close_at_exit:
            atexit.register(self.close)

    # --- producing ------------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> str:
        """Queue one event (its `id` and `timestamp` are filled in if missing); its id."""
        event.setdefault("id", new_id())
        event.setdefault("timestamp", now())
        with self._cond:
            if self._closed:
                raise RuntimeError("this MissionControl client is closed")
            while len(self._buffer) >= self.max_buffer:
                if self.overflow == "drop_oldest":
                    self._buffer.popleft()
                    self.stats.dropped += 1
                else:
                    self._cond.wait()
            self._buffer.append(event)
            # The first event starts the sender's linger; a full batch ends it.
            if len(self._buffer) == 1 or len(self._buffer) >= self.batch_size:
                self._cond.notify_all()
        return str(event["id"])

    def emit(self, type_: str, **fields: Any) -> str:
        return self.send({"type": type_, **fields})

    def thread(
        self,
        user_input: str = "",
        *,
        thread_id: str | None = None,
        parent_id: str | None = None,
        mcp_id: str | None = None,
        execution_context: dict[str, Any] | None = None,
    ) -> ThreadContext:
        """A thread: `with mc.thread(user_input=...) as t:` starts it and ends it."""
        from missioncontrol_sdk.threads import ThreadContext

        return ThreadContext(
            self,
            user_input=user_input,
            thread_id=thread_id,
            parent_id=parent_id,
            mcp_id=mcp_id or self.mcp_id,
            execution_context=execution_context,
        )

    def log(
        self,
        level: str,
        message: str,
        *,
        service: str,
        thread_id: str | None = None,
        context: dict[str, Any] | None = None,
        exception: str | None = None,
        timestamp: str | None = None,
    ) -> str:
        event: dict[str, Any] = {
            "type": "log",
            "level": level,
            "service": service,
            "thread_id": thread_id,
            "mcp_id": self.mcp_id,
            "message": message,
            "context": context or {},
            "exception": exception,
        }
        if timestamp:
            event["timestamp"] = timestamp
        return self.send(event)

    # --- flushing -------------------------------------------------------------------

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._buffer) + self._in_flight

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Send everything buffered now; True once all of it was answered (or given up)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._buffer or self._in_flight:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, then stop the sender; later events are refused. Idempotent."""
        if self._closed:
            return True
        done = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._sender.join(timeout=5)
        atexit.unregister(self.close)
        return done

    def __enter__(self) -> MissionControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the sender thread ----------------------------------------------------------

    def _next_batch(self) -> list[dict[str, Any]] | None:
        with self._cond:
            while not self._buffer:
                if self._closed:
                    return None
                self._cond.wait()
            # Linger for a fuller batch unless someone is waiting for a flush.
            deadline = time.monotonic() + self.flush_interval
            while len(self._buffer) < self.batch_size and not self._flushing and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
            self._in_flight = len(batch)
            self._cond.notify_all()  # producers blocked on a full buffer
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._deliver(batch)
            except Exception:  # the sender must outlive any surprise
                logger.exception("missioncontrol_sdk: sending a batch failed")
                self.stats.dropped += len(batch)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        body = json.dumps({"events": batch}, default=str).encode()
        for attempt in itertools.count():
            try:
                answer = self._post(body)
            except _Retryable as exc:
                if attempt >= self.max_retries:
                    logger.error(
                        "missioncontrol_sdk: dropping %d events after %d attempts: %s",
                        len(batch),
                        attempt + 1,
                        exc,
                    )
                    self.stats.dropped += len(batch)
                    return
                self.stats.retries += 1
                delay = exc.retry_after if exc.retry_after is not None else self.backoff * 2**attempt
                time.sleep(min(delay, self.max_backoff))
                continue
            self._count(batch, answer)
            return

    def _count(self, batch: list[dict[str, Any]], answer: dict[str, Any] | None) -> None:
        self.stats.batches += 1
        self.stats.sent += len(batch)
        if answer is None:  # the whole batch was refused (401, 413, ...)
            self.stats.rejected += len(batch)
            return
        self.stats.accepted += int(answer.get("accepted", 0))
        self.stats.duplicates += int(answer.get("duplicates", 0))
        self.stats.rejected += int(answer.get("rejected", 0))
        for result in answer.get("results", []):
            if result.get("status") == "rejected":
                logger.warning(
                    "missioncontrol_sdk: event %s rejected: %s: %s",
                    result.get("id"),
                    result.get("field"),
                    result.get("reason"),
                )

    def _post(self, body: bytes) -> dict[str, Any] | None:
        """The server's answer to one batch; None if it refused the batch; _Retryable."""
        try:
            status, headers, content = (self._transport or self._http)(body)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise _Retryable(str(exc)) from exc
        if 200 <= status < 300:
            return json.loads(content)
        text = content.decode(errors="replace")[:500]
        if status in _RETRYABLE:
            retry_after = {k.lower(): v for k, v in headers.items()}.get("retry-after")
            raise _Retryable(f"HTTP {status}: {text}", float(retry_after) if retry_after else None)
        if status == 400:  # every event rejected: the answer still says why, per event
            try:
                return json.loads(content)
            except ValueError:
                pass
        logger.error("missioncontrol_sdk: batch refused, HTTP %d: %s", status, text)
        return None

    def _http(self, body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        request = urllib.request.Request(
            self.endpoint,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
