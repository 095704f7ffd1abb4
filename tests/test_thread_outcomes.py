"""What a thread says of its outcome: failed steps counted, the step it is in now, the agent's
own final status kept, the "with failures" filter, and a timeline read a page at a time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import event, store
from tests.conftest import result_ids as ids
from threads.models import Thread

pytestmark = pytest.mark.django_db


def step(seconds: float, sequence: int, status: str, **fields: Any) -> dict[str, Any]:
    return event("thread.step", seconds, sequence=sequence, status=status, **fields)


@pytest.fixture
def runs() -> None:
    """T-ok (ended complete, no failure), T-failed (ended complete by its agent, one failed
    tool call) and T-live (running: a failed step, then one running now)."""
    store(
        event("thread.started", 0, thread_id="T-ok", user_input="all went well"),
        step(1, 1, "complete", thread_id="T-ok"),
        event("thread.ended", 2, thread_id="T-ok", status="complete"),
        event("thread.started", 3, thread_id="T-failed", user_input="one call failed"),
        step(4, 1, "complete", thread_id="T-failed", description="plan"),
        step(5, 2, "error", thread_id="T-failed", description="time.get_current_time"),
        event("thread.ended", 6, thread_id="T-failed", status="complete"),
        event("thread.started", 7, thread_id="T-live", user_input="still at it"),
        step(8, 1, "error", thread_id="T-live", description="first try"),
        step(9, 2, "running", thread_id="T-live", description="second try"),
        mcp_id="srv-alpha",
    )


def test_a_failed_step_is_counted_on_its_thread_and_the_agents_own_status_is_kept(runs: None) -> None:
    counts = dict(Thread.objects.values_list("id", "error_count"))
    assert counts == {"T-ok": 0, "T-failed": 1, "T-live": 1}
    # The agent said it completed: that stays, and the failure is told beside it.
    assert Thread.objects.get(id="T-failed").status == "complete"


def test_a_later_report_of_a_step_moves_the_count_both_ways(runs: None) -> None:
    store(step(10, 2, "error", thread_id="T-live", description="second try"), mcp_id="srv-alpha")
    assert Thread.objects.get(id="T-live").error_count == 2
    store(step(11, 1, "complete", thread_id="T-live", description="first try, retried"), mcp_id="srv-alpha")
    assert Thread.objects.get(id="T-live").error_count == 1


def test_the_current_step_is_the_latest_that_is_not_pending_while_the_thread_runs(runs: None) -> None:
    store(step(12, 3, "pending", thread_id="T-live", description="planned"), mcp_id="srv-alpha")
    live = Thread.objects.get(id="T-live").summary()["current_step"]
    assert (live["sequence"], live["description"], live["status"]) == (2, "second try", "running")
    assert live["timestamp"].startswith("2026-01-01T00:00:09") or live["timestamp"].endswith("+00:00")
    # An ended thread is in no step any more.
    assert Thread.objects.get(id="T-failed").summary()["current_step"] is None


def test_rest_lists_say_how_many_steps_failed_and_filter_threads_with_failures(
    client: Client, runs: None
) -> None:
    rows = {row["id"]: row for row in client.get("/api/threads").json()["results"]}
    assert {tid: (r["status"], r["error_count"]) for tid, r in rows.items()} == {
        "T-ok": ("complete", 0),
        "T-failed": ("complete", 1),
        "T-live": ("running", 1),
    }
    assert rows["T-live"]["current_step"]["description"] == "second try"
    assert ids(client.get("/api/threads?with_failures=true")) == ["T-live", "T-failed"]
    assert ids(client.get("/api/threads?with_failures=false")) == ["T-ok"]
    assert ids(client.get("/api/threads?with_failures=true&status=complete")) == ["T-failed"]
    detail = client.get("/api/threads/T-live").json()["thread"]
    assert (detail["error_count"], detail["current_step"]["sequence"]) == (1, 2)
    assert client.get("/api/threads?with_failures=perhaps").status_code == 400


def test_the_thread_page_filters_with_failures_and_shows_the_count(client: Client, runs: None) -> None:
    page = client.get("/threads?with_failures=true").content.decode()
    assert "T-failed" in page and "T-live" in page and "T-ok" not in page
    assert "1 failed" in page


def test_a_saved_view_keeps_the_with_failures_filter(client: Client, runs: None) -> None:
    body = {"name": "failing", "view_config": {"kind": "threads", "filters": {"with_failures": "true"}}}
    saved = client.post("/api/views", json.dumps(body), content_type="application/json")
    assert saved.status_code == 201, saved.content
    page = client.get(f"/threads?view={saved.json()['id']}").content.decode()
    assert "T-failed" in page and "T-ok" not in page


def test_graphql_has_the_count_the_current_step_and_the_filter(client: Client, runs: None) -> None:
    text = """
      query ($failed: Boolean!) {
        threads(filters: {withFailures: $failed}) {
          results { id status errorCount currentStep }
        }
      }
    """
    response = client.post(
        reverse("graphql"),
        json.dumps({"query": text, "variables": {"failed": True}}),
        content_type="application/json",
    )
    body = response.json()
    assert "errors" not in body, body
    rows = {r["id"]: r for r in body["data"]["threads"]["results"]}
    assert set(rows) == {"T-live", "T-failed"}
    assert rows["T-failed"]["errorCount"] == 1 and rows["T-failed"]["currentStep"] is None
    assert rows["T-live"]["currentStep"]["description"] == "second try"


@pytest.mark.django_db(transaction=True)
async def test_the_websocket_thread_state_has_the_count_and_the_current_step(socket: Any) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(store)(
        event("thread.started", 0, thread_id="T-ws"),
        step(1, 1, "error", thread_id="T-ws", description="broke"),
        step(2, 2, "running", thread_id="T-ws", description="retrying"),
        mcp_id="srv-alpha",
    )
    async with socket() as ws:
        (state,) = await ws.subscribe("thread:T-ws")
    assert state["thread"]["error_count"] == 1
    assert state["thread"]["current_step"]["description"] == "retrying"


def test_counting_costs_one_statement_per_batch_not_one_per_step(
    django_assert_max_num_queries: Any,
) -> None:
    def batch(first: int) -> list[dict[str, Any]]:
        return [
            step(first + n, n, "error" if n % 2 else "complete", thread_id=f"T-{n % 5}") for n in range(100)
        ]

    store(*batch(0), mcp_id="srv-alpha")
    with django_assert_max_num_queries(12):  # what the batch costs without the counts, plus one
        ingest(batch(200), Source(mcp_id="srv-alpha"))
    assert sum(Thread.objects.values_list("error_count", flat=True)) == 50


def test_the_timeline_pages_by_sequence_and_the_detail_holds_its_first_page(
    client: Client, settings: Any
) -> None:
    store(
        event("thread.started", 0, thread_id="T-long"),
        *(step(n, n, "complete", thread_id="T-long", description=f"step {n}") for n in range(1, 206)),
        mcp_id="srv-alpha",
    )
    detail = client.get("/api/threads/T-long").json()
    assert [s["sequence"] for s in detail["timeline"]] == list(range(1, 201))
    assert detail["step_count"] == 205 and detail["timeline_next"]
    rest = client.get(f"/api/threads/T-long/timeline?cursor={detail['timeline_next']}").json()
    assert [s["sequence"] for s in rest["results"]] == [201, 202, 203, 204, 205] and rest["next"] is None
    first = client.get("/api/threads/T-long/timeline?limit=3").json()
    assert [s["sequence"] for s in first["results"]] == [1, 2, 3]
    second = client.get(first["next"]).json()
    assert [s["sequence"] for s in second["results"]] == [4, 5, 6]
    back = client.get(second["previous"]).json()
    assert [s["sequence"] for s in back["results"]] == [1, 2, 3]
    failed = client.get("/api/threads/T-long/timeline?status=error").json()
    assert failed["results"] == []
    assert client.get("/api/threads/T-long/timeline?cursor=nonsense").status_code == 400


def test_the_inspector_renders_the_first_page_of_a_long_timeline_only(client: Client) -> None:
    store(
        event("thread.started", 0, thread_id="T-long"),
        *(step(n, n, "complete", thread_id="T-long", description=f"step {n}") for n in range(1, 231)),
        mcp_id="srv-alpha",
    )
    page = client.get("/threads/T-long").content.decode()
    state = json.loads(page.split('id="thread-state" type="application/json">')[1].split("</script>")[0])
    assert len(state["timeline"]) == 200 and state["step_count"] == 230 and state["timeline_next"]
    assert 'id="more-steps"' in page


def test_an_otlp_tool_span_that_failed_counts_on_its_trace_whose_own_status_stays() -> None:
    from missioncontrol.ingest.otlp.mapping import Span, map_spans

    def span(span_id: str, name: str, parent: str = "", **attrs: Any) -> Span:
        start = 1_790_000_000_000_000_000 + int(span_id, 16) * 1_000_000
        return Span(
            trace_id="0af7651916cd43dd8448eb211c80319c",
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            start_ns=start,
            end_ns=start + 500_000,
            attributes=attrs,
            resource={"service.name": "weather-agent"},
        )

    root, tool = f"{1:016x}", f"{2:016x}"
    mapped = map_spans(
        [
            span(root, "handle request"),
            span(tool, "execute_tool get_weather", root, **{"error.type": "timeout"}),
        ]
    )
    assert all(v.status == "accepted" for v in ingest(mapped.events, Source(mcp_id=None)).verdicts)
    thread = Thread.objects.get(id="otel-0af7651916cd43dd8448eb211c80319c")
    assert (thread.status, thread.error_count) == ("complete", 1)


def test_search_says_which_steps_failed_and_how_a_thread_went(client: Client, runs: None) -> None:
    hits = client.get("/api/search?q=time.get_current_time&kinds=step").json()["results"]
    assert [h["title"] for h in hits] == ["tool_call in T-failed (failed)"]
    (thread,) = client.get("/api/search?q=call failed&kinds=thread").json()["results"]
    assert thread["title"] == "T-failed (complete, 1 failed step)"
