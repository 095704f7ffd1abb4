"""Retention tiers for logs: hot (the database) -> warm -> cold (archive files) -> gone.

`log_retention` in the config sets the ages: a day of logs older than `hot` leaves the
database for a compressed JSON Lines file per day and server in the archive storage
(`STORAGES["archive"]`: the data directory by default, any S3-compatible bucket through
django-storages when configured); older than `warm` its file moves to the cold prefix;
older than `cold` it is deleted. A server may have ages of its own (MCPServer.log_retention,
any of the three over the config's): its days go by them (`Ages`).

Safety: rows leave the database only after their file has been written (fsync'd, on the
local filesystem), read back and verified (same ids, same digest). Re-running is
harmless: an existing day file is merged with the rows by id, never duplicated.
`restore` brings archived days back into the database for `hot` more (marked on the
ArchiveDay so archival leaves them there meanwhile); `read` reads archived days for
the API without restoring them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.db.models.functions import TruncDate
from django.utils import timezone

from logs import partitions
from logs.models import ArchiveDay, LogEntry, LogEventId
from mcps.models import MCPServer
from missioncontrol import encryption
from missioncontrol.config import RetentionConfig
from missioncontrol.jsontext import dumps, loads

LOG_FIELDS = ("id", "timestamp", "level", "service", "thread_id", "mcp_id", "message", "context", "exception")
# Archived with each row (restored with it, and what `read` scopes by): the team whose
# key pushed it. Files written before it was kept hold none: such a row reads as a
# log of no team (its thread's team's, or admins' only).
TEAM = "team_id"
_DELETE_CHUNK = 5000


class ArchiveError(Exception):
    """An archive file did not read back as written; nothing was deleted."""


def storage() -> Storage:
    return storages["archive"]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def file_name(tier: str, day: date, mcp_id: str) -> str:
    return f"{tier}/{day:%Y/%m/%d}/{quote(mcp_id, safe='')}.jsonl.gz"


_GZIP_MAGIC = b"\x1f\x8b"


def encode_rows(rows: list[dict[str, Any]]) -> bytes:
    """Gzip'd JSON Lines, encrypted with the secrets' keys (missioncontrol/encryption.py):
    the archive, a bucket or a disk, holds no log text in clear."""
    return encryption.encrypt_bytes(gzip.compress(b"".join(dumps(row).encode() + b"\n" for row in rows)))


def decode_rows(data: bytes) -> list[dict[str, Any]]:
    if not data.startswith(_GZIP_MAGIC):  # encrypted (files written before encryption are not)
        data = encryption.decrypt_bytes(data)
    return [loads(line) for line in gzip.decompress(data).splitlines() if line]


def reencrypt() -> int:
    """Write every archive file again, encrypted with the first key (plain ones included);
    how many. Part of a key rotation (`manage.py rotate_secrets`)."""
    count = 0
    for entry in ArchiveDay.objects.exclude(name=""):
        data = _read(entry.name)
        fresh = (
            encryption.encrypt_bytes(data)
            if data.startswith(_GZIP_MAGIC)
            else encryption.reencrypt_bytes(data)
        )
        _write(entry.name, fresh)
        if decode_rows(_read(entry.name)) != decode_rows(data):
            raise ArchiveError(f"{entry.name} did not read back as written")
        ArchiveDay.objects.filter(pk=entry.pk).update(sha256=hashlib.sha256(fresh).hexdigest())
        count += 1
    return count


def _write(name: str, data: bytes) -> None:
    """Write durably: on a local filesystem, temp file + fsync + rename + directory fsync."""
    store = storage()
    try:
        path = Path(store.path(name))
    except NotImplementedError:  # remote (S3): a completed PUT is durable
        if store.exists(name):
            store.delete(name)
        store.save(name, ContentFile(data))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".archive-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read(name: str) -> bytes:
    with storage().open(name, "rb") as handle:
        return handle.read()


def _write_verified(name: str, rows: list[dict[str, Any]]) -> str:
    """Write `rows` to `name`, read them back and compare; their digest."""
    data = encode_rows(rows)
    digest = hashlib.sha256(data).hexdigest()
    _write(name, data)
    back = _read(name)
    if hashlib.sha256(back).hexdigest() != digest or [r["id"] for r in decode_rows(back)] != [
        r["id"] for r in rows
    ]:
        raise ArchiveError(f"{name} did not read back as written")
    return digest


@dataclass
class ArchiveReport:
    days: int = 0
    rows: int = 0
    moved_cold: int = 0
    expired: int = 0
    names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Cutoffs:
    """A retention's ages as of a moment: days before these are due for the next tier."""

    hot_before: date  # whole days: a day leaves the database once all of it is older than `hot`
    cold_before: date
    expire_before: date

    @classmethod
    def of(cls, retention: RetentionConfig, now: datetime) -> Cutoffs:
        now_utc = now.astimezone(UTC)
        return cls(
            hot_before=(now_utc - timedelta(seconds=retention.hot)).date(),
            cold_before=(now_utc - timedelta(seconds=retention.warm)).date(),
            expire_before=(now_utc - timedelta(seconds=retention.cold)).date(),
        )


