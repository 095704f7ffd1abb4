"""Daily partitions of the log table on PostgreSQL (the embedded SQLite keeps a plain table).

`logs_logentry` is range-partitioned on `timestamp`, one partition per UTC day
(`logs_logentry_pYYYYMMDD`), plus a default partition (`logs_logentry_default`) that
takes any row no day partition covers: no event is refused or lost for want of one.

- `ensure(first, last)` creates the missing day partitions (beat task `logs.partitions`,
  hourly, for `AHEAD` days around today; migrate; `restore` for the days it brings back).
  Rows of that day already in the default partition move into the new one.
- `detach(day)` takes a day out of the table for archival (logs/archive.py); `drop(name)`
  removes it once its rows are in verified archive files; `reattach(name)` puts it back
  when archiving failed. A partition detached by a process that then died is found by
  `detached()` and archived by the next run.

PostgreSQL wants the partition key in every unique constraint, so the table's primary key
is (id, timestamp) in SQL (Django still treats `id` as the primary key). Uniqueness of a
log's event id across days is kept by the ledger `LogEventId` (see `store_new`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

TABLE = "logs_logentry"
DEFAULT = f"{TABLE}_default"
# Day partitions kept ready: today - AHEAD[0] .. today + AHEAD[1].
AHEAD = (2, 7)
# How long partition changes wait for a lock before giving up (ingest must never wait long).
LOCK_TIMEOUT = "5s"
_NAME = re.compile(rf"^{TABLE}_p(\d{{8}})$")


def enabled() -> bool:
    return connection.vendor == "postgresql"


def name_of(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def day_of(name: str) -> date:
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"{name} is not a day partition of {TABLE}")
    return datetime.strptime(match.group(1), "%Y%m%d").date()


def _bounds(day: date) -> tuple[str, str]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start.isoformat(), (start + timedelta(days=1)).isoformat()


def _fetch(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _execute(sql: str, params: Sequence[Any] = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@contextmanager
def _locked() -> Iterator[None]:
    """One transaction whose lock waits are bounded by LOCK_TIMEOUT."""
    with transaction.atomic():
        _execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        yield


def attached() -> dict[date, str]:
    """The day partitions of the table, by day (not the default one)."""
    rows = _fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        [TABLE],
    )
    return {day_of(name): name for (name,) in rows if _NAME.match(name)}


def detached() -> dict[date, str]:
    """Day partitions detached for archival and not dropped (their archival was interrupted)."""
    rows = _fetch(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition "
        "AND relnamespace = current_schema()::regnamespace AND relname ~ %s",
        [_NAME.pattern],
    )
    return {day_of(name): name for (name,) in rows}


def is_partitioned() -> bool:
    return bool(_fetch("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", [TABLE]))


def ensure(first: date, last: date) -> list[date]:
    """Create the day partitions from `first` to `last` that are missing; the days created."""
    if not enabled():
        return []
    have = attached() | detached()  # a detached day is being archived: its rows go to the default meanwhile
    created = []
    day = first
    while day <= last:
        if day not in have:
            _create(day)
            created.append(day)
        day += timedelta(days=1)
    return created


def ensure_ahead(today: date | None = None) -> list[date]:
    today = today or timezone.now().astimezone(UTC).date()
    return ensure(today - timedelta(days=AHEAD[0]), today + timedelta(days=AHEAD[1]))


def _create(day: date) -> None:
    """A partition for `day`, with the rows of that day the default partition holds.

    The default partition is locked against inserts for the move (briefly: it holds only
    rows outside the prepared days), so none lands there between the move and the attach.
    """
    name, (start, end) = name_of(day), _bounds(day)
    with _locked():
        _execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)")
        _execute(f"LOCK TABLE {DEFAULT} IN EXCLUSIVE MODE")
        _execute(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE timestamp >= %s AND timestamp < %s RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            [start, end],
        )
        _attach(name, day)


def _attach(name: str, day: date) -> None:
    start, end = _bounds(day)
    # The check lets ATTACH skip scanning the rows to validate them.
    _execute(
        f"ALTER TABLE {name} ADD CONSTRAINT {name}_range "
        f"CHECK (timestamp IS NOT NULL AND timestamp >= '{start}' AND timestamp < '{end}')"
    )
    _execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')")
    _execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")


def detach(day: date) -> str | None:
    """Take `day`'s partition out of the table (new rows of that day go to the default one).

    None if it has none, or if the table stayed busy for LOCK_TIMEOUT (archive by DELETE then).
    """
    from django.db import OperationalError

    name = attached().get(day)
    if name is None:
        return None
    try:
        with _locked():
            _execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
    except OperationalError:  # lock_timeout
        return None
    return name


def reattach(name: str) -> bool:
    """Put a detached partition back; False if that day's rows have meanwhile gone elsewhere."""
    from django.db import DatabaseError

    try:
        with _locked():
            _execute(f"LOCK TABLE {DEFAULT} IN EXCLUSIVE MODE")
            _attach(name, day_of(name))
    except DatabaseError:
        return False
    return True


