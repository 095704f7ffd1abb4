"""JSON text in and out of the hot paths (ingest bodies, live frames, COPY rows).

orjson: several times faster than the standard library on both sides, and strict
(NaN and Infinity are not JSON and are refused, as PostgreSQL's jsonb refuses them).
"""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: Any) -> str:
    """Compact JSON text; datetimes as ISO 8601, anything else unknown as str()."""
    return orjson.dumps(value, default=str).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)
