"""The OpenAPI description's shared pieces (served at /api/schema/, see SPECTACULAR_SETTINGS).

drf-spectacular describes the DRF views from their serializers and `@extend_schema`.
This module holds what they share: the error bodies, the query parameters of a
FilterSet (read from its filters, so a new filter is documented by itself) and the
schema of every `FilteredList`. Its postprocessing hooks add the error components and
the endpoints that are not DRF views: the bare ASGI ingest edge and the MCP gateway's
reconnect and tool calls here; an app documents its own (the log export) with
`register_operation` in its AppConfig.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import django_filters
from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_parameter_type
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from uritemplate import variables

from missioncontrol import filters
from missioncontrol.ingest import events
from missioncontrol.pagination import Keyset

if TYPE_CHECKING:
    from missioncontrol.filters import StrictFilterSet

Schema = dict[str, Any]


def ref(component: str) -> Schema:
    return {"$ref": f"#/components/schemas/{component}"}


# Error bodies, added as components by `add_components`.
COMPONENTS: dict[str, Schema] = {
    "FieldErrors": {
        "type": "object",
        "description": "Each offending parameter or field with its reasons: "
        '`{"levels": ["Select a valid choice. TRACE is not one of the available choices."]}`; '
        'a field made of fields has their errors under it (`{"log_filters": {"levels": [...]}}`), '
        'and a body that is not JSON at all is `{"detail": "JSON parse error - ..."}`.',
        "additionalProperties": {
            "anyOf": [
                {"type": "array", "items": {"type": ["string", "object"]}},
                {"type": "object"},
                {"type": "string"},
            ]
        },
    },
    "Detail": {
        "type": "object",
        "description": "What went wrong, in words.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "Error": {
        "description": "The one offending field (or header, or null for the whole request) and why; "
        'a body that is not JSON at all is `{"detail": "JSON parse error - ..."}`.',
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"field": {"type": ["string", "null"]}, "reason": {"type": "string"}},
                        "required": ["field", "reason"],
                    }
                },
                "required": ["error"],
            },
            {"$ref": "#/components/schemas/Detail"},
        ],
    },
    "Limited": {
        "type": "object",
        "description": "A limit was passed: which, why, and the seconds to wait (also in Retry-After).",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "limit": {"type": "string"},
                    "reason": {"type": "string"},
                    "retry_after": {"type": "integer"},
                },
                "required": ["limit", "reason", "retry_after"],
            }
        },
        "required": ["error"],
    },
}

FIELD_ERRORS = OpenApiResponse(ref("FieldErrors"), description="A parameter or field is not usable.")
UNAUTHORIZED = OpenApiResponse(ref("Detail"), description="Missing, wrong or expired credentials.")
SIGN_IN_LIMITED = OpenApiResponse(
    ref("Limited"), description="Too many sign-in attempts for the username or address (rate_limits.login)."
)
SIGN_IN_BUSY = OpenApiResponse(ref("Limited"), description="Every password-check slot is busy; retry soon.")
NOT_FOUND = OpenApiResponse(ref("Detail"), description="No such object.")
FORBIDDEN = OpenApiResponse(ref("Detail"), description="The user's role does not allow it.")


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ref("Error"), description=description)


# --- FilterSet parameters -------------------------------------------------------------

_TIME_BOUNDS = {"gte": "at or after", "lte": "at or before"}


def _filter_schema(name: str, f: django_filters.Filter) -> tuple[Schema, str, dict[str, Any]]:
    """(schema, description, style keywords) of one filter's query parameter."""
    choices = [value for value, _label in f.extra.get("choices", ())]
    field = f.field_name
    if isinstance(f, django_filters.BaseCSVFilter):
        item: Schema = {"type": "string", "enum": choices} if choices else {"type": "string"}
        described = f"`{field}` is any of these, comma-separated (`{name}=a,b`)."
        return {"type": "array", "items": item}, described, {"style": "form", "explode": False}
    if isinstance(f, filters.SinceFilter):
        return (
            {"type": "string", "pattern": filters._DURATION.pattern, "examples": ["24h"]},
            f"`{field}` within this long before now: a number and s, m, h, d or w (`30m`, `24h`, `7d`).",
            {},
        )
    if isinstance(f, django_filters.IsoDateTimeFilter):
        bound = _TIME_BOUNDS.get(f.lookup_expr, f.lookup_expr)
        return {"type": "string", "format": "date-time"}, f"`{field}` {bound} this ISO 8601 time.", {}
    if isinstance(f, filters.StrictBooleanFilter):
        negated = " is null" if f.lookup_expr == "isnull" else ""
        return {"type": "boolean"}, f"`{field}`{negated}: true or false.", {}
    if isinstance(f, filters.TextSearchFilter):
        return {"type": "string"}, "Full-text search (websearch syntax on PostgreSQL).", {}
    if choices:
        return {"type": "string", "enum": choices}, f"`{field}` is this.", {}
    lookup = "" if f.lookup_expr == "exact" else f" ({f.lookup_expr})"
    return {"type": "string"}, f"`{field}`{lookup} is this.", {}


