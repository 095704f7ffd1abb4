"""The OpenAPI schema at /api/schema/: served, valid, complete, and true to the answers."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.validation import validate_schema
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

from missioncontrol.ingest.events import EVENT_TYPES, Source
from missioncontrol.ingest.pipeline import ingest
from missioncontrol.listing import FilteredList
from tests.conftest import event, post_batch, superuser_now

# The schema's own pages describe nothing of the API.
UNDOCUMENTED = {"api-schema", "api-docs"}
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    response = schema_reader().get("/api/schema/?format=json")
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def api_routes() -> dict[str, URLPattern]:
    """Every route under /api/ as `/api/threads/{}` (parameters unnamed) -> its pattern."""
    found: dict[str, URLPattern] = {}

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif route.startswith("/api/") and pattern.name not in UNDOCUMENTED:
                found[re.sub(r"<[^>]+>", "{}", route)] = pattern

    walk(get_resolver().url_patterns, "/")
    return found


def unnamed(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def documented_methods(pattern: URLPattern) -> set[str]:
    """The methods a DRF view answers; none known for a plain Django view."""
    actions = getattr(pattern.callback, "actions", None)
    if actions is not None:
        return set(actions) & set(METHODS)
    view = getattr(pattern.callback, "cls", None)
    return {m for m in METHODS if hasattr(view, m)} if view else set()


def strict(schema: Any) -> Any:
    """`schema` refusing keys it does not name, so an undocumented field fails validation."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def assert_documented(schema: dict[str, Any], path: str, method: str, response: Any) -> None:
    """The answer's body is what the schema says this operation answers with its status."""
    answers = schema["paths"][path][method]["responses"]
    assert str(response.status_code) in answers, f"{method} {path} answered an undocumented status"
    body_schema = answers[str(response.status_code)]["content"]["application/json"]["schema"]
    root = {**body_schema, "components": strict(schema["components"])}
    Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(response.json())


def test_it_serves_yaml_by_default() -> None:
    response = schema_reader().get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    document = yaml.safe_load(response.content)
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Mission Control API"


def test_it_serves_json_on_request(schema: dict[str, Any]) -> None:
    assert schema["info"]["title"] == "Mission Control API"
    assert "/api/threads" in schema["paths"]


def test_it_is_a_valid_openapi_document(schema: dict[str, Any]) -> None:
    validate_schema(schema)


def test_it_generates_without_a_warning(tmp_path: Path) -> None:
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(tmp_path / "schema.yaml"))


def test_it_describes_every_api_route_and_its_methods(schema: dict[str, Any]) -> None:
    paths = {unnamed(path): item for path, item in schema["paths"].items()}
    routes = api_routes()
    assert routes, "no routes under /api/ found"
    missing = sorted(set(routes) - set(paths))
    assert not missing, f"routes without a schema: {missing}"
    for route, pattern in routes.items():
        operations = {m for m in paths[route] if m in METHODS}
        assert operations, f"{route} has no operation"
        assert documented_methods(pattern) <= operations, route