class Ages:
    """The config's `log_retention` and every server's own over it, as of `now` (one query)."""

    def __init__(self, now: datetime) -> None:
        default = settings.LOG_RETENTION
        self.retentions = MCPServer.objects.log_retentions(default)
        self.default = Cutoffs.of(default, now)
        self.servers = {mcp_id: Cutoffs.of(r, now) for mcp_id, r in self.retentions.items()}
        every = [self.default, *self.servers.values()]
        # The latest cutoff of each tier: what any server may have due.
        self.latest = Cutoffs(
            hot_before=max(c.hot_before for c in every),
            cold_before=max(c.cold_before for c in every),
            expire_before=max(c.expire_before for c in every),
        )

    def of(self, mcp_id: str) -> Cutoffs:
        return self.servers.get(mcp_id, self.default)

    def hot(self, mcp_id: str) -> int:
        """Seconds `mcp_id`'s logs stay in the database (a restored day too)."""
        return self.retentions.get(mcp_id, settings.LOG_RETENTION).hot


def days_with_logs(before: date) -> list[tuple[date, str]]:
    """(day, server) pairs with logs on days before `before` (one grouped query)."""
    return list(
        LogEntry.objects.filter(timestamp__lt=day_bounds(before)[0])
        .annotate(day=TruncDate("timestamp", tzinfo=UTC))
        .values_list("day", "mcp_id")
        .distinct()
        .order_by("day", "mcp_id")
    )


def pending_days(ages: Ages, now: datetime) -> list[tuple[date, str]]:
    """(day, server) pairs past their server's hot age, minus days restored until later than now."""
    held = set(ArchiveDay.objects.filter(restored_until__gt=now).values_list("day", "mcp_id"))
    return [
        (day, mcp_id)
        for day, mcp_id in days_with_logs(ages.latest.hot_before)
        if day < ages.of(mcp_id).hot_before and (day, mcp_id) not in held
    ]


def _write_day(
    day: date, mcp_id: str, hot: list[dict[str, Any]], now: datetime, cold_before: date
) -> str | None:
    """Merge `hot` (rows as events) into the day's file, write it verified, record it.

    The day's previous file, if it had another name (a tier ago): to delete after commit.
    """
    existing = ArchiveDay.objects.filter(day=day, mcp_id=mcp_id).first()
    merged: dict[str, dict[str, Any]] = {}
    if existing is not None:
        merged.update((row["id"], row) for row in decode_rows(_read(existing.name)))
    merged.update((row["id"], row) for row in hot)
    rows = sorted(merged.values(), key=lambda r: (r["timestamp"], r["id"]))
    tier = ArchiveDay.Tier.COLD if day < cold_before else ArchiveDay.Tier.WARM
    name = file_name(tier, day, mcp_id)
    digest = _write_verified(name, rows)
    ArchiveDay.objects.update_or_create(
        day=day,
        mcp_id=mcp_id,
        defaults={"tier": tier, "name": name, "rows": len(rows), "sha256": digest, "archived_at": now},
    )
    return existing.name if existing is not None and existing.name != name else None


