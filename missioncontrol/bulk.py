"""Insert many rows at once, skip ids already stored, and learn which were new.

This is the ingest hot path, written for speed on purpose: on PostgreSQL a whole batch
is one `INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING id`
(one round trip, a handful of array parameters however many rows); elsewhere it is a
chunked multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING id`. Django's
`bulk_create(ignore_conflicts=True)` cannot say which rows were new, and the ingest
answer must say "duplicate" for the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
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


def _pg_arrays(concrete: list[models.Field[Any, Any]], rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """One array per column; JSON values as text (cast to jsonb in the select list).

    The arrays are sent in binary, whose dumper wants one Python type per array: a
    float column's integers are sent as floats.
    """
    arrays: list[list[Any]] = []
    for i, f in enumerate(concrete):
        column = [row[i] for row in rows]
        if isinstance(f, models.JSONField):
            column = [None if v is None else dumps(v) for v in column]
        elif _pg_type(f) == "float8":
            column = [None if v is None else float(v) for v in column]
        arrays.append(column)
    return arrays


def _pg_unnest(concrete: list[models.Field[Any, Any]]) -> str:
    # %b: binary arrays. psycopg's text array format escapes every element with a
    # regex in Python, which cost more than the statement itself on a 500-row batch.
    return ", ".join(f"%b::{_pg_type(f)}[]" for f in concrete)


def _pg_select(concrete: list[models.Field[Any, Any]], names: list[str]) -> str:
    return ", ".join(
        f"{n}::jsonb" if isinstance(f, models.JSONField) else n for f, n in zip(concrete, names, strict=True)
    )


def execute_unnest(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Run `sql` on Django's connection (and transaction) with server-side binding.

    Django's cursor binds client-side: psycopg would quote every element of every array
    in Python, which costs more than the statement itself on a 500-row batch.
    """
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def upsert(
    model: type[models.Model],
    fields: Sequence[str],
    rows: list[tuple[Any, ...]],
    unique: Sequence[str],
    update: Sequence[str],
    latest: Sequence[str] = (),
    where: str = "",
) -> None:
    """Insert `rows`, or update `update` of the row already stored with the same `unique` values
    (and `latest` to the greater of the stored and the new value).

    On PostgreSQL one `INSERT ... SELECT FROM unnest ... ON CONFLICT DO UPDATE`; elsewhere
    multi-row `INSERT ... VALUES ... ON CONFLICT DO UPDATE`. Rows must be unique on
    `unique`; the fields not given get their database default (or NULL). `where` (SQL)
    limits the update to the stored rows it holds for.
    """
    condition = f" WHERE {where}" if where else ""
    if not rows:
        return
    concrete = [_concrete_field(model, name) for name in fields]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    conflict = ", ".join(quote(_concrete_field(model, n).column) for n in unique)
    replaced = [quote(_concrete_field(model, n).column) for n in update]
    kept = [quote(_concrete_field(model, n).column) for n in latest]
    if connection.vendor != "postgresql":
        assignments = ", ".join(
            [f"{c} = excluded.{c}" for c in replaced]
            + [f"{c} = MAX({table}.{c}, excluded.{c})" for c in kept]
        )
        _insert_values(
            model, concrete, rows, f"ON CONFLICT ({conflict}) DO UPDATE SET {assignments}{condition}"
        )
        return
    columns = [quote(f.column) for f in concrete]
    assignments = ", ".join(
        [f"{c} = EXCLUDED.{c}" for c in replaced]
        + [f"{c} = GREATEST({table}.{c}, EXCLUDED.{c})" for c in kept]
    )
    names = [f"c{i}" for i in range(len(concrete))]
    select, unnest = _pg_select(concrete, names), _pg_unnest(concrete)
    execute_unnest(
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {select} FROM unnest({unnest}) AS t({', '.join(names)}) "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {assignments}{condition}",
        _pg_arrays(concrete, rows),
    )


