"""Characters PostgreSQL cannot store, stored escaped: NUL and lone UTF-16 surrogates.

PostgreSQL's text and jsonb refuse the NUL character (U+0000) and strings that are not
valid Unicode (a lone surrogate, U+D800 to U+DFFF, which JSON can spell `"\\ud800"` and
a Python string can hold), and refuse them for the whole statement: one such value
would sink every event stored with it (SQLite would store them). Every ingest path
(`POST /api/ingest/events`, OTLP, the calls recorded on `/mcp` and `mcp_proxy`, server
logs, log files, directive runs) goes through `pipeline.triage`, which, before anything
else, stores each such character, wherever it is (a value or a key, however deep in a
JSON field), as the text of its JSON escape: NUL as the six characters `\\u0000`, a lone
surrogate as `\\ud800`. The event is kept, and its verdict names each field so changed
(`"escaped": [{"field", "reason"}]`); on both databases alike, so a deployment never
stores what another would have refused.

Cheap on the hot path: one orjson.dumps of the batch (C, no Python per value) tells
whether any such character is there at all, since orjson writes NUL as `\\u0000` and
refuses lone surrogates; only a batch holding one is walked, and only its events that do.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# The characters PostgreSQL refuses in text and jsonb.
_REFUSED = re.compile("[\x00\ud800-\udfff]")
# A JSON text spelling a surrogate, which orjson refuses when it is not half of a pair.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
MAX_NOTES = 20  # fields named per event; a value with thousands of NULs is named once
_INT64 = (-(2**63), 2**64 - 1)  # what orjson reads and writes


def _escaped(char: str) -> str:
    return f"\\u{ord(char):04x}"


def text(value: str) -> str:
    """`value` with each refused character written as its JSON escape (itself if none)."""
    return _REFUSED.sub(lambda m: _escaped(m.group()), value) if _REFUSED.search(value) else value


def _reason(value: str) -> str:
    found = sorted(set(_REFUSED.findall(value)))
    names = ", ".join("NUL (U+0000)" if c == "\x00" else f"a lone surrogate (U+{ord(c):04X})" for c in found)
    escapes = ", ".join(_escaped(c) for c in found)
    return f"holds {names}, which PostgreSQL cannot store: stored as the text {escapes}"


def _clean(value: Any) -> bool:
    try:
        return b"\\u0000" not in orjson.dumps(value, default=str)
    except (orjson.JSONEncodeError, TypeError):  # a lone surrogate, or a key orjson cannot write
        return False


def _walk(value: Any, path: str, notes: list[dict[str, str]]) -> Any:
    if isinstance(value, str):
        if not _REFUSED.search(value):
            return value
        if len(notes) < MAX_NOTES:
            notes.append({"field": text(path), "reason": _reason(value)})
        return text(value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            if isinstance(key, str) and _REFUSED.search(key):
                if len(notes) < MAX_NOTES:
                    notes.append(
                        {"field": text(f"{path}.{key}" if path else key), "reason": "its key " + _reason(key)}
                    )
                key = text(key)
            out[key] = _walk(item, f"{path}.{name}" if path else name, notes)
        return out
    if isinstance(value, list | tuple):
        return [_walk(item, f"{path}[{i}]", notes) for i, item in enumerate(value)]
    return value


def escape_batch(events: list[Any]) -> tuple[list[Any], dict[int, list[dict[str, str]]]]:
    """`events` with every refused character escaped, and per index the fields changed.

    The list itself when nothing is to be escaped (the usual case: one C call); otherwise
    a new list in which only the events that held one are new objects.
    """
    if _clean(events):
        return events, {}
    out = list(events)
    notes: dict[int, list[dict[str, str]]] = {}
    for index, event in enumerate(events):
        if _clean(event):
            continue
        found: list[dict[str, str]] = []
        out[index] = _walk(event, "", found)
        if found:
            notes[index] = found
    return out, notes


def escape(value: Any) -> Any:
    """`value` (any JSON value) with every refused character escaped."""
    return value if _clean(value) else _walk(value, "", [])


def _whole(text: str) -> int:
    number = int(text)
    if not _INT64[0] <= number <= _INT64[1]:
        raise ValueError("integer exceeds 64-bit range")
    return number


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(body: bytes, *, escape_now: bool = False) -> Any:
    """A JSON body as values, lone surrogates included (one event's fault, not the body's).

    orjson reads it, and refuses a lone surrogate escape with the whole body; a body
    that spells one is then read by the standard library, held to what orjson accepts
    otherwise (no NaN or Infinity, integers within 64 bits). Any other fault raises
    orjson's JSONDecodeError, as `jsontext.loads` does. `escape_now`: the surrogates are
    escaped as they are read (for a decoder, protobuf's, that cannot hold them until
    `pipeline.triage` would); the triage's answer then does not name them.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not _SURROGATE_ESCAPE.search(body):
            raise
        try:  # lone surrogates orjson refuses: the standard parser reads them, escaped next
            value = json.loads(body, parse_int=_whole, parse_constant=_refuse)
        except ValueError:
            raise exc from None
        return escape(value) if escape_now else value
