"""Insert many rows at once, skip ids already stored, and learn which were new.

This is the ingest hot path, written for speed on purpose: on PostgreSQL a whole batch
is one `INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING id`
(one round trip, a handful of array parameters however many rows); elsewhere it is a
chunked multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING id`. Django's
`bulk_create(ignore_conflicts=True)` cannot say which rows were new, and the ingest
answer must say "duplicate" for the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from django.db import IntegrityError, connection, models, transaction

from missioncontrol.jsontext import dumps

_PG_ARRAY_TYPES = {
    "CharField": "text",
    "TextField": "text",
    "DateTimeField": "timestamptz",
    "JSONField": "text",  # sent as text, cast to jsonb in the select list
    "BooleanField": "boolean",
    "IntegerField": "integer",
    "BigIntegerField": "bigint",
    "AutoField": "integer",
    "BigAutoField": "bigint",
    "FloatField": "float8",
}

# SQLite accepts 32,766 bound parameters per statement (3.32+); stay well under.
_SQLITE_MAX_PARAMS = 30_000


def _concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _pg_type(field: models.Field[Any, Any]) -> str:
    if isinstance(field, models.ForeignKey):
        return _pg_type(field.target_field)
    return _PG_ARRAY_TYPES[field.get_internal_type()]


def insert_new(model: type[models.Model], fields: Sequence[str], rows: list[tuple[Any, ...]]) -> set[Any]:
    """Insert `rows` (values in `fields` order) into `model`'s table; return the new pks.

    Rows whose primary key is already stored are skipped. JSON values are Python objects.
    """
    if not rows:
        return set()
    concrete = [_concrete_field(model, name) for name in fields]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = [connection.ops.quote_name(f.column) for f in concrete]
    pk = connection.ops.quote_name(model._meta.pk.column)
    is_json = [isinstance(f, models.JSONField) for f in concrete]

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays: list[list[Any]] = [[] for _ in concrete]
            for row in rows:
                for i, value in enumerate(row):
                    arrays[i].append(dumps(value) if is_json[i] and value is not None else value)
            names = [f"c{i}" for i in range(len(concrete))]
            unnest = ", ".join(f"%s::{_pg_type(f)}[]" for f in concrete)
            select = ", ".join(f"{n}::jsonb" if is_json[i] else n for i, n in enumerate(names))
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"SELECT {select} FROM unnest({unnest}) AS t({', '.join(names)}) "
                f"ON CONFLICT DO NOTHING RETURNING {pk}",
                arrays,
            )
            return {r[0] for r in cursor.fetchall()}

        inserted: set[Any] = set()
        per_chunk = max(1, _SQLITE_MAX_PARAMS // len(concrete))
        placeholder = "(" + ", ".join(["%s"] * len(concrete)) + ")"
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start : start + per_chunk]
            params: list[Any] = []
            for row in chunk:
                params.extend(f.get_db_prep_save(v, connection) for f, v in zip(concrete, row, strict=True))
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                f"{', '.join([placeholder] * len(chunk))} ON CONFLICT DO NOTHING RETURNING {pk}",
                params,
            )
            inserted.update(r[0] for r in cursor.fetchall())
        return inserted


def copy_new(model: type[models.Model], fields: Sequence[str], rows: list[tuple[Any, ...]]) -> set[Any]:
    """Like `insert_new`, through COPY on PostgreSQL: the path for the hottest table.

    One indexed probe finds the ids already stored, COPY writes the rest. A concurrent
    batch carrying the same new id makes the COPY fail on the primary key; the savepoint
    is rolled back and the batch goes through `insert_new`, which skips conflicts.
    """
    if connection.vendor != "postgresql" or not rows:
        return insert_new(model, fields, rows)
    assert fields[0] == model._meta.pk.name, "the primary key must come first"
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    columns = ", ".join(connection.ops.quote_name(_concrete_field(model, f).column) for f in fields)
    is_json = [isinstance(_concrete_field(model, f), models.JSONField) for f in fields]
    connection.ensure_connection()
    # A server-side-binding cursor: Django's default client-side one would quote each id.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"SELECT {pk} FROM {table} WHERE {pk} = ANY(%s)", [[r[0] for r in rows]])
        stored = {r[0] for r in cursor.fetchall()}
    fresh = [r for r in rows if r[0] not in stored]
    if not fresh:
        return set()
    try:
        with (
            transaction.atomic(),
            psycopg.Cursor(connection.connection) as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in fresh:
                copy.write_row(
                    [dumps(v) if j and v is not None else v for v, j in zip(row, is_json, strict=True)]
                )
    except (IntegrityError, psycopg.errors.UniqueViolation):
        return insert_new(model, fields, fresh)
    return {r[0] for r in fresh}