def _delete_files(names: Iterable[str | None]) -> None:
    for name in names:
        if name is not None:
            storage().delete(name)


def _as_events(entries: Iterable[LogEntry]) -> list[dict[str, Any]]:
    rows = []
    for entry in entries:
        row = entry.as_event()
        del row["type"]
        row[TEAM] = entry.team_id
        rows.append(row)
    return rows


def _forget_ids(ids: list[str]) -> None:
    """The ledger's ids of rows gone to the archive (PostgreSQL): a repeat is stored again."""
    if partitions.enabled():
        for i in range(0, len(ids), _DELETE_CHUNK):
            LogEventId.objects.filter(id__in=ids[i : i + _DELETE_CHUNK]).delete()


def archive_day(day: date, mcp_id: str, now: datetime, cold_before: date) -> int:
    """Archive one day of one server's logs by DELETE; the rows removed from the database.

    The path for rows not in a day partition of their own (SQLite; on PostgreSQL the
    default partition's, or a day partly restored).
    """
    start, end = day_bounds(day)
    in_day = LogEntry.objects.filter(mcp_id=mcp_id, timestamp__gte=start, timestamp__lt=end)
    hot = _as_events(in_day.order_by("timestamp", "id"))
    if not hot:
        return 0
    with transaction.atomic():
        stale = _write_day(day, mcp_id, hot, now, cold_before)
        ids = [row["id"] for row in hot]
        for i in range(0, len(ids), _DELETE_CHUNK):
            in_day.filter(id__in=ids[i : i + _DELETE_CHUNK]).delete()
        _forget_ids(ids)
    _delete_files([stale])
    return len(hot)


def archive_partition(day: date, name: str, now: datetime, ages: Ages) -> tuple[int, int]:
    """Archive a detached day partition, then drop it; (day files, rows).

    The partition is dropped only once every server's file of that day is written and
    read back; should that fail, the partition is attached again (or, if that day's rows
    have meanwhile gone to the default partition, left detached for the next run).
    """
    entries = list(LogEntry.objects.raw(f"SELECT * FROM {name} ORDER BY timestamp, id"))
    by_server: dict[str, list[LogEntry]] = {}
    for entry in entries:
        by_server.setdefault(entry.mcp_id, []).append(entry)
    try:
        with transaction.atomic():
            stale = [
                _write_day(day, mcp_id, _as_events(rows), now, ages.of(mcp_id).cold_before)
                for mcp_id, rows in sorted(by_server.items())
            ]
            _forget_ids([entry.id for entry in entries])
            partitions.drop(name)
    except BaseException:
        partitions.reattach(name)
        raise
    _delete_files(stale)
    return len(by_server), len(entries)


def _archive_partitions(ages: Ages, now: datetime) -> list[tuple[date, str]]:
    """PostgreSQL: the day partitions to archive whole, detached: those detached by an
    interrupted run, and those past the hot age of every server with logs that day (of
    the config's when none has), no server's day restored.

    A day some server still keeps hot stays; the other servers' rows of it go by DELETE.
    """
    if not partitions.enabled():
        return []
    held = set(ArchiveDay.objects.filter(restored_until__gt=now).values_list("day", flat=True))
    candidates = [day for day in sorted(partitions.attached()) if day < ages.latest.hot_before]
    servers: dict[date, set[str]] = {}
    if candidates:
        for day, mcp_id in days_with_logs(candidates[-1] + timedelta(days=1)):
            servers.setdefault(day, set()).add(mcp_id)
    todo = sorted(partitions.detached().items())
    for day in candidates:
        due = all(day < ages.of(m).hot_before for m in servers.get(day, ())) and (
            day in servers or day < ages.default.hot_before
        )
        if due and day not in held:
            name = partitions.detach(day)  # None: busy; its rows go by DELETE below
            if name is not None:
                todo.append((day, name))
    return todo


