"""Structured logs aggregated from every MCP server and agent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from django.db import connection, models
from django.db.models.functions import Now, RowNumber

from missioncontrol import textsearch
from missioncontrol.roles import team_scope


class LogEntryQuerySet(models.QuerySet["LogEntry"]):
    def visible_to(self, user: Any) -> Self:
        """Logs `user` may see: all for admins; otherwise those pushed with one of its
        teams' keys, and those of no team (a server's own, tailed from its files) that
        name one of its teams' threads. Another team's log stays that team's, whatever
        thread it names. No team, no thread of a team: admins only."""
        return self.of_teams(team_scope(user))

    def of_teams(self, teams: Sequence[int] | None) -> Self:
        """Logs a reader of `teams` sees (None: every log); see visible_to."""
        from threads.models import Thread

        if teams is None:
            return self
        if not teams:
            return self.none()
        threads = Thread.objects.filter(team_id__in=teams).values("id")
        return self.filter(
            models.Q(team_id__in=teams) | models.Q(team_id__isnull=True, thread_id__in=threads)
        )

    def search(self, text: str) -> Self:
        """Logs whose message matches the websearch query `text` (see missioncontrol.textsearch)."""
        q = textsearch.matches("message", text)
        return self if q is None else self.filter(q)

    def page_per_thread(self, thread_ids: list[str], offset: int, limit: int | None) -> Self:
        """The same page of each thread's logs, newest first, in one query (a window per thread).

        A thread's logs are those of its own team or of none (visible_to): another
        team's log naming it is not among them.
        """
        from threads.models import Thread

        own = models.Exists(
            Thread.objects.filter(id=models.OuterRef("thread_id"), team_id=models.OuterRef("team_id"))
        )
        rank = models.Window(
            RowNumber(),
            partition_by=models.F("thread_id"),
            order_by=[models.F("timestamp").desc(), models.F("id").desc()],
        )
        page = (
            self.filter(thread_id__in=thread_ids)
            .filter(models.Q(team_id__isnull=True) | own)
            .annotate(thread_rank=rank)
            .filter(thread_rank__gt=offset)
        )
        if limit is not None:
            page = page.filter(thread_rank__lte=offset + limit)
        return page.order_by("-timestamp", "-id")

    def store_new(self, fields: Sequence[str], rows: list[tuple[Any, ...]]) -> set[str]:
        """Store the rows (`fields` order, the id first) whose id is new; the ids stored.

        SQLite: the id is the table's primary key. PostgreSQL: the table is partitioned by
        day (logs/partitions.py) and its key is (id, timestamp), so the ids go through the
        `LogEventId` ledger first (one statement, skipping ids already there) and only the
        new rows are COPY'd: a repeated id is stored once whatever its timestamp.
        """
        from missioncontrol.bulk import copy_rows, insert_new

        if connection.vendor != "postgresql":
            return insert_new(LogEntry, fields, rows)
        assert fields[0] == "id", "the id must come first"
        new = insert_new(LogEventId, ("id",), [(row[0],) for row in rows])
        return copy_rows(LogEntry, fields, [row for row in rows if row[0] in new])


class LogEntry(models.Model):
    """One structured log line; its id is the event id, so a repeat is stored once.

    On PostgreSQL the table is partitioned by day on `timestamp` (logs/partitions.py).
    """

    class Level(models.TextChoices):
        DEBUG = "DEBUG"
        INFO = "INFO"
        WARN = "WARN"
        ERROR = "ERROR"

    id = models.CharField(primary_key=True, max_length=200)
    timestamp = models.DateTimeField()
    level = models.CharField(max_length=8, choices=Level.choices)
    service = models.CharField(max_length=100)
    # Plain columns, not foreign keys: a log may name a thread we have not seen yet,
    # and the hot ingest path must not pay for constraint checks.
    thread_id = models.CharField(max_length=200, null=True, blank=True)
    mcp_id = models.CharField(max_length=200)
    message = models.TextField()
    # The team of the ingest key that pushed the log (null: admins only, unless its
    # thread is a team's). No constraint or index: the hot path must not pay for them.
    team = models.ForeignKey(
        "missioncontrol.Team",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    context = models.JSONField(default=dict, blank=True)
    exception = models.TextField(null=True, blank=True)
    received_at = models.DateTimeField(db_default=Now())

    objects = LogEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["-timestamp", "-id"], name="log_time"),
            models.Index(fields=["thread_id", "-timestamp"], name="log_thread_time"),
            models.Index(fields=["mcp_id", "-timestamp"], name="log_mcp_time"),
            models.Index(fields=["level", "-timestamp"], name="log_level_time"),
        ]
        verbose_name = "log entry"
        verbose_name_plural = "log entries"

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.level} {self.service}: {self.message[:60]}"

    def as_event(self) -> dict[str, Any]:
        return {
            "type": "log",
            "id": self.id,
            "timestamp": self.timestamp.isoformat(),
            "level": self.level,
            "service": self.service,
            "thread_id": self.thread_id,
            "mcp_id": self.mcp_id,
            "message": self.message,
            "context": self.context,
            "exception": self.exception,
        }


class LogEventId(models.Model):
    """Ledger of the event ids of the logs in the database (PostgreSQL, see `store_new`).

    Its row leaves with the log's (archival), as the log's own did before partitioning.
    """

    global_because = "a ledger of ids, never listed"

    id = models.CharField(primary_key=True, max_length=200)

    class Meta:
        verbose_name = "log event id"

    def __str__(self) -> str:
        return self.id


class ArchiveDay(models.Model):
    """One day of one server's logs in the archive (a compressed JSON Lines file), and where it is."""

    global_because = "archive bookkeeping, admins only"

    class Tier(models.TextChoices):
        WARM = "warm"
        COLD = "cold"

    day = models.DateField()
    mcp_id = models.CharField(max_length=200)
    tier = models.CharField(max_length=4, choices=Tier.choices, default=Tier.WARM)
    name = models.CharField(max_length=500, help_text="The file's name in the archive storage")
    rows = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    archived_at = models.DateTimeField(db_default=Now())
    # Restored to the hot table (restore_logs): kept there, not re-archived, until then.
    restored_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day", "mcp_id"]
        constraints = [models.UniqueConstraint(fields=["day", "mcp_id"], name="archive_day_server")]

    def __str__(self) -> str:
        return f"{self.day} {self.mcp_id} ({self.tier}, {self.rows} rows)"


