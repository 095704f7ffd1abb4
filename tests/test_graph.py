"""The relationship graph: entities and edges derived from servers, threads and automations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from automations import scripts as script_registry
from automations.models import Directive, KnowledgeEntry
from mcps.endpoint.recorder import Call, CallRecorder
from mcps.models import MCPServer, Tool
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import AUTH_QUERIES, BASE_TIME
from threads.models import ExecutionStep, Thread

# Every registered script, and the one the world's directive names but nobody registered.
SCRIPTS = len(script_registry.registry()) + 1

pytestmark = pytest.mark.django_db

NIGHTLY = """
name: nightly_report
description: Nightly report
steps:
  - script: generate_summary
  - foreach: recent_threads
    steps:
      - script: detect_slow_threads.py
      - conditional:
          if: "{{ result.count > 0 }}"
          then: {tool: git__git_log}
          else: [{server: time, tool: get_current_time}]
  - script: missing_script.py
"""


def _thread(tid: str, minutes: int, **fields: Any) -> Thread:
    return Thread.objects.create(id=tid, started_at=BASE_TIME + timedelta(minutes=minutes), **fields)


def _steps(thread: Thread, *details: dict[str, Any], step_type: str = "tool_call") -> None:
    first = thread.steps.count()
    ExecutionStep.objects.bulk_create(
        ExecutionStep(
            thread=thread, sequence=first + i, timestamp=BASE_TIME, step_type=step_type, details=detail
        )
        for i, detail in enumerate(details)
    )


@pytest.fixture
def world() -> None:
    git = MCPServer.objects.create(id="git", name="git", instructions="Read a git repository")
    time = MCPServer.objects.create(id="time", name="time")
    Tool.objects.create(server=git, name="git_log", description="Show the commit logs")
    Tool.objects.create(server=git, name="git_diff")
    Tool.objects.create(server=time, name="get_current_time")

    root = _thread("T-root", 0, mcp=git, user_input="summarise the git history")
    child = _thread("T-child", 1, parent=root, mcp_id="mission-control")
    orphan = _thread("T-orphan", 2, parent_id="T-missing")
    _steps(
        root, {"mcp_id": "git", "tool": "git_log"}, {"mcp_id": "git", "tool": "git_log"}, {"tool": "git_diff"}
    )
    _steps(root, {"mcp_id": "git", "tool": "git_log"}, step_type="tool_result")
    _steps(
        child,
        {"mcp_id": "time", "tool": "get_current_time", "arguments": {"timezone": "UTC"}},
        {"mcp_id": "ghost", "tool": "haunt"},
        {"mcp_id": "time", "tool": "convert_time"},
    )
    _steps(orphan, {"arguments": {}}, {"tool": "no_server_anywhere"})

    nightly = Directive.objects.upsert_from_yaml(NIGHTLY, system=True)
    KnowledgeEntry.objects.create(
        title="Slow git threads",
        slug="slow-git",
        content="git_log on big repositories; see [[timeouts]].",
        source_directive=nightly,
    )
    KnowledgeEntry.objects.create(title="Timeouts", content="Slow git threads often end in a timeout.")


def _get(client: Client, path: str, **params: Any) -> Any:
    response = client.get(f"/api/graph/{path}", params)
    assert response.status_code == 200, response.content
    return response.json()


def _edges(client: Client, **params: Any) -> list[tuple[str, str, int]]:
    return [
        (e["source"], e["target"], e["weight"]) for e in _get(client, "relationships", **params)["results"]
    ]


def test_it_derives_which_server_provides_which_tool(client: Client, world: None) -> None:
    assert _edges(client, kind="provides") == [
        ("server:git", "tool:git/git_diff", 1),
        ("server:git", "tool:git/git_log", 1),
        ("server:time", "tool:time/convert_time", 1),  # seen in use, not in the catalog
        ("server:time", "tool:time/get_current_time", 1),
    ]


def test_it_links_a_child_thread_to_its_parent_once_the_parent_exists(client: Client, world: None) -> None:
    assert _edges(client, kind="child_of") == [("thread:T-child", "thread:T-root", 1)]
    _thread("T-missing", -5)
    assert _edges(client, kind="child_of") == [
        ("thread:T-child", "thread:T-root", 1),
        ("thread:T-orphan", "thread:T-missing", 1),
    ]


def test_it_counts_the_tools_each_thread_called(client: Client, world: None) -> None:
    assert _edges(client, kind="used") == [
        ("thread:T-child", "tool:ghost/haunt", 1),
        ("thread:T-child", "tool:time/convert_time", 1),
        ("thread:T-child", "tool:time/get_current_time", 1),
        ("thread:T-root", "tool:git/git_diff", 1),  # no mcp_id in details: the thread's server
        ("thread:T-root", "tool:git/git_log", 2),
    ]


def test_it_lists_tools_seen_in_use_beside_the_catalog(client: Client, world: None) -> None:
    tools = _get(client, "entities", kind="tool")["results"]
    assert [(t["id"], t["name"], t["data"]) for t in tools] == [
        ("tool:ghost/haunt", "haunt", {"server_id": "ghost", "in_catalog": False}),
        ("tool:git/git_diff", "git_diff", {"server_id": "git", "in_catalog": True}),
        ("tool:git/git_log", "git_log", {"server_id": "git", "in_catalog": True}),
        ("tool:time/convert_time", "convert_time", {"server_id": "time", "in_catalog": False}),
        ("tool:time/get_current_time", "get_current_time", {"server_id": "time", "in_catalog": True}),
    ]
    assert tools[2]["description"] == "Show the commit logs"


def test_it_derives_the_scripts_and_tools_of_a_directive(client: Client, world: None) -> None:
    assert _edges(client, kind="runs") == [
        ("directive:nightly_report", "script:detect_slow_threads", 1),
        ("directive:nightly_report", "script:generate_summary", 1),
        ("directive:nightly_report", "script:missing_script", 1),
    ]
    assert _edges(client, kind="calls") == [
        ("directive:nightly_report", "tool:git/git_log", 1),
        ("directive:nightly_report", "tool:time/get_current_time", 1),
    ]
    scripts = {s["name"]: s["data"] for s in _get(client, "entities", kind="script")["results"]}
    assert scripts["missing_script"] == {"registered": False}
    assert scripts["detect_slow_threads"]["registered"] is True
    assert scripts["detect_slow_threads"]["permissions"] == ["read:threads"]
    assert len(scripts) == SCRIPTS


def test_it_derives_knowledge_a_directive_produced_and_what_it_references(
    client: Client, world: None
) -> None:
    assert _edges(client, kind="produced") == [("directive:nightly_report", "knowledge:slow-git", 1)]
    assert _edges(client, kind="references") == [
        ("knowledge:slow-git", "knowledge:timeouts", 1),  # [[timeouts]]
        ("knowledge:timeouts", "knowledge:slow-git", 1),  # its exact title
    ]


def test_it_lists_the_edges_touching_one_entity(client: Client, world: None) -> None:
    assert _get(client, "relationships", entity="tool:git/git_log")["results"] == [
        {"source": "server:git", "target": "tool:git/git_log", "kind": "provides", "weight": 1},
        {"source": "thread:T-root", "target": "tool:git/git_log", "kind": "used", "weight": 2},
        {"source": "directive:nightly_report", "target": "tool:git/git_log", "kind": "calls", "weight": 1},
    ]
    assert _edges(client, entity="thread:T-root") == [
        ("thread:T-child", "thread:T-root", 1),
        ("thread:T-root", "tool:git/git_diff", 1),
        ("thread:T-root", "tool:git/git_log", 2),
    ]
    assert _edges(client, entity="thread:T-root", kind="used") == [
        ("thread:T-root", "tool:git/git_diff", 1),
        ("thread:T-root", "tool:git/git_log", 2),
    ]
    assert _edges(client, entity="script:missing_script") == [
        ("directive:nightly_report", "script:missing_script", 1)
    ]
    assert _edges(client, entity="knowledge:timeouts", kind="references,produced") == [
        ("knowledge:slow-git", "knowledge:timeouts", 1),
        ("knowledge:timeouts", "knowledge:slow-git", 1),
    ]


def test_it_pages_entities_across_kinds(client: Client, world: None) -> None:
    everything = _get(client, "entities")
    assert everything["count"] == 3 + 5 + 3 + 1 + SCRIPTS + 2
    assert [e["kind"] for e in everything["results"]][:4] == ["server", "server", "server", "tool"]
    page = _get(client, "entities", offset=2, limit=3)
    assert page["count"] == 14 + SCRIPTS
    assert [e["id"] for e in page["results"]] == ["server:time", "tool:ghost/haunt", "tool:git/git_diff"]
    assert [
        e["id"] for e in _get(client, "entities", kind="thread,server", offset=3, limit=2)["results"]
    ] == [
        "thread:T-orphan",
        "thread:T-child",
    ]


def test_it_describes_each_kind_of_entity(client: Client, world: None) -> None:
    results = _get(client, "entities", kind="server,thread,directive,knowledge", limit=100)["results"]
    by_id = {e["id"]: e for e in results}
    assert by_id["server:git"]["description"] == "Read a git repository"
    assert by_id["server:git"]["data"]["status"] == "unknown"
    assert by_id["thread:T-child"]["data"] == {
        "status": "running",
        "mcp_id": "mission-control",
        "parent_id": "T-root",
        "started_at": "2026-11-21T10:01:00+00:00",
        "ended_at": None,
    }
    assert by_id["thread:T-root"]["description"] == "summarise the git history"
    assert by_id["directive:nightly_report"]["data"] == {"version": "", "system": True, "enabled": True}
    assert by_id["knowledge:slow-git"]["title"] == "Slow git threads"
    assert by_id["knowledge:slow-git"]["data"]["source_directive"] == "nightly_report"


def test_it_ranks_search_results_exact_then_prefix_then_contains(client: Client, world: None) -> None:
    found = _get(client, "search", q="git")
    assert [e["id"] for e in found["results"]] == [
        "server:git",  # exact name
        "tool:git/git_diff",  # prefix
        "tool:git/git_log",
        "knowledge:slow-git",  # contains
        "thread:T-root",  # in the description
        "knowledge:timeouts",
    ]
    assert found["count"] == 6
    narrowed = _get(client, "search", q="GIT", kind="tool,thread", limit=2)
    assert (narrowed["count"], [e["id"] for e in narrowed["results"]]) == (
        3,
        ["tool:git/git_diff", "tool:git/git_log"],
    )


def test_it_ranks_threads_in_the_database_the_same_way(client: Client, db: None) -> None:
    _thread("pre-deploy", 0)
    _thread("deploy-2", 1)
    _thread("Deploy", 2)
    _thread("T-9", 3, user_input="deploy the site")
    _thread("T-10", 4, user_input="nothing to see")
    found = _get(client, "search", q="deploy", kind="thread")
    assert [e["id"] for e in found["results"]] == [
        "thread:Deploy",
        "thread:deploy-2",
        "thread:pre-deploy",
        "thread:T-9",
    ]
    assert found["count"] == 4


def test_it_shows_calls_recorded_by_the_aggregated_endpoint(client: Client, db: None) -> None:
    class Events:
        def __init__(self) -> None:
            self.added: list[dict[str, Any]] = []

        def add(self, *events: dict[str, Any], source: Any = None) -> None:
            self.added.extend(events)

        def add_later(self, build: Any, source: Any = None) -> None:
            self.added.extend(build())

    events = Events()
    recorder = CallRecorder(events)  # type: ignore[arg-type]
    session = recorder.session(("stdio", "1"), via="mcp_proxy", principal="alice", client={})
    threads = [
        recorder.record(session, Call("time", "get_current_time", {}, BASE_TIME, 1.0, result={"content": []}))
        for _ in range(3)
    ]
    ingest(events.added, Source(mcp_id=None))

    # Each call is a thread of its own, which called the tool once.
    for thread_id in threads:
        thread = f"thread:{thread_id}"
        assert _edges(client, entity=thread) == [(thread, "tool:time/get_current_time", 1)]


@pytest.mark.parametrize(
    ("path", "params", "field", "error"),
    [
        (
            "entities",
            {"kind": "server,planet"},
            "kind",
            "unknown kind 'planet'; expected one of server, tool, thread, directive, script, knowledge, "
            "kiwi_directive, kiwi_tool, kiwi_knowledge",
        ),
        ("entities", {"limit": "ten"}, "limit", "A valid integer is required."),
        ("entities", {"limit": "0"}, "limit", "Ensure this value is greater than or equal to 1."),
        ("entities", {"offset": "-1"}, "offset", "Ensure this value is greater than or equal to 0."),
        (
            "relationships",
            {"kind": "provides,owns"},
            "kind",
            "unknown kind 'owns'; expected one of provides, child_of, used, runs, calls, produced, "
            "references, requires, suggests, extends, related, executed",
        ),
        (
            "relationships",
            {"entity": "T-1"},
            "entity",
            "expected <kind>:<key>, such as thread:T-1, not 'T-1'",
        ),
        (
            "relationships",
            {"entity": "planet:mars"},
            "entity",
            "unknown kind 'planet'; expected one of server, tool, thread, directive, script, knowledge, "
            "kiwi_directive, kiwi_tool, kiwi_knowledge",
        ),
        ("search", {}, "q", "This field is required."),
        ("search", {"q": "  "}, "q", "This field may not be blank."),
        ("search", {"q": "git", "limit": "9999"}, "limit", "Ensure this value is less than or equal to 500."),
    ],
)
def test_it_names_the_bad_parameter(
    client: Client, db: None, path: str, params: Any, field: str, error: str
) -> None:
    response = client.get(f"/api/graph/{path}", params)
    assert response.status_code == 400
    assert response.json() == {field: [error]}


@pytest.mark.parametrize("entity", ["thread:T-nope", "server:ghost", "tool:git/nope", "knowledge:nope"])
def test_it_answers_404_for_relationships_of_an_unknown_entity(
    client: Client, world: None, entity: str
) -> None:
    response = client.get("/api/graph/relationships", {"entity": entity})
    assert response.status_code == 404
    assert response.json() == {"detail": f"No entity {entity!r}."}


@pytest.mark.parametrize("threads", [2, 60])
def test_it_reads_the_graph_in_the_same_few_queries_however_many_threads(
    client: Client, world: None, django_assert_max_num_queries: Any, threads: int
) -> None:
    parent = Thread.objects.get(id="T-root")
    for i in range(threads):
        thread = _thread(f"T-{i}", 10 + i, parent=parent, mcp_id="git")
        _steps(thread, {"tool": "git_log"}, {"mcp_id": "time", "tool": "get_current_time"})
        parent = thread

    # + 2: the Kiwi items and the Kiwi run threads (kiwi/graph.py); no item, no links query.
    with django_assert_max_num_queries(9 + AUTH_QUERIES):
        everything = _get(client, "entities", limit=10_000)
    with django_assert_max_num_queries(9 + AUTH_QUERIES):
        edges = _get(client, "relationships", limit=10_000)

    assert everything["count"] == len(everything["results"]) == 14 + SCRIPTS + threads
    used = [e for e in edges["results"] if e["kind"] == "used"]
    assert len(used) == 5 + 2 * threads


def test_it_refuses_an_unknown_parameter(client: Client, db: None) -> None:
    response = client.get("/api/graph/entities", {"kinds": "server"})
    assert response.status_code == 400
    assert response.json() == {"kinds": ["Unknown parameter."]}
