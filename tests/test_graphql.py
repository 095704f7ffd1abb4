"""GraphQL at /graphql: every model, filtered, paged, limited, in a fixed number of queries."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from logs.models import LogEntryQuerySet
from mcps.models import HealthCheck, MCPServer, replace_catalog
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import AUTH_QUERIES, BASE_TIME, api_token, at, event
from tests.mcp_servers import superuser_token
from threads.models import ExecutionStep, Thread

pytestmark = pytest.mark.django_db

SRV = Source(mcp_id="srv-alpha")


def post(client: Client, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post(
        reverse("graphql"),
        json.dumps({"query": query, "variables": variables}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def query(client: Client, text: str, **variables: Any) -> dict[str, Any]:
    """The data of a query that must succeed."""
    body = post(client, text, **variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


def errors(client: Client, text: str, **variables: Any) -> list[str]:
    return [error["message"] for error in post(client, text, **variables).get("errors", [])]


def run(*events: dict[str, Any], source: Source = SRV) -> None:
    result = ingest(list(events), source)
    assert result.count("rejected") == 0, result.as_dict()


def thread_events(thread_id: str, seconds: float = 0, **started: Any) -> list[dict[str, Any]]:
    """A finished thread with two steps, two messages, two logs and a denied permission check."""
    return [
        event("thread.started", seconds, thread_id=thread_id, **started),
        event("thread.step", seconds + 1, thread_id=thread_id, sequence=2, description="git commit"),
        event("thread.step", seconds + 2, thread_id=thread_id, sequence=1, description="git log"),
        event("thread.message", seconds + 2, thread_id=thread_id, role="agent", content="done"),
        event("thread.message", seconds + 1, thread_id=thread_id, role="user", content="commit it"),
        event("log", seconds + 1, thread_id=thread_id, message=f"{thread_id} first"),
        event("log", seconds + 2, thread_id=thread_id, message=f"{thread_id} second", level="ERROR"),
        event("permission.check", seconds + 2, thread_id=thread_id, granted=False, reason="no rule"),
        event("thread.ended", seconds + 3, thread_id=thread_id),
    ]


THREAD_TREE = """
query ($id: ID!) {
  thread(id: $id) {
    id status userInput durationMs
    mcp { id }
    parent { id }
    children { id parent { id } }
    steps { sequence description }
    messages { role content }
    logs { message level threadId }
    permissionEvents { granted reason userId thread { id } }
  }
}
"""


def test_it_serves_a_thread_with_its_tree_timeline_transcript_logs_and_permission_checks(
    client: Client,
) -> None:
    run(
        *thread_events("T-1", user_input="summarise the repo"),
        *thread_events("T-1a", 10, parent_id="T-1"),
        event("log", 20, thread_id="T-other", message="not T-1's"),
    )

    thread = query(client, THREAD_TREE, id="T-1")["thread"]

    assert thread["id"] == "T-1" and thread["status"] == "complete"
    assert thread["userInput"] == "summarise the repo"
    assert thread["durationMs"] == 3000
    assert thread["mcp"] == {"id": "srv-alpha"}
    assert thread["parent"] is None
    assert thread["children"] == [{"id": "T-1a", "parent": {"id": "T-1"}}]
    assert [s["sequence"] for s in thread["steps"]] == [1, 2]
    assert [m["content"] for m in thread["messages"]] == ["commit it", "done"]
    assert thread["logs"] == [
        {"message": "T-1 second", "level": "ERROR", "threadId": "T-1"},
        {"message": "T-1 first", "level": "INFO", "threadId": "T-1"},
    ]
    assert thread["permissionEvents"] == [
        {"granted": False, "reason": "no rule", "userId": "alice", "thread": {"id": "T-1"}}
    ]


def test_it_answers_null_for_an_unknown_id(client: Client) -> None:
    data = query(
        client,
        """{ thread(id: "nope") { id } mcpServer(id: "nope") { id }
             log(id: "nope") { id } permissionEvent(id: "nope") { id } }""",
    )
    assert data == {"thread": None, "mcpServer": None, "log": None, "permissionEvent": None}


def test_it_reads_one_of_each_by_id(client: Client) -> None:
    log, check = event("log", thread_id="T-1"), event("permission.check")
    run(event("thread.started"), log, check)
    data = query(
        client,
        """query ($log: ID!, $check: ID!) {
             log(id: $log) { id mcpId } permissionEvent(id: $check) { id resource }
             mcpServer(id: "srv-alpha") { id } }""",
        log=log["id"],
        check=check["id"],
    )
    assert data == {
        "log": {"id": log["id"], "mcpId": "srv-alpha"},
        "permissionEvent": {"id": check["id"], "resource": "git/commit"},
        "mcpServer": {"id": "srv-alpha"},
    }


def test_it_lists_threads_latest_started_first_and_filters_them(client: Client) -> None:
    MCPServer.objects.create(id="srv-beta", name="beta")
    run(
        event("thread.started", 0, thread_id="T-old"),
        event("thread.started", 10, thread_id="T-new", user_input="deploy the staging app"),
        event("thread.ended", 20, thread_id="T-old", status="error"),
    )
    run(event("thread.started", 5, thread_id="T-child", parent_id="T-old"), source=Source(mcp_id="srv-beta"))
    threads_query = """query ($filters: ThreadFilter) {
      threads(filters: $filters) { totalCount results { id } } }"""

    def ids(**filters: Any) -> list[str]:
        return [t["id"] for t in query(client, threads_query, filters=filters)["threads"]["results"]]

    assert ids() == ["T-new", "T-child", "T-old"]
    assert ids(root=True) == ["T-new", "T-old"]
    assert ids(parent="T-old") == ["T-child"]
    assert ids(statuses=["error"]) == ["T-old"]
    assert ids(mcps=["srv-beta"]) == ["T-child"]
    assert ids(search="staging") == ["T-new"]
    assert ids(**{"from": at(5), "to": at(10)}) == ["T-new", "T-child"]


LOGS = """query ($filters: LogEntryFilter) {
  logs(filters: $filters) { totalCount results { message } } }"""


@pytest.fixture
def logs(db: None) -> None:
    MCPServer.objects.create(id="srv-beta", name="beta")
    run(
        event("log", 1, thread_id="T-1", service="executor", level="INFO", message="disk is full"),
        event("log", 2, thread_id="T-2", service="planner", level="WARN", message="disk almost full"),
        event("log", 3, thread_id="T-1", service="planner", level="ERROR", message="tool crashed"),
    )
    run(
        event("log", 4, service="executor", level="DEBUG", message="heartbeat"),
        source=Source(mcp_id="srv-beta"),
    )


def messages(client: Client, **filters: Any) -> list[str]:
    return [log["message"] for log in query(client, LOGS, filters=filters)["logs"]["results"]]


def test_it_lists_logs_newest_first(client: Client, logs: None) -> None:
    assert messages(client) == ["heartbeat", "tool crashed", "disk almost full", "disk is full"]


def test_it_filters_logs_by_thread_server_level_and_service(client: Client, logs: None) -> None:
    assert messages(client, threads=["T-1"]) == ["tool crashed", "disk is full"]
    assert messages(client, threads=["T-1", "T-2"]) == ["tool crashed", "disk almost full", "disk is full"]
    assert messages(client, mcps=["srv-beta"]) == ["heartbeat"]
    assert messages(client, levels=["WARN", "error"]) == ["tool crashed", "disk almost full"]
    assert messages(client, services=["planner"]) == ["tool crashed", "disk almost full"]


def test_it_filters_logs_by_time_range(client: Client, logs: None) -> None:
    assert messages(client, **{"from": at(2), "to": at(3)}) == ["tool crashed", "disk almost full"]
    assert messages(client, **{"from": at(4)}) == ["heartbeat"]
    assert messages(client, to=at(1)) == ["disk is full"]


def test_it_searches_logs_through_the_domain_search(
    client: Client, logs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched: list[str] = []
    search = LogEntryQuerySet.search

    def spy(self: LogEntryQuerySet, text: str) -> LogEntryQuerySet:
        searched.append(text)
        return search(self, text)

    monkeypatch.setattr(LogEntryQuerySet, "search", spy)

    assert messages(client, search="disk full") == ["disk almost full", "disk is full"]
    assert searched == ["disk full"]


def test_it_combines_log_filters(client: Client, logs: None) -> None:
    found = messages(client, threads=["T-1", "T-2"], services=["planner"], search="disk", **{"from": at(1)})
    assert found == ["disk almost full"]
    assert messages(client, threads=["T-1"], levels=["WARN"]) == []


PERMISSIONS = """query ($filters: PermissionEventFilter) {
  permissionEvents(filters: $filters) { totalCount results { resource granted } } }"""


def resources(client: Client, **filters: Any) -> list[str]:
    found = query(client, PERMISSIONS, filters=filters)["permissionEvents"]["results"]
    return [check["resource"] for check in found]


def test_it_lists_the_denials_of_the_last_24_hours(client: Client) -> None:
    now = timezone.now()

    def ago(hours: float) -> str:
        return (now - timedelta(hours=hours)).isoformat()

    run(
        event("thread.started"),
        event("permission.check", timestamp=ago(1), resource="fs/write", granted=False),
        event("permission.check", timestamp=ago(2), resource="git/push", granted=True),
        event("permission.check", timestamp=ago(5), resource="net/fetch", granted=False),
        event("permission.check", timestamp=ago(30), resource="db/drop", granted=False),
    )
    assert resources(client, granted=False, **{"from": ago(24)}) == ["fs/write", "net/fetch"]


def test_it_filters_permission_checks(client: Client) -> None:
    run(
        event("thread.started", thread_id="T-1"),
        event("thread.started", thread_id="T-2"),
        event("permission.check", 1, thread_id="T-1", resource="fs/read", action="read"),
        event("permission.check", 2, thread_id="T-2", user_id="bob", resource="fs/write", action="write"),
        event(
            "permission.check",
            3,
            thread_id="T-2",
            resource="sudo",
            granted=False,
            escalation_detected=True,
            severity="critical",
        ),
    )
    assert resources(client) == ["sudo", "fs/write", "fs/read"]
    assert resources(client, userId="bob") == ["fs/write"]
    assert resources(client, resource="fs/read") == ["fs/read"]
    assert resources(client, action="write") == ["fs/write"]
    assert resources(client, severity="critical") == ["sudo"]
    assert resources(client, escalationDetected=True) == ["sudo"]
    assert resources(client, thread="T-2") == ["sudo", "fs/write"]
    assert resources(client, thread="T-2", granted=True) == ["fs/write"]
    assert resources(client, **{"from": at(2), "to": at(3)}) == ["sudo", "fs/write"]


def managed_server(server_id: str, tools: int = 2, checks: int = 2) -> MCPServer:
    server = MCPServer.objects.create(
        id=server_id,
        name=server_id,
        transport="streamable_http",
        url="http://127.0.0.1:9/mcp",
        env={"API_TOKEN": "s3cret-env"},
        headers={"Authorization": "Bearer s3cret-header"},
        status=MCPServer.Status.CONNECTED,
    )
    replace_catalog(
        server_id,
        {
            "tools": [{"name": f"tool-{n}", "description": f"tool {n}"} for n in range(tools)],
            "resources": [{"uri": "file:///README.md", "name": "readme"}],
            "prompts": [{"name": "review"}],
        },
    )
    HealthCheck.objects.bulk_create(
        [
            HealthCheck(
                server=server, checked_at=BASE_TIME + timedelta(minutes=n), ok=n % 2 == 0, latency_ms=n
            )
            for n in range(checks)
        ]
    )
    return server


SERVERS = """{
  mcpServers(filters: {managed: true}) {
    totalCount
    results {
      id name status managed
      tools { name description server { id } }
      resources { uri } prompts { name }
      healthChecks { ok latencyMs checkedAt }
    }
  }
}"""


def test_it_serves_mcp_servers_with_their_tools_and_health_checks_latest_first(client: Client) -> None:
    managed_server("srv-time", tools=2, checks=3)

    data = query(client, SERVERS)["mcpServers"]

    assert data["totalCount"] == 1
    server = data["results"][0]
    assert (server["id"], server["status"], server["managed"]) == ("srv-time", "connected", True)
    assert server["tools"] == [
        {"name": "tool-0", "description": "tool 0", "server": {"id": "srv-time"}},
        {"name": "tool-1", "description": "tool 1", "server": {"id": "srv-time"}},
    ]
    assert server["resources"] == [{"uri": "file:///README.md"}] and server["prompts"] == [{"name": "review"}]
    assert [c["latencyMs"] for c in server["healthChecks"]] == [2, 1, 0]
    assert [c["ok"] for c in server["healthChecks"]] == [True, False, True]


def test_it_never_exposes_a_servers_env_or_headers(client: Client) -> None:
    managed_server("srv-time")
    assert "s3cret" not in json.dumps(query(client, SERVERS))
    for field in ("env", "headers"):
        [message] = errors(client, f'{{ mcpServer(id: "srv-time") {{ {field} }} }}')
        assert f"Cannot query field '{field}'" in message


def test_it_filters_mcp_servers(client: Client) -> None:
    managed_server("srv-time")
    MCPServer.objects.create(id="srv-pushed", name="pushed")

    def ids(filters: str) -> list[str]:
        found = query(client, f"{{ mcpServers(filters: {filters}) {{ results {{ id }} }} }}")
        return [server["id"] for server in found["mcpServers"]["results"]]

    assert "srv-pushed" in ids("{managed: false}") and "srv-time" not in ids("{managed: false}")
    assert ids("{managed: true}") == ["srv-time"]
    assert ids('{statuses: ["connected", "degraded"]}') == ["srv-time"]


def test_it_refuses_a_query_deeper_than_ten_levels(client: Client) -> None:
    nested = "id"
    for _ in range(10):
        nested = f"id children {{ {nested} }}"
    [message] = errors(client, f'query Deep {{ thread(id: "T-1") {{ {nested} }} }}')
    assert "exceeds maximum operation depth of 10" in message


def test_it_accepts_a_query_ten_levels_deep(client: Client) -> None:
    nested = "id"
    for _ in range(9):
        nested = f"id children {{ {nested} }}"
    assert query(client, f'{{ thread(id: "T-1") {{ {nested} }} }}') == {"thread": None}


def test_it_refuses_more_than_twenty_aliases(client: Client) -> None:
    aliased = " ".join(f'a{n}: thread(id: "T-{n}") {{ id }}' for n in range(21))
    [message] = errors(client, f"{{ {aliased} }}")
    assert "21 aliases found. Allowed: 20" in message
    twenty = " ".join(f'a{n}: thread(id: "T-{n}") {{ id }}' for n in range(20))
    assert len(query(client, f"{{ {twenty} }}")) == 20


PAGE = """query ($pagination: OffsetPaginationInput) {
  threads(pagination: $pagination) { totalCount pageInfo { offset limit } results { id } } }"""


def test_it_pages_lists(client: Client) -> None:
    Thread.objects.bulk_create(
        [Thread(id=f"T-{n:03}", started_at=BASE_TIME + timedelta(seconds=n)) for n in range(120)]
    )

    page = query(client, PAGE, pagination={"offset": 2, "limit": 3})["threads"]
    assert page["totalCount"] == 120
    assert page["pageInfo"] == {"offset": 2, "limit": 3}
    assert [t["id"] for t in page["results"]] == ["T-117", "T-116", "T-115"]

    default = query(client, PAGE)["threads"]
    assert default["pageInfo"]["limit"] == 100 and len(default["results"]) == 100

    capped = query(client, PAGE, pagination={"limit": 1000})["threads"]
    assert capped["pageInfo"]["limit"] == 100 and len(capped["results"]) == 100


def test_it_pages_the_lists_inside_a_thread(client: Client) -> None:
    run(*thread_events("T-1"), event("log", 3, thread_id="T-1", message="T-1 third"))
    thread = query(
        client,
        """{ thread(id: "T-1") {
             steps(pagination: {offset: 1, limit: 1}) { sequence }
             logs(pagination: {offset: 1, limit: 2}) { message } } }""",
    )["thread"]
    assert thread["steps"] == [{"sequence": 2}]
    assert thread["logs"] == [{"message": "T-1 second"}, {"message": "T-1 first"}]


def test_it_serves_one_page_of_a_long_list_inside_a_thread(client: Client) -> None:
    run(event("thread.started"), *[event("log", n, thread_id="T-1", message=f"log {n}") for n in range(101)])
    ExecutionStep.objects.bulk_create(
        [
            ExecutionStep(thread_id="T-1", sequence=n, timestamp=BASE_TIME, step_type="script")
            for n in range(101)
        ]
    )
    thread = query(client, '{ thread(id: "T-1") { steps { sequence } logs { message } } }')["thread"]
    assert len(thread["steps"]) == 100 and thread["steps"][-1] == {"sequence": 99}
    assert len(thread["logs"]) == 100 and thread["logs"][-1] == {"message": "log 1"}


THREADS_IN_FULL = """{
  threads(filters: {root: true}) {
    totalCount
    results {
      id durationMs
      mcp { id name }
      parent { id }
      children { id }
      steps { sequence }
      messages { content }
      logs { message }
      permissionEvents { resource thread { id } }
    }
  }
}"""


def seed_threads(count: int) -> None:
    """`count` root threads, each with a child and a timeline, transcript, logs and checks."""
    events: list[dict[str, Any]] = []
    for n in range(count):
        events += thread_events(f"T-{n}", n * 10)
        events += thread_events(f"T-{n}-child", n * 10 + 5, parent_id=f"T-{n}")
    run(*events)


@pytest.mark.parametrize("count", [3, 30])
def test_it_reads_a_page_of_threads_in_full_in_eight_queries_however_many(
    client: Client, count: int, django_assert_num_queries: Any
) -> None:
    seed_threads(count)
    # count, threads (with server joined), parents, children, steps, messages,
    # permission checks (with their thread joined), logs. Parents are a query of their
    # own: a thread type narrowed to what the user may see cannot be joined.
    with django_assert_num_queries(8 + AUTH_QUERIES):
        page = query(client, THREADS_IN_FULL)["threads"]
    assert page["totalCount"] == count
    first = page["results"][-1]
    assert first["children"] == [{"id": "T-0-child"}]
    assert [log["message"] for log in first["logs"]] == ["T-0 second", "T-0 first"]
    assert all(len(t["steps"]) == 2 and len(t["logs"]) == 2 for t in page["results"])


@pytest.mark.parametrize("count", [3, 30])
def test_it_reads_a_page_of_logs_in_two_queries_and_of_permission_checks_in_three(
    client: Client, count: int, django_assert_num_queries: Any
) -> None:
    seed_threads(count)
    with django_assert_num_queries(2 + AUTH_QUERIES):
        assert query(client, LOGS)["logs"]["totalCount"] == count * 4
    # count, checks, their threads (visible ones: a query of its own, not a join).
    with django_assert_num_queries(3 + AUTH_QUERIES):
        found = query(client, "{ permissionEvents { totalCount results { resource thread { id status } } } }")
    assert found["permissionEvents"]["totalCount"] == count * 2


@pytest.mark.parametrize("count", [3, 30])
def test_it_reads_a_page_of_servers_with_their_catalog_and_health_in_six_queries(
    client: Client, count: int, django_assert_num_queries: Any
) -> None:
    for n in range(count):
        managed_server(f"srv-{n:02}")
    # count, servers, tools (with their server joined), resources, prompts, health checks.
    with django_assert_num_queries(6 + AUTH_QUERIES):
        found = query(client, SERVERS)["mcpServers"]
    assert found["totalCount"] == count
    assert all(len(s["tools"]) == 2 and len(s["healthChecks"]) == 2 for s in found["results"])


def test_it_takes_posts_from_api_clients_without_a_csrf_token(superuser: User) -> None:
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {api_token(superuser)}"})
    assert query(client, '{ thread(id: "T-1") { id } }') == {"thread": None}


def test_it_wants_the_csrf_token_from_a_browser_session(superuser: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(superuser)
    response = browser.post(reverse("graphql"), {"query": "{ threads { totalCount } }"}, "application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


@pytest.fixture
def committed_thread(transactional_db: None) -> None:
    """Thread T-1, committed, so that the ASGI application's own connection sees it."""
    run(*thread_events("T-1"))


async def test_it_answers_through_the_asgi_application(committed_thread: None) -> None:
    from missioncontrol.asgi import application

    token = await sync_to_async(superuser_token)()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.post(
            "/graphql",
            json={"query": '{ thread(id: "T-1") { id logs { message } } }'},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200
    assert response.json() == {
        "data": {"thread": {"id": "T-1", "logs": [{"message": "T-1 second"}, {"message": "T-1 first"}]}}
    }


def test_it_serves_graphiql_to_a_browser(client: Client) -> None:
    response = client.get(reverse("graphql"), headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert b"graphiql" in response.content.lower()