def insert_or_update(
    model: type[models.Model],
    fields: Sequence[str],
    rows: list[tuple[Any, ...]],
    unique: Sequence[str],
    set_sql: str,
    returning: str,
) -> list[tuple[Any, ...]]:
    """PostgreSQL only: insert `rows`, or run `SET set_sql` on the row already stored
    with the same `unique` values; the `returning` SQL's values of every row, new or not.

    One `INSERT ... SELECT FROM unnest ... ON CONFLICT DO UPDATE ... RETURNING`. Rows
    must be unique on `unique`.
    """
    if not rows:
        return []
    concrete = [_concrete_field(model, name) for name in fields]
    quote = connection.ops.quote_name
    names = [f"c{i}" for i in range(len(concrete))]
    conflict = ", ".join(quote(_concrete_field(model, n).column) for n in unique)
    return execute_unnest(
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in concrete)}) "
        f"SELECT {_pg_select(concrete, names)} FROM unnest({_pg_unnest(concrete)}) AS t({', '.join(names)}) "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {set_sql} RETURNING {returning}",
        _pg_arrays(concrete, rows),
    )


def update_rows(model: type[models.Model], objs: list[models.Model], fields: Sequence[str]) -> None:
    """Save `fields` of `objs` (already stored) at once.

    On PostgreSQL one `UPDATE ... FROM unnest(...)` joined on the primary key; elsewhere
    Django's `bulk_update` (whose CASE WHEN per row and field grows with the batch).
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, list(fields))
        return
    pk_field = model._meta.pk
    concrete = [pk_field, *(_concrete_field(model, name) for name in fields)]
    names = [f"c{i}" for i in range(len(concrete))]
    rows = [tuple(getattr(obj, f.attname) for f in concrete) for obj in objs]
    quote = connection.ops.quote_name
    assignments = ", ".join(
        f"{quote(f.column)} = v.{n}{'::jsonb' if isinstance(f, models.JSONField) else ''}"
        for f, n in zip(concrete[1:], names[1:], strict=True)
    )
    execute_unnest(
        f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "
        f"FROM unnest({_pg_unnest(concrete)}) AS v({', '.join(names)}) "
        f"WHERE t.{quote(pk_field.column)} = v.c0",
        _pg_arrays(concrete, rows),
    )


def insert_new(model: type[models.Model], fields: Sequence[str], rows: list[tuple[Any, ...]]) -> set[Any]:
    """Insert `rows` (values in `fields` order) into `model`'s table; return the new pks.

    Rows whose primary key is already stored are skipped. JSON values are Python objects.
    """
    if not rows:
        return set()
    concrete = [_concrete_field(model, name) for name in fields]
    pk = connection.ops.quote_name(model._meta.pk.column)
    if connection.vendor != "postgresql":
        return {r[0] for r in _insert_values(model, concrete, rows, f"ON CONFLICT DO NOTHING RETURNING {pk}")}
    table = connection.ops.quote_name(model._meta.db_table)
    columns = [connection.ops.quote_name(f.column) for f in concrete]
    names = [f"c{i}" for i in range(len(concrete))]
    select, unnest = _pg_select(concrete, names), _pg_unnest(concrete)
    rows_out = execute_unnest(
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {select} FROM unnest({unnest}) AS t({', '.join(names)}) "
        f"ON CONFLICT DO NOTHING RETURNING {pk}",
        _pg_arrays(concrete, rows),
    )
    return {r[0] for r in rows_out}


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert `rows` (values in `fields` order), all new (an automatic primary key); the
    fields not given get their database default (or NULL).

    On SQLite one multi-row `INSERT ... VALUES` without model instances; on PostgreSQL
    Django's `bulk_create` (one statement too).
    """
    if not rows:
        return
    concrete = [_concrete_field(model, name) for name in fields]
    if connection.vendor != "postgresql":
        _insert_values(model, concrete, rows, "")
        return
    attnames = [f.attname for f in concrete]
    model._default_manager.bulk_create([model(**dict(zip(attnames, row, strict=True))) for row in rows])


