"""Servers' log files tailed into log entries, through the ingest pipeline.

A server's `log_files` ([{"path", "format"}], see mcps/models.py) are read from where
their `LogSource` row says the last read stopped. Each chunk of lines is stored with
`ingest()` and the row's new offset in one transaction, so a restart resumes exactly
there: no line is lost and none is stored twice. Event ids are derived from (server,
path, generation, device:inode, offset): a chunk read again after a crash between the
read and the commit is stored once.

Rotation, checked on every poll:
- rename + create (Python's RotatingFileHandler, logrotate's default): another inode
  at the path. The old file is finished first, from the handle still open on it or
  found again next to the path by its inode (`x.log.1`, after a restart), then the
  new one is read from its start.
- copytruncate: the same inode, smaller than the offset or with other first bytes
  (the fingerprint). The lines written after the last read are in the copy, found
  next to the path by its first bytes and read from the offset; then the truncated
  file is read from its start.

Formats: `jsonl` (one JSON object a line, common field names mapped), `kiwi` (Kiwi
MCP's kiwi-mcp.json: timestamp, level, logger -> service, message, exception, extra
-> context) and `text` (one entry a line; level guessed; indented lines and Python
tracebacks joined to the entry before them, as its exception).

A malformed line (not JSON, or not an object, in a JSON format) is never dropped: it is
stored as an entry whose message is the raw line, level guessed from its text, with
`context["malformed"]` saying why; the source's `malformed` count says how many.
Every entry's `context["mc/source"]` is {"path", "offset"}: where its line is.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from logs.models import LogSource
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from missioncontrol.live import Outbox

logger = logging.getLogger(__name__)

FINGERPRINT_BYTES = 256
MAX_CHUNK = 1 << 20  # bytes read (and stored in one transaction) at a time
MAX_MESSAGE = 10000
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4")
SOURCE_KEY = "mc/source"


# -- splitting bytes into entries ------------------------------------------------------

_TRACEBACK = b"Traceback (most recent call last)"
_CHAINED = (b"During handling of the above exception", b"The above exception was the direct cause")
_EXCEPTION_LINE = re.compile(rb"^[A-Za-z_][\w.]*(?:: .*)?$")


def split_entries(
    data: bytes, fmt: str, *, final: bool, flush_open: bool
) -> tuple[list[tuple[int, bytes]], int]:
    """The entries in `data` as (start offset in data, bytes), and how many bytes they use.

    Only whole lines count, unless `final` (the file will not grow: a last line without
    its newline is an entry too). In `text`, an entry still inside a traceback at the
    end of `data` is held back for the rest of it, unless `flush_open` or `final`.
    """
    end = len(data) if final else data.rfind(b"\n") + 1
    lines: list[tuple[int, bytes]] = []
    start = 0
    while start < end:
        newline = data.find(b"\n", start, end)
        stop = end if newline < 0 else newline + 1
        lines.append((start, data[start:stop].rstrip(b"\r\n")))
        start = stop
    if fmt != LogSource.Format.TEXT:
        return [(o, line) for o, line in lines if line.strip()], end
    return _group_text(lines, end, open_ok=final or flush_open)


def _group_text(
    lines: list[tuple[int, bytes]], end: int, open_ok: bool
) -> tuple[list[tuple[int, bytes]], int]:
    groups: list[tuple[int, list[bytes]]] = []
    in_traceback = after_exception = False
    for offset, line in lines:
        continues = bool(groups) and (
            line.startswith((b" ", b"\t"))
            or line.startswith(_TRACEBACK)
            or (in_traceback and _EXCEPTION_LINE.match(line) is not None)
            or ((in_traceback or after_exception) and not line.strip())
            or (after_exception and line.startswith(_CHAINED))
        )
        if line.startswith(_TRACEBACK) or (after_exception and line.startswith(_CHAINED)):
            in_traceback, after_exception = True, False
        elif in_traceback and not line.startswith((b" ", b"\t")) and _EXCEPTION_LINE.match(line):
            in_traceback, after_exception = False, True  # its last line: "ValueError: boom"
        elif not continues:
            in_traceback = after_exception = False
        if continues:
            groups[-1][1].append(line)
        elif line.strip():
            groups.append((offset, [line]))
    consumed = end
    if groups and in_traceback and not open_ok:
        consumed = groups.pop()[0]  # a traceback still being written: the rest comes later
    entries = [(o, b"\n".join(ls).rstrip()) for o, ls in groups]
    return entries, consumed


# -- mapping a line to a log event ------------------------------------------------------

_LEVEL_NAMES = {
    "TRACE": "DEBUG",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "NOTICE": "INFO",
    "WARN": "WARN",
    "WARNING": "WARN",
    "ERR": "ERROR",
    "ERROR": "ERROR",
    "CRITICAL": "ERROR",
    "FATAL": "ERROR",
    "PANIC": "ERROR",
    "ALERT": "ERROR",
    "EMERGENCY": "ERROR",
}
_LEVEL_WORD = re.compile(
    r"(?<![A-Za-z])(TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|ERR|CRITICAL|FATAL|PANIC)(?![A-Za-z])"
)
_LEVEL_KEY = re.compile(r"\b(?:level|lvl|severity)[=:]\s*\"?([A-Za-z]+)", re.IGNORECASE)
# Python logging's "2026-01-02 03:04:05,678 [LEVEL] name: message" (Kiwi's kiwi-mcp.log) and kin.
_TEXT_TIME = re.compile(r"^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\]?")
_PY_RECORD = re.compile(r"^\S+ \S+ \[([A-Z]+)\] ([\w.\-]+): ")


def level_of(value: Any, default: str = "INFO") -> str:
    """One of DEBUG, INFO, WARN, ERROR for a level name or number (Python's 10..50)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float):
        return "DEBUG" if value < 20 else "INFO" if value < 30 else "WARN" if value < 40 else "ERROR"
    if isinstance(value, str):
        return _LEVEL_NAMES.get(value.strip().upper(), default)
    return default


def guess_level(text: str, default: str = "INFO") -> str:
    """The level a plain-text line names ("[ERROR]", "WARN:", "level=error"), or `default`."""
    head = text[:200]
    match = _LEVEL_KEY.search(head)
    if match is not None and match.group(1).upper() in _LEVEL_NAMES:
        return _LEVEL_NAMES[match.group(1).upper()]
    match = _LEVEL_WORD.search(head)
    return _LEVEL_NAMES[match.group(1)] if match is not None else default


def timestamp_of(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value  # milliseconds since the epoch
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.strip().replace(",", ".", 1))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


_JSON_KEYS = {
    "timestamp": ("timestamp", "time", "ts", "@timestamp", "asctime", "date", "datetime"),
    "level": ("level", "levelname", "severity", "lvl", "log.level"),
    "message": ("message", "msg", "event", "text"),
    "service": ("logger", "service", "name", "logger_name", "component"),
    "exception": ("exception", "exc_info", "stack", "stack_trace", "traceback"),
}


def _first(obj: dict[str, Any], keys: Iterable[str]) -> tuple[str | None, Any]:
    for key in keys:
        if key in obj and obj[key] not in (None, ""):
            return key, obj[key]
    return None, None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


@dataclass
class Mapped:
    event: dict[str, Any]
    malformed: bool = False


def map_line(fmt: str, raw: bytes, mcp_id: str, position: dict[str, Any], event_id: str) -> Mapped:
    """The log event of one entry (a line, or a text entry with its traceback)."""
    text = raw.decode("utf-8", errors="replace")
    base: dict[str, Any] = {"id": event_id, "type": "log", "mcp_id": mcp_id, "service": mcp_id[:100]}
    if fmt == LogSource.Format.TEXT:
        return Mapped({**base, **_from_text(text), "context": {SOURCE_KEY: position}})
    try:
        obj = json.loads(text)
        reason = None if isinstance(obj, dict) else f"a JSON {type(obj).__name__}, not an object"
    except ValueError as exc:
        obj, reason = None, f"not JSON: {exc}"
    if reason is not None or not isinstance(obj, dict):
        event = {
            **base,
            "timestamp": timezone.now().isoformat(),
            "level": guess_level(text),
            "message": text[:MAX_MESSAGE],
            "context": {SOURCE_KEY: position, "malformed": reason},
        }
        return Mapped(event, malformed=True)
    return Mapped(
        {**base, **_from_object(obj, kiwi=fmt == LogSource.Format.KIWI, mcp_id=mcp_id, position=position)}
    )


def _from_object(obj: dict[str, Any], *, kiwi: bool, mcp_id: str, position: dict[str, Any]) -> dict[str, Any]:
    if kiwi:  # kiwi_mcp/utils/logger.py JsonFormatter: exactly these keys
        keys = {k: (k,) for k in ("timestamp", "level", "message", "exception")} | {"service": ("logger",)}
    else:
        keys = _JSON_KEYS
    used: set[str] = set()
    found: dict[str, Any] = {}
    for name, candidates in keys.items():
        key, value = _first(obj, candidates)
        if key is not None:
            used.add(key)
            found[name] = value
    context: dict[str, Any] = {}
    for key in ("context", "extra"):
        value = obj.get(key)
        if isinstance(value, dict):
            context.update(value)
            used.add(key)
        elif key == "extra" and value is not None:
            context["extra"] = value
            used.add(key)
    context.update({k: v for k, v in obj.items() if k not in used and k not in context})
    context[SOURCE_KEY] = position
    thread_id = obj.get("thread_id", context.get("thread_id"))
    message = _text(found["message"]) if "message" in found else json.dumps(obj, default=str)
    exception = found.get("exception")
    return {
        "timestamp": (timestamp_of(found.get("timestamp")) or timezone.now()).isoformat(),
        "level": level_of(found.get("level"), "ERROR" if exception else "INFO"),
        "service": _text(found.get("service") or mcp_id)[:100],
        "message": message[:MAX_MESSAGE] or "(empty message)",
        "exception": _text(exception) if exception else None,
        "thread_id": thread_id if isinstance(thread_id, str) and 0 < len(thread_id) <= 200 else None,
        "context": context,
    }


def _from_text(text: str) -> dict[str, Any]:
    first, _, rest = text.partition("\n")
    match = _TEXT_TIME.match(first)
    stamp = timestamp_of(match.group(1)) if match is not None else None
    record = _PY_RECORD.match(first)
    fields: dict[str, Any] = {
        "timestamp": (stamp or timezone.now()).isoformat(),
        "level": guess_level(first, "ERROR" if _TRACEBACK.decode() in rest else "INFO"),
        "message": first[:MAX_MESSAGE],
        "exception": rest or None,
    }
    if record is not None and record.group(1) in _LEVEL_NAMES:
        fields["service"] = record.group(2)[:100]
    return fields


def event_id(mcp_id: str, path: str, generation: int, file_id: str, offset: int) -> str:
    key = f"{mcp_id}\0{path}\0{generation}\0{file_id}\0{offset}".encode()
    return "file-" + hashlib.sha256(key).hexdigest()[:40]


# -- following one file -----------------------------------------------------------------


def _file_id(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _fingerprint(handle: IO[bytes], length: int) -> tuple[str, int]:
    head = os.pread(handle.fileno(), length, 0)
    return hashlib.sha256(head).hexdigest(), len(head)


class Conflict(Exception):
    """Another tailer moved this source on since we read its row."""


@dataclass
class PollOutcome:
    stored: int = 0
    read: int = 0
    outboxes: list[Outbox] = field(default_factory=list)


class FileTail:
    """One log file of one server, followed across rotations; keeps its file open between polls."""

    def __init__(self, mcp_id: str, path: str, fmt: str) -> None:
        self.mcp_id, self.path, self.format = mcp_id, path, fmt
        self.source: LogSource | None = None
        self._handle: IO[bytes] | None = None
        self._handle_id = ""
        self._held: tuple[str, int, int, int] | None = None  # (file, generation, offset, bytes) held back

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle, self._handle_id = None, ""

    def _load(self) -> LogSource:
        if self.source is None:
            self.source, _ = LogSource.objects.get_or_create(
                mcp_id=self.mcp_id, path=self.path, defaults={"format": self.format}
            )
            if self.source.format != self.format:
                self.source.format = self.format
                LogSource.objects.filter(pk=self.source.pk).update(format=self.format)
        return self.source

    def poll(self) -> PollOutcome:
        out = PollOutcome()
        try:
            self._poll(out)
        except Conflict:
            logger.info("log file %s of %s: moved on by another tailer; reloading", self.path, self.mcp_id)
            self.source = None
            self.close()
        return out

    def _poll(self, out: PollOutcome) -> None:
        src = self._load()
        st = _stat(self.path)
        if not src.file_id:
            if st is None:
                return
            self._switch(src, st, rotated=False)
        if st is not None and _file_id(st) == src.file_id:
            handle = self._open(self.path, src.file_id)
            if handle is None:  # replaced between stat and open: the next poll sees it
                return
            if self._truncated(handle, src):
                copy = self._find(src, by_fingerprint=True)
                if copy is not None:
                    with copy:
                        self._read(src, copy, out, final=True)
                else:
                    logger.warning(
                        "log file %s was truncated; lines after offset %d are lost", self.path, src.offset
                    )
                self._switch(src, st, rotated=True)
            self._read(src, handle, out, final=False)
            return
        # Another file at the path (rotated by rename) or none yet: finish the one we read.
        old = self._handle if self._handle_id == src.file_id else self._find(src, by_fingerprint=False)
        if old is not None:
            self._read(src, old, out, final=st is not None)
            if old is not self._handle:
                old.close()
        elif src.offset:
            logger.warning(
                "log file %s: the rotated file is gone; its lines after %d are lost", self.path, src.offset
            )
        if st is None:
            return
        self.close()
        self._switch(src, st, rotated=True)
        handle = self._open(self.path, src.file_id)
        if handle is not None:
            self._read(src, handle, out, final=False)

    def _open(self, path: str, file_id: str) -> IO[bytes] | None:
        if self._handle is not None and self._handle_id == file_id:
            return self._handle
        try:
            handle = open(path, "rb")  # noqa: SIM115 - kept open across polls
        except FileNotFoundError:
            return None
        if _file_id(os.fstat(handle.fileno())) != file_id:
            handle.close()
            return None
        self.close()
        self._handle, self._handle_id = handle, file_id
        return handle

    def _truncated(self, handle: IO[bytes], src: LogSource) -> bool:
        if os.fstat(handle.fileno()).st_size < src.offset:
            return True
        if src.fingerprint_len:
            return _fingerprint(handle, src.fingerprint_len) != (src.fingerprint, src.fingerprint_len)
        return False

    def _siblings(self) -> list[str]:
        folder, name = os.path.split(self.path)
        try:
            names = os.listdir(folder or ".")
        except OSError:
            return []
        found = [
            os.path.join(folder, n)
            for n in names
            if n != name and n.startswith(name) and not n.endswith(COMPRESSED)
        ]
        return sorted(found, key=lambda p: _stat(p).st_mtime if _stat(p) else 0, reverse=True)

    def _find(self, src: LogSource, *, by_fingerprint: bool) -> IO[bytes] | None:
        """The file read so far, found next to the path: by inode (renamed) or by its
        first bytes (a copy: copytruncate), holding at least `offset` bytes."""
        for path in self._siblings():
            st = _stat(path)
            if st is None or st.st_size < src.offset:
                continue
            if (_file_id(st) == src.file_id) == by_fingerprint:
                continue
            try:
                handle = open(path, "rb")  # noqa: SIM115 - the caller closes it
            except OSError:
                continue
            if not src.fingerprint_len or _fingerprint(handle, src.fingerprint_len) == (
                src.fingerprint,
                src.fingerprint_len,
            ):
                return handle
            handle.close()
        return None

    def _read(self, src: LogSource, handle: IO[bytes], out: PollOutcome, *, final: bool) -> None:
        while True:
            data = os.pread(handle.fileno(), MAX_CHUNK, src.offset)
            if not data:
                self._held = None
                return
            whole = len(data) < MAX_CHUNK
            state = (src.file_id, src.generation, src.offset, len(data))
            entries, used = split_entries(
                data, self.format, final=final and whole, flush_open=state == self._held
            )
            if used == 0 and not whole:  # one line longer than a chunk: stored in pieces
                entries, used = [(0, data)], len(data)
            if used == 0:
                self._held = state
                return
            self._commit(src, handle, entries, used, out)
            if used < len(data) and whole:
                self._held = (src.file_id, src.generation, src.offset, len(data) - used)
                return

    def _commit(
        self, src: LogSource, handle: IO[bytes], entries: list[tuple[int, bytes]], used: int, out: PollOutcome
    ) -> None:
        events, malformed = [], 0
        for offset, raw in entries:
            at = src.offset + offset
            position = {"path": self.path, "offset": at}
            eid = event_id(self.mcp_id, self.path, src.generation, src.file_id, at)
            mapped = map_line(self.format, raw, self.mcp_id, position, eid)
            events.append(mapped.event)
            malformed += mapped.malformed
        fingerprint, fingerprint_len = src.fingerprint, src.fingerprint_len
        if fingerprint_len < FINGERPRINT_BYTES and self._handle is handle:
            fingerprint, fingerprint_len = _fingerprint(handle, FINGERPRINT_BYTES)
        with transaction.atomic():
            result = ingest(events, Source(mcp_id=self.mcp_id, system=True))
            rejected = [v for v in result.verdicts if v.status == "rejected"]
            for verdict in rejected[:5]:
                logger.error(
                    "log file %s: line %s rejected: %s: %s",
                    self.path,
                    verdict.id,
                    verdict.field,
                    verdict.reason,
                )
            changes = {
                "offset": src.offset + used,
                "fingerprint": fingerprint,
                "fingerprint_len": fingerprint_len,
                "last_read_at": timezone.now(),
                "last_error": "",
            }
            self._update(src, changes, entries=len(events), malformed=malformed + len(rejected))
        out.read += len(events)
        out.stored += result.count("accepted")
        out.outboxes.append(result.outbox)
        src.entries += len(events)
        src.malformed += malformed + len(rejected)

    def _switch(self, src: LogSource, st: os.stat_result, *, rotated: bool) -> None:
        """Start reading the file `st` from its beginning (a new generation)."""
        changes = {
            "file_id": _file_id(st),
            "generation": src.generation + 1,
            "offset": 0,
            "fingerprint": "",
            "fingerprint_len": 0,
        }
        with transaction.atomic():
            self._update(src, changes, rotations=int(rotated))
        src.rotations += int(rotated)
        self._held = None

    def _update(self, src: LogSource, changes: dict[str, Any], **counts: int) -> None:
        """Write `changes` if the row is still as we read it (else Conflict); then mirror them."""
        increments = {name: F(name) + n for name, n in counts.items() if n}
        done = LogSource.objects.filter(
            pk=src.pk, file_id=src.file_id, generation=src.generation, offset=src.offset
        ).update(**changes, **increments)
        if not done:
            raise Conflict
        for name, value in changes.items():
            setattr(src, name, value)


# -- every configured file --------------------------------------------------------------


class Tailer:
    """Every enabled server's log files (or one server's), polled in turn.

    Which files to follow is read from the servers at most every `sources_every`
    seconds (0: on every poll): a long-running follower (the gateway's) then costs
    nothing between those reads while no server has log files.
    """

    def __init__(self, only: str | None = None, *, sources_every: float = 0.0) -> None:
        self.only = only
        self.sources_every = sources_every
        self.tails: dict[tuple[str, str], FileTail] = {}
        self._wanted: dict[tuple[str, str], str] = {}
        self._read_at: float | None = None  # time.monotonic() of the last read of the servers

    @property
    def idle(self) -> bool:
        """Nothing to poll now: no files followed, and the servers were read recently."""
        fresh = self._read_at is not None and time.monotonic() - self._read_at < self.sources_every
        return fresh and not self._wanted

    def _sources(self) -> dict[tuple[str, str], str]:
        from mcps.models import MCPServer

        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self.sources_every:
            self._wanted = {
                (mcp_id, path): fmt
                for mcp_id, path, fmt in MCPServer.objects.log_file_sources()
                if self.only is None or mcp_id == self.only
            }
            self._read_at = now
        return self._wanted

    def poll(self) -> PollOutcome:
        total = PollOutcome()
        wanted = self._sources()
        for key in [k for k, tail in self.tails.items() if wanted.get(k) != tail.format]:
            self.tails.pop(key).close()
        for (mcp_id, path), fmt in wanted.items():
            tail = self.tails.get((mcp_id, path))
            if tail is None:
                tail = self.tails[(mcp_id, path)] = FileTail(mcp_id, path, fmt)
            try:
                outcome = tail.poll()
            except Exception as exc:  # one unreadable file must not stop the others
                logger.exception("log file %s of %s", path, mcp_id)
                tail.close()
                tail.source = None
                LogSource.objects.filter(mcp_id=mcp_id, path=path).update(
                    last_error=f"{type(exc).__name__}: {exc}"
                )
                continue
            total.read += outcome.read
            total.stored += outcome.stored
            total.outboxes.extend(outcome.outboxes)
        return total

    def close(self) -> None:
        for tail in self.tails.values():
            tail.close()
        self.tails.clear()


def _poll_in_thread(tailer: Tailer) -> PollOutcome:
    close_old_connections()
    try:
        return tailer.poll()
    finally:
        close_old_connections()


async def apoll(tailer: Tailer) -> PollOutcome:
    """One poll off the event loop; the stored entries are then sent on the live channels."""
    if tailer.idle:
        return PollOutcome()
    outcome = await sync_to_async(_poll_in_thread, thread_sensitive=False)(tailer)
    for outbox in outcome.outboxes:
        await outbox.send()
    return outcome


async def follow(tailer: Tailer, interval: float) -> None:
    """Poll every `interval` seconds until cancelled (the gateway's loop, `tail_logs`)."""
    try:
        while True:
            try:
                await apoll(tailer)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("log tailing failed; retrying")
            await asyncio.sleep(interval)
    finally:
        tailer.close()