def test_it_describes_the_ingest_edge(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/ingest/events"]["post"]
    assert operation["security"] == [{"ingestKey": []}]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/IngestBatch"}
    assert set(operation["responses"]) == {"200", "202", "400", "401", "413", "503"}
    assert "Retry-After" in operation["responses"]["503"]["headers"]
    assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    mapping = schema["components"]["schemas"]["IngestEvent"]["discriminator"]["mapping"]
    assert set(mapping) == set(EVENT_TYPES)


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_it_takes_the_events_the_ingest_accepts(schema: dict[str, Any], kind: str) -> None:
    root = {"$ref": "#/components/schemas/IngestEvent", "components": schema["components"]}
    Draft202012Validator(root).validate(event(kind, mcp_id="srv-alpha"))


def test_it_documents_every_filter_of_every_list(schema: dict[str, Any]) -> None:
    lists = 0
    for route, pattern in api_routes().items():
        view = getattr(pattern.callback, "cls", None)
        if not (view and issubclass(view, FilteredList)):
            continue
        lists += 1
        path = next(p for p in schema["paths"] if unnamed(p) == route)
        names = {p["name"] for p in schema["paths"][path]["get"]["parameters"] if p["in"] == "query"}
        assert {*view.filterset_class.base_filters, "cursor", "limit"} <= names, route
    assert lists >= 4  # threads, logs, permission audit and one thread's audit


def test_it_documents_the_log_filters(schema: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in schema["paths"]["/api/logs"]["get"]["parameters"]}
    levels = parameters["levels"]
    assert (levels["style"], levels["explode"]) == ("form", False)
    assert levels["schema"]["items"]["enum"] == ["DEBUG", "INFO", "WARN", "ERROR"]
    assert parameters["since"]["schema"]["pattern"]
    assert parameters["from"]["schema"]["format"] == "date-time"
    assert parameters["search"]["schema"] == {"type": "string"}
    assert parameters["limit"]["schema"]["maximum"] == 1000
    export = {p["name"] for p in schema["paths"]["/api/logs/export"]["get"]["parameters"]}
    assert {"format", "levels", "since", "search"} <= export


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_it_serves_the_docs_from_our_own_static_files() -> None:
    response = schema_reader().get("/api/schema/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "http://" not in html and "https://" not in html, "the docs must not load from a CDN"
    assets = Assets()
    assets.feed(html)
    assert assets.urls
    static = "/" + settings.STATIC_URL.lstrip("/")
    # Its own settings script comes from the docs view (no inline script under the CSP).
    script = "/api/schema/docs/?script="
    assert script in assets.urls
    assert schema_reader().get(script).status_code == 200
    for url in (u for u in assets.urls if u != script):
        assert url.startswith(static), url
        assert finders.find(url.removeprefix(static)), f"{url} is not among the static files"
    assert '"/api/schema/"' in schema_reader().get(script).content.decode()  # where the page reads the schema


@pytest.fixture
def recorded(db: None) -> None:
    """A parent thread with a child, a step, a message, logs and two permission checks."""
    result = ingest(
        [
            event("thread.started", 0, thread_id="T-1", mcp_id="srv-alpha"),
            event("thread.started", 1, thread_id="T-2", parent_id="T-1", mcp_id="srv-alpha"),
            event("thread.step", 2, thread_id="T-1"),
            event("thread.message", 3, thread_id="T-1"),
            event("log", 4, id="L-1", thread_id="T-1", mcp_id="srv-alpha", context={"disk": "91%"}),
            event("log", 5, mcp_id="srv-alpha", level="ERROR", exception="Traceback ..."),
            event("permission.check", 6, thread_id="T-1"),
            event("permission.check", 7, thread_id="T-1", granted=False, rules_checked=[{"rule": "r1"}]),
            event("thread.ended", 8, thread_id="T-2", status="error"),
        ],
        Source(mcp_id=None),
    )
    assert all(v.status == "accepted" for v in result.verdicts), result.verdicts


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/api/threads", "/api/threads"),
        ("/api/threads?status=running,error&since=7d&limit=1", "/api/threads"),
        ("/api/threads/T-1", "/api/threads/{thread_id}"),
        ("/api/threads/T-1/timeline", "/api/threads/{thread_id}/timeline"),
        ("/api/threads/T-1/transcript", "/api/threads/{thread_id}/transcript"),
        ("/api/threads/T-1/children", "/api/threads/{thread_id}/children"),
        ("/api/threads/nope", "/api/threads/{thread_id}"),
        ("/api/threads?status=lost", "/api/threads"),
        ("/api/logs", "/api/logs"),
        ("/api/logs?levels=INFO,ERROR&from=2026-01-01T00:00:00Z&limit=1", "/api/logs"),
        ("/api/logs?levels=TRACE&colour=red", "/api/logs"),
        ("/api/logs/L-1", "/api/logs/{log_id}"),
        ("/api/logs/export?levels=TRACE", "/api/logs/export"),
        ("/api/logs/export?format=xml", "/api/logs/export"),
        ("/api/permissions/audit", "/api/permissions/audit"),
        ("/api/permissions/audit/T-1?granted=false", "/api/permissions/audit/{thread_id}"),
        ("/api/permissions/audit/nope", "/api/permissions/audit/{thread_id}"),
        ("/api/mcps", "/api/mcps"),
        ("/api/mcps/srv-alpha", "/api/mcps/{mcp_id}"),
        ("/api/mcps/srv-alpha/health", "/api/mcps/{mcp_id}/health"),
        ("/api/search?q=summarise", "/api/search"),
        ("/api/graph/entities?kind=thread", "/api/graph/entities"),
        ("/api/graph/relationships?entity=thread:T-1", "/api/graph/relationships"),
        ("/api/graph/relationships?entity=thread:nope", "/api/graph/relationships"),
        ("/api/preferences", "/api/preferences"),
    ],
)
def test_it_answers_what_it_documents(schema: dict[str, Any], recorded: None, url: str, path: str) -> None:
    assert_documented(schema, path, "get", signed_in_api().get(url))


