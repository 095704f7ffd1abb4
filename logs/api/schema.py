"""The OpenAPI operation of the log export (GET /api/logs/export), a streamed plain view."""

from __future__ import annotations

from logs.api.views import ExportFilterSet
from logs.export import FORMATS
from missioncontrol.openapi import Schema, as_dict, filter_parameters, header, json_response, ref


def export_operation() -> Schema:
    fmt = {
        "in": "query",
        "name": "format",
        "schema": {"type": "string", "enum": list(FORMATS), "default": "jsonl"},
        "description": "JSON Lines (a LogEvent per line), one JSON array of LogEvents, or CSV "
        "(a header row, then a row per log).",
    }
    text = {"schema": {"type": "string"}}
    bodies = {FORMATS[name].split(";")[0]: text for name in FORMATS}
    bodies["application/json"] = {"schema": {"type": "array", "items": ref("LogEvent")}}
    return {
        "operationId": "logs_export_retrieve",
        "tags": ["logs"],
        "summary": "Export logs",
        "description": "Every log the filters match, newest first, streamed as a file.",
        "parameters": [fmt, *(as_dict(p) for p in filter_parameters(ExportFilterSet))],
        "responses": {
            "200": {
                "description": "The file (`Content-Disposition: attachment`).",
                "headers": {"Content-Disposition": header('`attachment; filename="logs-<time>.<format>"`')},
                "content": bodies,
            },
            "400": json_response(ref("FieldErrors"), "A parameter (or the format) is not usable."),
        },
    }