class LogSource(models.Model):
    """How far one server's log file has been read (logs/tailing.py), kept with its entries.

    `file_id` ("device:inode") and `fingerprint` (a hash of the file's first
    `fingerprint_len` bytes) say which file `offset` is a position in: another inode at
    the path means it was rotated by rename, a size below `offset` or other first bytes
    at the same inode means it was truncated (copytruncate). `generation` counts the
    files read so far; with the offset it makes each line's event id, so a line read
    twice is stored once and the same offset in the next file is a new line.
    """

    global_because = "the log files admins configured per server"

    class Format(models.TextChoices):
        JSONL = "jsonl", "JSON Lines"
        TEXT = "text", "plain text"
        KIWI = "kiwi", "Kiwi MCP (kiwi-mcp.json)"

    mcp = models.ForeignKey("mcps.MCPServer", on_delete=models.CASCADE, related_name="log_sources")
    path = models.CharField(max_length=1000)
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.JSONL)
    file_id = models.CharField(max_length=60, blank=True, help_text="device:inode of the file being read")
    generation = models.PositiveIntegerField(default=0)
    offset = models.PositiveBigIntegerField(default=0)
    fingerprint = models.CharField(max_length=64, blank=True)
    fingerprint_len = models.PositiveIntegerField(default=0)
    entries = models.PositiveBigIntegerField(default=0, help_text="log entries read from the file")
    malformed = models.PositiveBigIntegerField(
        default=0, help_text="lines that were not what the format expects (stored with their raw text)"
    )
    rotations = models.PositiveIntegerField(default=0)
    last_read_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["mcp_id", "path"]
        constraints = [models.UniqueConstraint(fields=["mcp", "path"], name="log_source_per_server_path")]

    def __str__(self) -> str:
        return f"{self.mcp_id}: {self.path} @ {self.offset}"