def test_it_answers_saved_views_as_documented(schema: dict[str, Any], recorded: None) -> None:
    alice = APIClient()
    alice.force_authenticate(User.objects.create_user("alice"))
    config = {"kind": "logs", "filters": {"levels": ["ERROR"], "since": "24h"}}
    created = alice.post("/api/views", {"name": "Errors", "view_config": config}, format="json")
    assert_documented(schema, "/api/views", "post", created)
    assert_documented(schema, "/api/views", "get", alice.get("/api/views"))
    assert_documented(schema, "/api/preferences", "get", alice.get("/api/preferences"))
    refused = alice.patch("/api/preferences", {"theme": "x"}, format="json")
    assert_documented(schema, "/api/preferences", "patch", refused)


def test_it_registers_servers_as_documented(schema: dict[str, Any], db: None) -> None:
    entry = {"id": "time", "command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}}
    body = schema["paths"]["/api/mcps"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    Draft202012Validator({**body, "components": schema["components"]}).validate(entry)
    client = signed_in_api()
    assert_documented(schema, "/api/mcps", "post", client.post("/api/mcps", entry, format="json"))
    again = client.post("/api/mcps", entry, format="json")
    assert again.status_code == 200
    assert_documented(schema, "/api/mcps", "post", again)
    bad = client.post("/api/mcps", {"id": "x", "command": "uvx", "url": "http://h/mcp"}, format="json")
    assert_documented(schema, "/api/mcps", "post", bad)


def test_it_answers_the_gateway_calls_as_documented(schema: dict[str, Any], server: Any) -> None:
    client = signed_in_api()
    reconnect = client.post("/api/mcps/nope/reconnect")
    assert_documented(schema, "/api/mcps/{mcp_id}/reconnect", "post", reconnect)
    call = client.post("/api/mcps/srv-alpha/tools/t/call", "[]", content_type="application/json")
    assert_documented(schema, "/api/mcps/{mcp_id}/tools/{tool}/call", "post", call)
    slow = client.post("/api/mcps/srv-alpha/tools/t/call", {"timeout": -1}, format="json")
    assert_documented(schema, "/api/mcps/{mcp_id}/tools/{tool}/call", "post", slow)


@pytest.mark.django_db(transaction=True)
async def test_it_answers_ingest_as_documented(schema: dict[str, Any], ingest_key: str) -> None:
    batch = {"events": [event("log"), {"id": "bad", "type": "log"}]}
    assert_documented(schema, "/api/ingest/events", "post", await post_batch(batch, ingest_key))
    assert_documented(schema, "/api/ingest/events", "post", await post_batch(batch, None))
    assert_documented(schema, "/api/ingest/events", "post", await post_batch({"events": 1}, ingest_key))


def schema_reader() -> APIClient:
    """A client that may read the schema, with no database at hand (a module fixture)."""
    client = APIClient()
    client.force_authenticate(User(username="reader", is_superuser=True, is_active=True))
    return client


def signed_in_api() -> APIClient:
    """An API client signed in as the superuser (the schema, like the API, needs a user)."""
    client = APIClient()
    client.force_login(superuser_now())
    return client
