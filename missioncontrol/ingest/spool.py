"""The ingest spool: accepted batches kept on disk while the database is unreachable.

When storing a batch fails because the database cannot be reached, the edge writes the
batch's accepted events here and answers 202 only once they are on disk: one file per
batch, written to a temporary name, fsync'd, renamed into place and the directory
fsync'd, so a file either holds the whole batch or does not exist. The spool is bounded
(`SPOOL_MAX_BYTES`); past it the edge answers 503 with Retry-After and keeps nothing.

A drainer (the web process's `SpoolDrainer`, the beat task `missioncontrol.drain_spool`
and `manage.py drain_spool`) replays the files oldest first through `ingest()` once the
database answers again. Each file is claimed with an exclusive `flock`, so drainers in
several processes never replay one file at once, and unlinked only after its batch has
committed. A drainer that dies between the commit and the unlink leaves the file to be
replayed again: event ids make that replay store nothing twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections
from prometheus_client.core import GaugeMetricFamily

from missioncontrol import metrics
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import IngestResult, ingest
from missioncontrol.jsontext import JSONDecodeError, dumps, loads
from missioncontrol.live import Outbox

logger = logging.getLogger(__name__)

SUFFIX = ".batch"
BAD_SUFFIX = ".bad"
# The size of the spool is re-read from disk at most this often (other processes write
# to it too); in between, this process adds what it wrote itself.
_RESCAN_SECONDS = 1.0
# Errors that mean "the database is not reachable now", as opposed to a bad batch.
DATABASE_DOWN = (OperationalError, InterfaceError)


class SpoolFull(Exception):
    """The spool holds its maximum; the batch was not kept."""


@dataclass
class DrainReport:
    """What one drain did: files replayed, events in them, files left for later."""

    files: int = 0
    events: int = 0
    remaining: int = 0
    outboxes: list[Outbox] = field(default_factory=list)
    error: str | None = None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """A directory of spooled batches, bounded by `max_bytes`."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._size = 0
        self._scanned_at = float("-inf")

    def files(self) -> list[Path]:
        """Spooled batch files, oldest first (names start with the time they were written)."""
        try:
            names = sorted(e.name for e in os.scandir(self.directory) if e.name.endswith(SUFFIX))
        except FileNotFoundError:
            return []
        return [self.directory / name for name in names]

    def depth(self) -> tuple[int, int]:
        """(batch files, bytes) in the spool now."""
        count = size = 0
        for path in self.files():
            try:
                size += path.stat().st_size
            except FileNotFoundError:  # drained meanwhile
                continue
            count += 1
        return count, size

    def _current_size(self) -> int:
        now = time.monotonic()
        if now - self._scanned_at >= _RESCAN_SECONDS:
            self._size = self.depth()[1]
            self._scanned_at = now
        return self._size

    def append(self, events: list[Any], mcp_id: str | None, team_id: int | None = None) -> Path:
        """Keep a batch durably (fsync'd) before returning its file; SpoolFull past the bound.

        The batch keeps its source (bound server, the ingest key's team) for the replay.
        """
        body = dumps({"mcp_id": mcp_id, "team_id": team_id, "events": events}).encode()
        with self._lock:
            if self._current_size() + len(body) > self.max_bytes:
                raise SpoolFull(f"the ingest spool holds its maximum of {self.max_bytes} bytes")
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            tmp, final = self.directory / f".{name}.tmp", self.directory / f"{name}{SUFFIX}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, final)
            _fsync_dir(self.directory)
            self._size += len(body)
        return final

    @staticmethod
    def _claim(path: Path) -> int | None:
        """An fd of `path` locked for this drainer; None if it is taken or already replayed."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another drainer is replaying it
            os.close(fd)
            return None
        if os.fstat(fd).st_nlink == 0:  # replayed and unlinked between our listing and our lock
            os.close(fd)
            return None
        return fd

    def drain(
        self,
        store: Callable[[list[Any], Source], IngestResult] = ingest,
        *,
        max_files: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> DrainReport:
        """Replay spooled batches oldest first; stop at the first database error (still down)."""
        report = DrainReport()
        files = self.files()[:max_files]
        for done, path in enumerate(files, 1):
            fd = self._claim(path)
            if fd is None:
                continue
            try:
                if not self._replay(path, fd, store, report):
                    break
            finally:
                os.close(fd)  # releases the lock
            if progress is not None:
                progress(done, len(files))
        with self._lock:
            self._scanned_at = float("-inf")
        report.remaining = len(self.files())
        return report

    def _replay(
        self, path: Path, fd: int, store: Callable[[list[Any], Source], IngestResult], report: DrainReport
    ) -> bool:
        """Store one claimed file's batch and remove the file; False if the database is down."""
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        try:
            batch = loads(b"".join(chunks))
            events, mcp_id, team_id = batch["events"], batch["mcp_id"], batch.get("team_id")
        except (JSONDecodeError, KeyError, TypeError) as exc:
            # Never deleted: kept aside for a person to look at.
            logger.error("spool: %s is unreadable (%s); moved aside as %s", path, exc, BAD_SUFFIX)
            os.rename(path, path.with_suffix(BAD_SUFFIX))
            return True
        try:
            result = store(events, Source(mcp_id=mcp_id, team_id=team_id))
        except DATABASE_DOWN as exc:
            report.error = str(exc).strip()[:200] or type(exc).__name__
            return False
        for verdict in [v for v in result.verdicts if v.status == "rejected"][:5]:
            logger.error("spool: event %s rejected on replay: %s", verdict.id, verdict.reason)
        # Committed: only now may the file go.
        os.unlink(path)
        _fsync_dir(self.directory)
        report.files += 1
        report.events += len(events)
        report.outboxes.append(result.outbox)
        return True


_spools: dict[tuple[str, int], Spool] = {}


def default_spool() -> Spool:
    """The spool configured in settings (SPOOL_DIR, SPOOL_MAX_BYTES), one object per process."""
    key = (str(settings.SPOOL_DIR), int(settings.SPOOL_MAX_BYTES))
    spool = _spools.get(key)
    if spool is None:
        spool = _spools[key] = Spool(Path(key[0]), key[1])
    return spool


def depth_gauges() -> Iterator[GaugeMetricFamily]:
    """The default spool's depth, read when /metrics is scraped."""
    files, size = default_spool().depth()
    spool = GaugeMetricFamily(
        "mission_control_spool_depth", "Spooled ingest batches waiting for the database."
    )
    spool.add_metric([], files)
    yield spool
    spool_bytes = GaugeMetricFamily("mission_control_spool_bytes", "Bytes in the ingest spool.")
    spool_bytes.add_metric([], size)
    yield spool_bytes


metrics.register_gauges(depth_gauges)


def _close_connections() -> None:
    try:
        close_old_connections()
    except DatabaseError:
        logger.debug("spool: closing a broken connection failed", exc_info=True)


def drain_default(
    *, max_files: int | None = None, progress: Callable[[int, int], None] | None = None
) -> DrainReport:
    """Drain the configured spool from a thread that may hold a stale connection."""
    _close_connections()
    try:
        return default_spool().drain(max_files=max_files, progress=progress)
    finally:
        _close_connections()