def drop(name: str) -> None:
    day_of(name)  # only ever a day partition
    _execute(f"DROP TABLE IF EXISTS {name}")


def rows_of(name: str) -> list[dict[str, Any]]:
    """Every row of a (detached) partition, oldest first, as dicts of the model's columns."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {name} ORDER BY timestamp, id")
        columns = [c.name for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def partition_of_row(log_id: str) -> str | None:
    """The partition a stored row is in (tests, diagnostics)."""
    rows = _fetch(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE id = %s", [log_id])
    return rows[0][0] if rows else None


def convert(cursor: Any, today: date) -> None:
    """Make the plain log table a partitioned one, keeping its rows and indexes (migration)."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = %s AND indexname <> %s",
        [TABLE, f"{TABLE}_pkey"],
    )
    indexes = cursor.fetchall()
    for index, _ in indexes:
        cursor.execute(f'DROP INDEX "{index}"')
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_plain")
    cursor.execute(f"ALTER TABLE {TABLE}_plain RENAME CONSTRAINT {TABLE}_pkey TO {TABLE}_plain_pkey")
    cursor.execute(
        f"CREATE TABLE {TABLE} (LIKE {TABLE}_plain INCLUDING DEFAULTS) PARTITION BY RANGE (timestamp)"
    )
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, timestamp)")
    cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {TABLE} DEFAULT")
    cursor.execute(f"SELECT DISTINCT (timestamp AT TIME ZONE 'UTC')::date FROM {TABLE}_plain")
    days = {row[0] for row in cursor.fetchall()}
    days |= {today + timedelta(days=n) for n in range(-AHEAD[0], AHEAD[1] + 1)}
    for day in sorted(days):
        start, end = _bounds(day)
        cursor.execute(
            f"CREATE TABLE {name_of(day)} PARTITION OF {TABLE} FOR VALUES FROM ('{start}') TO ('{end}')"
        )
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE}_plain")
    cursor.execute(f"INSERT INTO logs_logeventid (id) SELECT id FROM {TABLE}_plain ON CONFLICT DO NOTHING")
    cursor.execute(f"DROP TABLE {TABLE}_plain")
    for _, definition in indexes:
        cursor.execute(definition.replace(" ON ONLY ", " ON "))


def unconvert(cursor: Any) -> None:
    """Back to a plain table with `id` as its primary key (reverse migration)."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = %s AND indexname <> %s",
        [TABLE, f"{TABLE}_pkey"],
    )
    indexes = cursor.fetchall()
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_parts")
    for index, _ in indexes:
        cursor.execute(f'DROP INDEX "{index}"')
    cursor.execute(f"ALTER TABLE {TABLE}_parts RENAME CONSTRAINT {TABLE}_pkey TO {TABLE}_parts_pkey")
    cursor.execute(f"CREATE TABLE {TABLE} (LIKE {TABLE}_parts INCLUDING DEFAULTS)")
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id)")
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE}_parts ON CONFLICT DO NOTHING")
    cursor.execute(f"DROP TABLE {TABLE}_parts CASCADE")
    for _, definition in indexes:
        cursor.execute(definition.replace(" ON ONLY ", " ON "))