def filter_parameters(filterset_class: type[StrictFilterSet]) -> list[OpenApiParameter]:
    """One query parameter per filter of `filterset_class`."""
    parameters = []
    for name, f in filterset_class.base_filters.items():
        schema, description, style = _filter_schema(name, f)
        parameters.append(OpenApiParameter(name, schema, description=description, **style))
    return parameters


def page_parameters(keyset: Keyset) -> list[OpenApiParameter]:
    limit = {"type": "integer", "minimum": 1, "maximum": keyset.max_limit, "default": keyset.default_limit}
    return [
        OpenApiParameter("cursor", str, description="Where to continue: from a `next` or `previous` link."),
        OpenApiParameter("limit", limit, description="Rows per page."),
    ]


def as_dict(parameter: OpenApiParameter) -> Schema:
    """A parameter as the schema holds it, for the hand-written path items below."""
    assert isinstance(parameter.type, dict)
    return build_parameter_type(
        name=parameter.name,
        schema=parameter.type,
        location=parameter.location,
        required=parameter.required,
        description=parameter.description,
        style=parameter.style,
        explode=parameter.explode,
    )


@functools.cache
def page_of(row: type[serializers.Serializer[Any]]) -> type[serializers.Serializer[Any]]:
    """The serializer of a keyset page of `row`s: `{"results", "next", "previous"}`."""
    name = row.__name__.removesuffix("Serializer")
    fields = {
        "results": row(many=True),
        "next": serializers.URLField(allow_null=True, help_text="The older rows, or null at the end."),
        "previous": serializers.URLField(
            allow_null=True, help_text="The newer rows (those that arrived since, on the first page)."
        ),
        "__doc__": f"A page of {name} rows, newest first.",
    }
    return type(f"{name}PageSerializer", (serializers.Serializer,), fields)


PAGE_DESCRIPTION = (
    "Newest first, a page at a time: `next` leads to older rows, `previous` to newer ones "
    "(on the first page, those that arrived since). A parameter the list does not know is a 400."
)


class FilteredListSchema(AutoSchema):
    """A FilteredList: its FilterSet's parameters, pages of its `row_serializer`, its 400 and 404."""

    def get_override_parameters(self) -> list[Any]:
        view: Any = self.view
        return [
            *super().get_override_parameters(),
            *filter_parameters(view.filterset_class),
            *page_parameters(view.keyset),
        ]

    def get_description(self) -> str:
        # The list's own docstring, if any, not FilteredList's (that one is for developers).
        own = type(self.view).__dict__.get("__doc__")
        return inspect.cleandoc(own) if own else PAGE_DESCRIPTION

    def get_operation_id(self) -> str:
        # `threads_list`, not `threads_retrieve` (a page is one object); a list under an
        # object says so: `permissions_audit_of_thread_list`.
        under = [f"of_{name.removesuffix('_id')}" for name in variables(self.path)]
        return "_".join([super().get_operation_id().removesuffix("_retrieve"), *under, "list"])

    def get_response_serializers(self) -> Any:
        view: Any = self.view
        responses: dict[int, Any] = {200: page_of(view.row_serializer), 400: FIELD_ERRORS}
        if variables(self.path):  # a list under an object, such as one thread's checks
            responses[404] = NOT_FOUND
        return responses


class ConstantField(serializers.CharField):
    """A string that is always `value`, such as an event's `type`: documented as a `const`."""

    def __init__(self, value: str, **kwargs: Any) -> None:
        self.value = value
        super().__init__(**kwargs)


