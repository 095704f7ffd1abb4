"""Log export as JSON Lines, one JSON array, or CSV, streamed in keyset chunks.

Memory stays constant however many rows match: rows are read `CHUNK` at a time, after
the (timestamp, id) of the last one sent, and each chunk is written out before the next
is read. The stream is an async iterator, so daphne sends it as it is produced.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import Q, QuerySet

from logs.models import LogEntry
from missioncontrol.jsontext import dumps
from missioncontrol.spreadsheet import cell

CHUNK = 2000
COLUMNS = ("id", "timestamp", "level", "service", "thread_id", "mcp_id", "message", "context", "exception")
FORMATS = {"jsonl": "application/x-ndjson", "json": "application/json", "csv": "text/csv; charset=utf-8"}


def _chunk(queryset: QuerySet[LogEntry], after: tuple[Any, str] | None) -> list[LogEntry]:
    qs = queryset.order_by("-timestamp", "-id")
    if after is not None:
        ts, pk = after
        qs = qs.filter(Q(timestamp__lt=ts) | Q(timestamp=ts, id__lt=pk))
    return list(qs[:CHUNK])


def _jsonl(rows: Iterable[LogEntry]) -> str:
    return "".join(dumps(row.as_event()) + "\n" for row in rows)


def _json_array_writer() -> Callable[[Iterable[LogEntry]], str]:
    """Rows as the items of one JSON array (the caller writes its brackets)."""
    first = True

    def write(rows: Iterable[LogEntry]) -> str:
        nonlocal first
        items = [dumps(row.as_event()) for row in rows]
        text = ("" if first else ",\n") + ",\n".join(items)
        first = first and not items
        return text

    return write


def _csv_writer() -> tuple[Callable[[Iterable[LogEntry]], str], str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def write(rows: Iterable[LogEntry]) -> str:
        for row in rows:
            event = row.as_event()
            event["context"] = dumps(event["context"])
            writer.writerow(["" if event[c] is None else cell(event[c]) for c in COLUMNS])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(COLUMNS)
    header = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return write, header


async def stream(queryset: QuerySet[LogEntry], fmt: str) -> AsyncIterator[str]:
    """The rows of `queryset`, newest first, as `fmt` ("jsonl", "json" or "csv") text pieces."""
    if fmt == "csv":
        write, header = _csv_writer()
        yield header
    elif fmt == "json":
        write = _json_array_writer()
        yield "["
    else:
        write = _jsonl
    after = None
    while True:
        rows = await sync_to_async(_chunk)(queryset, after)
        if rows:
            yield write(rows)
        if len(rows) < CHUNK:
            break
        after = (rows[-1].timestamp, rows[-1].id)
    if fmt == "json":
        yield "]\n"