def archive(
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ArchiveReport:
    """Move every day past `hot` to the archive, warm days past `warm` to cold, drop days past `cold`
    (each server's day by its own ages, see Ages).

    On PostgreSQL a whole day partition is archived and then dropped; rows elsewhere (the
    default partition, a partly restored day; every row on SQLite) are archived and deleted.
    """
    now = now or timezone.now()
    ages = Ages(now)
    report = ArchiveReport()
    whole = _archive_partitions(ages, now)
    done = 0
    for day, name in whole:
        files, rows = archive_partition(day, name, now, ages)
        report.days += files
        report.rows += rows
        done += 1
        if progress is not None:
            progress(done, len(whole))
    pending = pending_days(ages, now)
    for day, mcp_id in pending:
        report.rows += archive_day(day, mcp_id, now, ages.of(mcp_id).cold_before)
        report.days += 1
        done += 1
        if progress is not None:
            progress(done, len(whole) + len(pending))
    for entry in ArchiveDay.objects.filter(tier=ArchiveDay.Tier.WARM, day__lt=ages.latest.cold_before):
        if entry.day >= ages.of(entry.mcp_id).cold_before:
            continue
        name = file_name(ArchiveDay.Tier.COLD, entry.day, entry.mcp_id)
        rows = decode_rows(_read(entry.name))
        _write_verified(name, rows)
        old, entry.name, entry.tier = entry.name, name, ArchiveDay.Tier.COLD
        entry.save(update_fields=["name", "tier"])
        storage().delete(old)
        report.moved_cold += 1
    for entry in ArchiveDay.objects.filter(day__lt=ages.latest.expire_before):
        if entry.day >= ages.of(entry.mcp_id).expire_before:
            continue
        storage().delete(entry.name)
        entry.delete()
        report.expired += 1
    return report


def days_between(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _as_row(row: dict[str, Any]) -> tuple[Any, ...]:
    values = dict(row)
    values["timestamp"] = datetime.fromisoformat(values["timestamp"])
    return (*(values.get(f) for f in LOG_FIELDS), values.get(TEAM))


def restore(first: date, last: date, mcp_ids: Iterable[str] | None = None) -> tuple[int, int]:
    """Bring the archived days from `first` to `last` back into the database; (days, rows inserted).

    They stay there for their server's `hot` (restored_until) before archival may take them again.
    """
    entries = ArchiveDay.objects.filter(day__gte=first, day__lte=last)
    if mcp_ids is not None:
        entries = entries.filter(mcp_id__in=list(mcp_ids))
    now = timezone.now()
    ages = Ages(now)
    days = inserted = 0
    for entry in entries.order_by("day", "mcp_id"):
        rows = decode_rows(_read(entry.name))
        partitions.ensure(entry.day, entry.day)  # PostgreSQL: its own partition, archived whole later
        with transaction.atomic():
            stored = LogEntry.objects.store_new((*LOG_FIELDS, "team"), [_as_row(r) for r in rows])
            inserted += len(stored)
            entry.restored_until = now + timedelta(seconds=ages.hot(entry.mcp_id))
            entry.save(update_fields=["restored_until"])
        days += 1
    return days, inserted


def read(
    first: datetime,
    last: datetime,
    mcp_ids: Iterable[str] | None = None,
    teams: Sequence[int] | None = None,
) -> Iterator[dict[str, Any]]:
    """Archived logs with `first` <= timestamp <= `last` (oldest day first), as API rows.

    `teams` (roles.team_scope: None for every team) narrows them as LogEntry.visible_to
    narrows the hot table: a row of one of `teams`, or of no team naming one of their
    threads.
    """
    from threads.models import Thread

    theirs: set[str] = set()
    if teams:
        theirs = set(Thread.objects.filter(team_id__in=teams).values_list("id", flat=True))
    entries = ArchiveDay.objects.filter(
        day__gte=first.astimezone(UTC).date(), day__lte=last.astimezone(UTC).date()
    )
    if mcp_ids is not None:
        entries = entries.filter(mcp_id__in=list(mcp_ids))
    for entry in entries.order_by("day", "mcp_id"):
        for row in decode_rows(_read(entry.name)):
            team = row.pop(TEAM, None)
            if teams is not None and not (team in teams if team is not None else row["thread_id"] in theirs):
                continue
            if first <= datetime.fromisoformat(row["timestamp"]) <= last:
                yield {"type": "log", **row, "archived": True}