class ConstantFieldExtension(OpenApiSerializerFieldExtension):
    target_class = ConstantField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> Schema:
        return {"type": "string", "const": self.target.value}


class KindsFieldExtension(OpenApiSerializerFieldExtension):
    """The graph's `kind` parameter: some of its kinds, repeated or comma-separated."""

    target_class = "missioncontrol.api.graph.KindsField"

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> Schema:
        return {"type": "array", "items": {"type": "string", "enum": list(self.target.choices)}}


# --- Hooks: components and the endpoints that are not DRF views ------------------------


def add_components(result: Schema, generator: Any, request: Any, public: bool) -> Schema:
    """The error bodies and the ingest key's security scheme."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(COMPONENTS)
    components.setdefault("securitySchemes", {})["ingestKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An ingest key (`manage.py create_ingest_key`), bound to one server or to none.",
    }
    return result


def any_or_null(result: Schema, generator: Any, request: Any, public: bool) -> Schema:
    """A nullable JSON field is documented `oneOf: [{}, {"type": "null"}]`, which null
    matches twice (so it fails `oneOf`): it is any value, null included, `{}`."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            choices = node.get("oneOf")
            if isinstance(choices, list) and {} in choices and {"type": "null"} in choices:
                node = {k: v for k, v in node.items() if k != "oneOf"}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(result)  # type: ignore[no-any-return]


# Endpoints that are not DRF views, documented by the app that serves them (in its AppConfig).
_operations: dict[tuple[str, str], tuple[Callable[[], Schema], bool]] = {}


def register_operation(
    path: str, method: str, build: Callable[[], Schema], *, signed_in: bool = True
) -> None:
    """Document `method` on `path`, an endpoint drf-spectacular cannot see: `build()` is its
    OpenAPI operation. A signed-in one takes the API's credentials and may answer 401 and 403."""
    _operations[(path, method)] = (build, signed_in)