def _insert_values(
    model: type[models.Model], concrete: list[models.Field[Any, Any]], rows: list[tuple[Any, ...]], tail: str
) -> list[tuple[Any, ...]]:
    """SQLite: `INSERT INTO table (fields) VALUES (...), ... {tail}`, in chunks under its
    parameter limit; the rows the statements return (a `RETURNING` in `tail`).

    Values are prepared as Django saves them, without model instances or the ORM's
    compiler, which cost more than the statement on a small batch.
    """
    _check_omitted_are_filled(model, concrete)
    prepare = [_sqlite_preparer(f) for f in concrete]
    quote = connection.ops.quote_name
    head = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in concrete)}) VALUES "
    )
    placeholder = "(" + ", ".join(["%s"] * len(concrete)) + ")"
    per_chunk = max(1, _SQLITE_MAX_PARAMS // len(concrete))
    returned: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start : start + per_chunk]
            params: list[Any] = []
            for row in chunk:
                params.extend(p(v) for p, v in zip(prepare, row, strict=True))
            cursor.execute(f"{head}{', '.join([placeholder] * len(chunk))} {tail}", params)
            returned.extend(cursor.fetchall())  # none without a RETURNING
    return returned


# Fields whose values of these types SQLite stores as Django would: as they are.
_PLAIN: tuple[tuple[type[models.Field[Any, Any]], tuple[type, ...]], ...] = (
    (models.CharField, (str,)),
    (models.TextField, (str,)),
    (models.BooleanField, (bool,)),
    (models.IntegerField, (int,)),  # with BigIntegerField and AutoField
    (models.FloatField, (float, int)),
)


def _sqlite_preparer(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """`field.get_db_prep_save(value, connection)` on SQLite, quicker for the common cases.

    JSON as compact text (any JSON text reads back the same), aware datetimes as Django
    adapts them (UTC, naive), plain values as they are; anything else through Django.
    """

    def django(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    if isinstance(field, models.ForeignKey):
        return _sqlite_preparer(field.target_field)
    if isinstance(field, models.JSONField):
        return lambda value: None if value is None else dumps(value)
    if isinstance(field, models.DateTimeField):
        adapt = connection.ops.adapt_datetimefield_value
        return lambda value: (
            adapt(value) if isinstance(value, datetime) and value.tzinfo is not None else django(value)
        )
    for kind, types in _PLAIN:
        if isinstance(field, kind):
            return lambda value: value if value is None or type(value) in types else django(value)
    return django


def _check_omitted_are_filled(model: type[models.Model], concrete: list[models.Field[Any, Any]]) -> None:
    """Every field left out is filled by the database (a Python-side default would be skipped)."""
    given = {f.name for f in concrete}
    for field in model._meta.concrete_fields:
        if field.name in given or isinstance(field, models.AutoField):
            continue
        if not (field.null or field.has_db_default()):
            raise ValueError(f"{model.__name__}.{field.name}: not given, and the database does not fill it")


def copy_rows(model: type[models.Model], fields: Sequence[str], rows: list[tuple[Any, ...]]) -> set[Any]:
    """COPY `rows`, known to be new, into `model`'s table (PostgreSQL); their pks.

    Should one be stored after all (a concurrent batch), the savepoint is rolled back and
    the rows go through `insert_new`, which skips conflicts.
    """
    if not rows:
        return set()
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(_concrete_field(model, f).column) for f in fields)
    is_json = [isinstance(_concrete_field(model, f), models.JSONField) for f in fields]
    connection.ensure_connection()
    try:
        with (
            transaction.atomic(),
            psycopg.Cursor(connection.connection) as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(
                    [dumps(v) if j and v is not None else v for v, j in zip(row, is_json, strict=True)]
                )
    except (IntegrityError, psycopg.errors.UniqueViolation):
        return insert_new(model, fields, rows)
    return {r[0] for r in rows}
