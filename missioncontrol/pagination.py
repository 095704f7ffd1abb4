"""Keyset pagination, newest first, that stays put while new rows arrive.

A cursor is the (time, id) of the row it continues from, not an offset: logs that
arrive while a client pages go before its first page and never shift what it reads
next. `previous` from a page walks back toward the newest rows, so a client holding
the first page's cursor can fetch exactly what arrived since.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import IntegerField, Model, Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from missioncontrol.jsontext import dumps, loads


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next: str | None
    previous: str | None

    def body(self, results: list[Any]) -> dict[str, Any]:
        return {"results": results, "next": self.next, "previous": self.previous}


class Keyset:
    """Pages of a queryset ordered by (`field` desc, primary key desc), or both ascending.

    `field` holds date-times, or integers (a timeline's sequence numbers).
    """

    def __init__(
        self, field: str, default_limit: int = 100, max_limit: int = 1000, *, ascending: bool = False
    ) -> None:
        self.field = field
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.ascending = ascending

    def limit(self, request: Request) -> int:
        raw = request.query_params.get("limit")
        if raw in (None, ""):
            return self.default_limit
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= self.max_limit:
            raise ValidationError({"limit": [f"Give a whole number from 1 to {self.max_limit}."]})
        return value

    def paginate(self, queryset: QuerySet[Any], request: Request) -> Page:
        rows, nxt, prev = self.page(queryset, self.limit(request), request.query_params.get("cursor"))
        url = request.build_absolute_uri()
        return Page(
            rows,
            replace_query_param(url, "cursor", nxt) if nxt else None,
            replace_query_param(url, "cursor", prev) if prev else None,
        )

    def page(
        self, queryset: QuerySet[Any], limit: int, cursor: str | None = None
    ) -> tuple[list[Any], str | None, str | None]:
        """`limit` rows from `cursor` (the start without one), and the next and previous cursors."""
        numeric = isinstance(queryset.model._meta.get_field(self.field), IntegerField)
        direction, position = self._decode(cursor, numeric) if cursor else ("n", None)
        backwards = direction == "p"
        qs = queryset.order_by(*self._order(backwards))
        if position is not None:
            qs = qs.filter(self._after(position, backwards))
        rows = list(qs[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        if backwards:
            rows.reverse()
        nxt = prev = None
        if rows:
            if more or backwards:
                nxt = self._encode("n", rows[-1])
            if more or not backwards:
                prev = self._encode("p", rows[0])
        return rows, nxt, prev

    def _order(self, backwards: bool) -> tuple[str, str]:
        sign = "" if backwards != self.ascending else "-"
        return f"{sign}{self.field}", f"{sign}pk"

    def _after(self, position: tuple[datetime | int, Any], backwards: bool) -> Q:
        value, pk = position
        op = "gt" if backwards != self.ascending else "lt"
        return Q(**{f"{self.field}__{op}": value}) | Q(**{self.field: value, f"pk__{op}": pk})

    def _encode(self, direction: str, row: Model) -> str:
        value: datetime | int = getattr(row, self.field)
        raw = dumps(
            {"d": direction, "v": value if isinstance(value, int) else value.isoformat(), "k": row.pk}
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _decode(self, cursor: str, numeric: bool) -> tuple[str, tuple[datetime | int, Any]]:
        """The direction and position of `cursor`, whose value is an integer when the field
        is numeric and an aware ISO date-time otherwise; anything else is a 400."""
        try:
            data = loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            direction, raw, pk = data["d"], data["v"], data["k"]
            if direction not in ("n", "p") or type(pk) not in (int, str):
                raise ValueError(direction)
            value: datetime | int
            if numeric:
                if type(raw) is not int or not -(2**63) <= raw < 2**63:
                    raise ValueError(raw)
                value = raw
            else:
                value = datetime.fromisoformat(raw)
                if value.tzinfo is None:
                    raise ValueError(raw)
                value.astimezone(UTC)
        except (ValueError, TypeError, KeyError, OverflowError):
            raise ValidationError(
                {"cursor": ["Invalid cursor: use the next or previous link as given."]}
            ) from None
        return direction, (value, pk)