def add_plain_endpoints(result: Schema, generator: Any, request: Any, public: bool) -> Schema:
    """Path items of the endpoints drf-spectacular cannot see: they are not DRF views."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(_ingest_components())
    paths = result.setdefault("paths", {})
    paths["/api/ingest/events"] = {"post": _ingest_operation()}
    paths["/api/permissions/compliance"] = {"get": _compliance_operation()}
    paths["/api/mcps/{mcp_id}/reconnect"] = {"post": _reconnect_operation()}
    paths["/api/mcps/{mcp_id}/tools/{tool}/call"] = {"post": _call_tool_operation()}
    for path in ("/api/mcps/{mcp_id}/reconnect", "/api/mcps/{mcp_id}/tools/{tool}/call"):
        for operation in paths[path].values():
            operation["security"] = SIGNED_IN
    for (path, method), (build, signed_in) in _operations.items():
        operation = build()
        if signed_in:
            operation["security"] = SIGNED_IN
        paths.setdefault(path, {})[method] = operation
    _add_access_answers(paths)
    result["paths"] = dict(sorted(paths.items()))
    return result


# A session, a JWT or an API token (missioncontrol/authentication.py).
SIGNED_IN: list[Schema] = [{"apiToken": []}, {"jwtAuth": []}, {"cookieAuth": []}]
_UNAUTHORIZED: Schema = {
    "description": "No valid credentials: a session, `Authorization: Bearer <JWT or API token>`.",
    "headers": {"WWW-Authenticate": {"description": "`Bearer realm=...`", "schema": {"type": "string"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Detail"}}},
}
_FORBIDDEN: Schema = {
    "description": "The user's role does not allow it (or a session's unsafe request lacks its CSRF token).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Detail"}}},
}


def _add_access_answers(paths: Schema) -> None:
    """Every operation that needs a signed-in user may answer 401 and 403 (not ingest: its key)."""
    for item in paths.values():
        for operation in item.values():
            schemes = {name for option in operation.get("security") or [] for name in option}
            if not isinstance(operation, dict) or not schemes & {"apiToken", "jwtAuth"}:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", _UNAUTHORIZED)
            responses.setdefault("403", _FORBIDDEN)


def json_response(schema: Schema, description: str, **headers: Schema) -> Schema:
    response: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def header(description: str, schema: Schema | None = None) -> Schema:
    return {"description": description, "schema": schema or {"type": "string"}}


RETRY_AFTER = header("Seconds to wait before trying again.", {"type": "integer"})


def _path(name: str, description: str) -> Schema:
    return {
        "in": "path",
        "name": name,
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


# The ingest contract, from missioncontrol/ingest/events.py's own constants.
_ID = {"type": "string", "minLength": 1, "maxLength": events.MAX_ID}
_OBJECT = {"type": "object", "additionalProperties": {}}
_COUNT = {"type": "integer", "minimum": 0}
_AMOUNT = {"type": "number", "minimum": 0}
_MCP_ID = {**_ID, "description": "Required unless the ingest key is bound to a server (then it must match)."}


def _event(kind: str, description: str, properties: Schema, required: list[str]) -> Schema:
    return {
        "type": "object",
        "description": description,
        "properties": {
            "id": {**_ID, "description": "Unique per event: a repeat is answered `duplicate`, stored once."},
            "type": {"type": "string", "const": kind},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "ISO 8601; without an offset it is UTC.",
            },
            **properties,
        },
        "required": ["id", "type", "timestamp", *required],
    }


def _ingest_components() -> dict[str, Schema]:
    kinds = {
        "thread.started": _event(
            "thread.started",
            "An agent run began (possibly as the child of another).",
            {
                "thread_id": _ID,
                "parent_id": _ID,
                "mcp_id": _MCP_ID,
                "user_input": {"type": "string"},
                "execution_context": _OBJECT,
                "session_id": {
                    **_ID,
                    "description": "The client session it runs in (listed at /api/sessions); "
                    "its first thread starts it.",
                },
            },
            ["thread_id"],
        ),
        "thread.step": _event(
            "thread.step",
            "One step of a thread's timeline; a later report of the same sequence updates it.",
            {
                "thread_id": _ID,
                "sequence": _COUNT,
                "step_type": {"type": "string", "enum": list(events.STEP_TYPES)},
                "description": {"type": "string"},
                "details": _OBJECT,
                "status": {"type": "string", "enum": list(events.STEP_STATUSES), "default": "complete"},
                "duration_ms": _AMOUNT,
                "memory_usage": {**_COUNT, "description": "bytes"},
                "cpu_usage": {**_AMOUNT, "description": "percent"},
            },
            ["thread_id", "sequence", "step_type"],
        ),
        "thread.message": _event(
            "thread.message",
            "One message of a thread's LLM transcript (`assistant` is taken as `agent`).",
            {
                "thread_id": _ID,
                "role": {"type": "string", "enum": list(events.ROLES)},
                "content": {"type": "string"},
                "metadata": _OBJECT,
            },
            ["thread_id", "role"],
        ),
        "thread.ended": _event(
            "thread.ended",
            "A thread finished; a thread that already ended keeps its first final status.",
            {
                "thread_id": _ID,
                "status": {"type": "string", "enum": list(events.FINAL_STATUSES)},
                "memory_usage": {**_COUNT, "description": "bytes"},
                "cpu_usage": {**_AMOUNT, "description": "percent"},
            },
            ["thread_id", "status"],
        ),
        "log": _event(
            "log",
            "A structured log line (`warning`, `critical`, `fatal` and lower-case levels are taken too).",
            {
                "level": {"type": "string", "enum": list(events.LEVELS)},
                "service": {"type": "string", "minLength": 1, "maxLength": 100},
                "thread_id": _ID,
                "mcp_id": _MCP_ID,
                "message": {"type": "string", "minLength": 1},
                "context": _OBJECT,
                "exception": {"type": "string"},
            },
            ["level", "service", "message"],
        ),
        "permission.check": _event(
            "permission.check",
            "A permission check and its verdict; severity defaults to critical for an escalation, "
            "warn for a denial, info otherwise.",
            {
                "thread_id": _ID,
                "user_id": _ID,
                "resource": {"type": "string", "minLength": 1, "maxLength": 500},
                "action": {"type": "string", "enum": list(events.ACTIONS)},
                "granted": {"type": "boolean"},
                "reason": {"type": "string"},
                "rules_checked": {"type": "array", "items": {}},
                "inheritance_chain": {"type": "array", "items": {"type": "string"}},
                "escalation_detected": {"type": "boolean", "default": False},
                "severity": {"type": "string", "enum": list(events.SEVERITIES)},
            },
            ["thread_id", "resource", "action", "granted"],
        ),
        "session.ended": _event(
            "session.ended",
            "A client session ended (its threads keep their own statuses).",
            {"session_id": _ID},
            ["session_id"],
        ),
    }
    assert set(kinds) == set(events.EVENT_TYPES), "describe every event type of the ingest contract"
    names = {kind: "Ingest" + "".join(p.capitalize() for p in kind.split(".")) for kind in kinds}
    return {
        **{names[kind]: schema for kind, schema in kinds.items()},
        "IngestEvent": {
            "oneOf": [ref(name) for name in names.values()],
            "discriminator": {
                "propertyName": "type",
                "mapping": {kind: f"#/components/schemas/{name}" for kind, name in names.items()},
            },
        },
        "IngestBatch": {
            "type": "object",
            "properties": {
                "events": {
                    "type": "array",
                    "items": ref("IngestEvent"),
                    "maxItems": settings.INGEST_MAX_EVENTS,
                }
            },
            "required": ["events"],
        },
        "IngestVerdict": {
            "type": "object",
            "description": "What became of one event; `field` and `reason` only for a rejected one.",
            "properties": {
                "index": {"type": "integer", "description": "Its place in the batch."},
                "id": {"description": "Its id, as sent."},
                "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
                "field": {"type": ["string", "null"]},
                "reason": {"type": ["string", "null"]},
                "escaped": {
                    "type": "array",
                    "description": "Fields holding a character PostgreSQL cannot store (NUL, a lone "
                    "surrogate), stored as the text of its JSON escape; absent when none.",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
                        "required": ["field", "reason"],
                    },
                },
            },
            "required": ["index", "id", "status"],
        },
        "IngestResult": {
            "type": "object",
            "properties": {
                "accepted": _COUNT,
                "duplicates": _COUNT,
                "rejected": _COUNT,
                "results": {"type": "array", "items": ref("IngestVerdict")},
            },
            "required": ["accepted", "duplicates", "rejected", "results"],
        },
    }


def _ingest_operation() -> Schema:
    return {
        "operationId": "ingest_events_create",
        "tags": ["ingest"],
        "summary": "Push a batch of events",
        "description": (
            "Validates and stores a batch in one transaction, then tells live subscribers. Each event "
            "is judged on its own: the answer holds a verdict per event, in order. A bare ASGI "
            "endpoint, outside Django's request cycle. The body may be up to "
            f"{settings.INGEST_MAX_BODY_BYTES} bytes."
        ),
        "security": [{"ingestKey": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("IngestBatch")}}},
        "responses": {
            "200": json_response(ref("IngestResult"), "Stored: a verdict per event (some may be rejected)."),
            "202": json_response(
                ref("IngestResult"),
                "The database is unreachable: the accepted events are kept durably in the ingest spool "
                "(the body also has `spooled: true`) and stored once it is back.",
            ),
            "400": json_response(
                {"oneOf": [ref("IngestResult"), ref("Error")]},
                "Every event was rejected (the verdicts), or the body is not JSON, not an object with "
                "an `events` array, or its Content-Length is not an integer (an Error).",
            ),
            "401": json_response(
                ref("Error"),
                "A missing, unknown or revoked ingest key.",
                **{"WWW-Authenticate": header("`Bearer`")},
            ),
            "413": json_response(ref("Error"), "The body or the batch is over the limits."),
            "503": json_response(
                ref("Error"),
                "The database is unavailable and the batch cannot be spooled (the spool is full, or the "
                "key was not seen recently); retry later.",
                **{"Retry-After": RETRY_AFTER},
            ),
        },
    }


def _compliance_operation() -> Schema:
    def query(name: str, description: str, **schema: Any) -> Schema:
        return {
            "in": "query",
            "name": name,
            "schema": {"type": "string", **schema},
            "description": description,
        }

    return {
        "operationId": "permissions_compliance_retrieve",
        "tags": ["permissions"],
        "summary": "Compliance report",
        "description": (
            "Checks, grants and denials in [from, to): totals, by subject, by resource, the top "
            "denials, the escalations and the checks per day."
        ),
        "parameters": [
            query("from", "ISO 8601 date or datetime (default: `to` minus 7 days)."),
            query("to", "ISO 8601 date or datetime, excluded (default: now)."),
            query("format", "JSON (default) or CSV (one table, a `section` column).", enum=["json", "csv"]),
        ],
        "responses": {
            "200": {
                "description": "The report.",
                "content": {
                    "application/json": {"schema": _OBJECT},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "400": json_response(ref("FieldErrors"), "A parameter is not usable."),
        },
    }


_GATEWAY_DOWN = json_response(
    ref("Error"), "The gateway or the server is not reachable now.", **{"Retry-After": RETRY_AFTER}
)
_GATEWAY_SLOW = json_response(ref("Error"), "No answer in time.")
# A tool call that may or may not have run, and the thread that records it.
_OUTCOME_UNKNOWN: Schema = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"field": {"type": ["string", "null"]}, "reason": {"type": "string"}},
            "required": ["field", "reason"],
        },
        "outcome": {"type": "string", "enum": ["unknown"]},
        "thread_id": {"type": "string"},
    },
    "required": ["error"],
}


def _reconnect_operation() -> Schema:
    answer = {
        "type": "object",
        "properties": {"mcp_id": {"type": "string"}, "reconnecting": {"type": "boolean", "const": True}},
        "required": ["mcp_id", "reconnecting"],
    }
    return {
        "operationId": "mcps_reconnect_create",
        "tags": ["mcps"],
        "summary": "Reconnect a server",
        "description": "Asks the gateway to drop the server's session and connect again.",
        "parameters": [_path("mcp_id", "The server's slug.")],
        "responses": {
            "202": json_response(answer, "The gateway is reconnecting."),
            "404": json_response(ref("Error"), "No such server, or not one the gateway manages."),
            "503": _GATEWAY_DOWN,
            "504": _GATEWAY_SLOW,
        },
    }


def _call_tool_operation() -> Schema:
    body = {
        "type": "object",
        "properties": {
            "arguments": {**_OBJECT, "description": "Checked against the tool's input schema."},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "description": "Seconds (default 60)."},
            "parent_thread_id": {
                "type": "string",
                "description": "The thread this call acts for: the call inherits its grants.",
            },
        },
    }
    result = {
        "type": "object",
        "properties": {
            "mcp_id": {"type": "string"},
            "tool": {"type": "string"},
            "thread_id": {"type": "string", "description": "The thread the call was recorded on."},
            "result": {
                **_OBJECT,
                "description": "The MCP CallToolResult: content, structuredContent, isError.",
            },
        },
        "required": ["mcp_id", "tool", "thread_id", "result"],
    }
    stream = {
        "schema": {"type": "string"},
        "example": '{"type": "progress", "progress": 1, "total": 3, "message": "cloning"}\n'
        '{"type": "result", "mcp_id": "git", "tool": "git_log", "result": {"content": []}}\n',
    }
    return {
        "operationId": "mcps_tools_call_create",
        "tags": ["mcps"],
        "summary": "Call a tool",
        "description": (
            "Calls the tool through the gateway. With `stream=1` the answer is NDJSON: a "
            '`{"type": "progress", "progress", "total", "message"}` line per progress notification, '
            'then `{"type": "result", ...}` or `{"type": "error", "status", "field", "reason"}` '
            '(with `"outcome": "unknown"` when the call may or may not have run).'
        ),
        "parameters": [
            _path("mcp_id", "The server's slug."),
            _path("tool", "The tool's name on that server."),
            {
                "in": "query",
                "name": "stream",
                "schema": {"type": "string", "enum": ["1", "true"]},
                "description": "Stream progress as NDJSON.",
            },
        ],
        "requestBody": {"content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {
                "description": "The tool's result (or the NDJSON stream).",
                "content": {"application/json": {"schema": result}, "application/x-ndjson": stream},
            },
            "400": json_response(ref("Error"), "The body, the arguments or the timeout is not usable."),
            "403": json_response(ref("Error"), "A policy rule denies the call; it was not forwarded."),
            "404": json_response(ref("Error"), "No such server or tool."),
            "502": json_response(
                _OUTCOME_UNKNOWN,
                "The call was sent and its answer lost (its server or the gateway went away): it may "
                "or may not have run. Not to be retried blindly.",
            ),
            "503": json_response(
                ref("Error"),
                "The gateway or the server is not reachable now; the call was not sent (safe to retry).",
                **{"Retry-After": RETRY_AFTER},
            ),
            "504": json_response(_OUTCOME_UNKNOWN, "No answer in time: the call may or may not have run."),
        },
    }
