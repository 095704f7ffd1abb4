"""Durations and percentiles over querysets, with one answer on both databases.

PostgreSQL computes percentiles itself (`percentile_cont ... WITHIN GROUP`), so only
one row per group leaves the database; SQLite has no such aggregate, so there the
values of each group are read and interpolated here, with percentile_cont's own
definition (linear between the two nearest ranks), so both give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models
from django.db.models import Count, F, Func

PERCENTILES = (0.5, 0.95, 0.99)


class Milliseconds(Func):
    """`end - start` in milliseconds, as a float, for two datetime columns."""

    output_field = models.FloatField()
    arity = 2

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="(EXTRACT(EPOCH FROM (%(expressions)s)) * 1000.0)",
            arg_joiner=" - ",
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Exact to the microsecond: whole seconds from strftime, the fraction from the
        # stored text ('YYYY-MM-DD HH:MM:SS.ffffff'); julianday() would be off by ~50 µs.
        (end, end_params), (start, start_params) = (
            compiler.compile(e) for e in self.get_source_expressions()
        )
        sql = (
            f"ROUND((CAST(strftime('%%s', {end}) AS INTEGER)"
            f" - CAST(strftime('%%s', {start}) AS INTEGER)) * 1000.0"
            f" + (CAST(substr({end}, 20) AS REAL) - CAST(substr({start}, 20) AS REAL)) * 1000.0, 3)"
        )
        return sql, [*end_params, *start_params, *end_params, *start_params]


class PercentileCont(models.Aggregate):
    """PostgreSQL's percentile_cont over several fractions at once: an array of floats."""

    function = "percentile_cont"
    template = "%(function)s(%(fractions)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False

    def __init__(self, expression: Any, fractions: Sequence[float], **extra: Any) -> None:
        from django.contrib.postgres.fields import ArrayField

        array = "ARRAY[" + ",".join(f"{float(p)!r}::float8" for p in fractions) + "]"
        super().__init__(expression, fractions=array, output_field=ArrayField(models.FloatField()), **extra)


class PercentileDisc(models.Aggregate):
    """PostgreSQL's percentile_disc at one fraction: the nearest-rank percentile."""

    function = "percentile_disc"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=f"{float(fraction)!r}::float8", **extra)


def percentile(ordered: Sequence[float], p: float) -> float:
    """percentile_cont of sorted `ordered` at fraction `p` (0..1)."""
    if not ordered:
        raise ValueError("no values")
    position = p * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def nearest_rank(values: Iterable[float], p: float) -> float:
    """The smallest value >= the fraction `p` of `values` (the nearest-rank percentile)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def _summary(count: int, points: Sequence[float]) -> dict[str, Any]:
    return {
        "count": count,
        **{f"p{round(p * 100)}": round(v, 3) for p, v in zip(PERCENTILES, points, strict=True)},
    }


def percentiles_by(queryset: models.QuerySet[Any], value: Any, group: Any) -> dict[str, dict[str, Any]]:
    """{group: {"count", "p50", "p95", "p99"}} of the expression `value` per `group` expression.

    Rows whose value or group is null are left out; groups come sorted by name.
    """
    rows = (
        queryset.order_by()
        .annotate(_value=value, _group=group)
        .filter(_value__isnull=False, _group__isnull=False)
    )
    out: dict[str, dict[str, Any]] = {}
    if connection.vendor == "postgresql":
        found = rows.values("_group").annotate(n=Count("*"), points=PercentileCont(F("_value"), PERCENTILES))
        for row in found:
            out[str(row["_group"])] = _summary(row["n"], row["points"])
    else:
        groups: dict[str, list[float]] = {}
        for key, v in rows.values_list("_group", "_value").iterator(chunk_size=5000):
            groups.setdefault(str(key), []).append(float(v))
        for key, values in groups.items():
            values.sort()
            out[key] = _summary(len(values), [percentile(values, p) for p in PERCENTILES])
    return dict(sorted(out.items()))


def nearest_rank_by(
    queryset: models.QuerySet[Any], value: Any, group: Any, p: float
) -> dict[str, tuple[int, float]]:
    """{group: (count, nearest-rank percentile `p` of `value`)} in one query.

    PostgreSQL ranks in the database (percentile_disc is the nearest rank), so one row
    per group leaves it; SQLite sends the values and they are ranked here. Rows whose
    value or group is null are left out.
    """
    rows = (
        queryset.order_by()
        .annotate(_value=value, _group=group)
        .filter(_value__isnull=False, _group__isnull=False)
    )
    if connection.vendor == "postgresql":
        found = rows.values("_group").annotate(
            n=Count("*"), point=PercentileDisc(F("_value"), p, output_field=models.FloatField())
        )
        return {str(row["_group"]): (row["n"], float(row["point"])) for row in found}
    groups: dict[str, list[float]] = {}
    for key, v in rows.values_list("_group", "_value").iterator(chunk_size=5000):
        groups.setdefault(str(key), []).append(float(v))
    return {key: (len(values), nearest_rank(values, p)) for key, values in groups.items()}
