"""/ws/: subscriptions on every channel kind, state replay, filters, and frames."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from missioncontrol.consumers import CLOSE_BUSY
from tests.conftest import Socket, event, post_batch

pytestmark = pytest.mark.django_db(transaction=True)


async def push(key: str, *events: dict[str, Any]) -> dict[str, Any]:
    response = await post_batch({"events": list(events)}, key)
    assert response.status_code == 200, response.content
    return response.json()


async def test_it_streams_every_log_to_logs_star(ingest_key: str) -> None:
    async with Socket() as ws:
        assert await ws.subscribe("logs:*") == []
        await push(ingest_key, event("log", message="one"), event("log", message="two", thread_id="T-9"))
        logs = await ws.events("logs:*")
        assert [e["message"] for e in logs] == ["one", "two"]
        assert logs[1]["thread_id"] == "T-9" and logs[1]["mcp_id"] == "srv-alpha"
        assert all(e["type"] == "log" for e in logs)


async def test_it_streams_a_threads_logs_only_to_that_thread(ingest_key: str) -> None:
    async with Socket() as ws:
        await ws.subscribe("logs:T-1")
        await push(
            ingest_key,
            event("log", message="other", thread_id="T-2"),
            event("log", message="mine", thread_id="T-1"),
        )
        assert [e["message"] for e in await ws.events("logs:T-1")] == ["mine"]
        assert await ws.nothing()


async def test_it_applies_the_log_filter_on_the_server(ingest_key: str) -> None:
    async with Socket() as ws:
        await ws.subscribe("logs:*", levels=["ERROR", "WARN"], services=["db"], search="Timeout")
        await push(
            ingest_key,
            event("log", level="ERROR", service="db", message="query timeout after 5s"),
            event("log", level="INFO", service="db", message="timeout config loaded"),
            event("log", level="ERROR", service="web", message="timeout"),
            event("log", level="WARN", service="db", message="slow query"),
        )
        assert [e["message"] for e in await ws.events("logs:*")] == ["query timeout after 5s"]


async def test_it_sends_the_last_matching_logs_before_live_ones(ingest_key: str) -> None:
    await push(
        ingest_key,
        *[event("log", i, message=f"old {i}", level="ERROR" if i % 2 else "INFO") for i in range(6)],
    )
    async with Socket() as ws:
        history = await ws.subscribe("logs:*", levels=["ERROR"], history=2)
        assert [e["message"] for e in history] == ["old 3", "old 5"]
        await push(ingest_key, event("log", 10, message="new", level="ERROR"))
        assert [e["message"] for e in await ws.events("logs:*")] == ["new"]


async def test_it_rejects_a_bad_log_filter(ingest_key: str) -> None:
    async with Socket() as ws:
        await ws.send(type="subscribe", channel="logs:*", payload={"levels": ["LOUD"]}, request_id="r1")
        frame = await ws.recv()
        assert frame["type"] == "error" and frame["request_id"] == "r1"
        assert "levels" in frame["payload"]["reason"]


async def test_it_replays_a_threads_state_on_subscribe_then_streams_updates(ingest_key: str) -> None:
    await push(
        ingest_key,
        event("thread.started", 0, thread_id="T-1", user_input="triage"),
        event("thread.started", 1, thread_id="T-1a", parent_id="T-1"),
        event("thread.step", 2, sequence=2, description="second"),
        event("thread.step", 1, sequence=1, description="first"),
        event("thread.message", 3, role="user", content="go"),
    )
    async with Socket() as ws:
        (state,) = await ws.subscribe("thread:T-1")
        assert state["type"] == "thread.state"
        assert state["thread"]["user_input"] == "triage" and state["thread"]["status"] == "running"
        assert state["children"] == ["T-1a"]
        assert [s["description"] for s in state["timeline"]] == ["first", "second"]
        assert [m["content"] for m in state["transcript"]] == ["go"]

        await push(ingest_key, event("thread.step", 4, sequence=3, description="third"))
        (step,) = await ws.events("thread:T-1")
        assert step["type"] == "thread.step" and step["description"] == "third"
        await push(ingest_key, event("thread.message", 5, role="agent", content="ok"))
        assert (await ws.events("thread:T-1"))[0]["content"] == "ok"
        await push(ingest_key, event("thread.ended", 6, status="complete"))
        (ended,) = await ws.events("thread:T-1")
        assert ended["type"] == "thread.ended" and ended["status"] == "complete"


async def test_it_sends_an_empty_state_for_a_thread_not_seen_yet(ingest_key: str) -> None:
    async with Socket() as ws:
        (state,) = await ws.subscribe("thread:T-later")
        assert state["thread"] is None
        await push(ingest_key, event("thread.started", thread_id="T-later"))
        (started,) = await ws.events("thread:T-later")
        assert started["type"] == "thread.started"


async def test_it_announces_thread_creation_and_end_on_global(ingest_key: str) -> None:
    await push(ingest_key, event("thread.started", thread_id="T-old"))
    async with Socket() as ws:
        (active,) = await ws.subscribe("global")
        assert active["type"] == "threads.active"
        assert [t["id"] for t in active["threads"]] == ["T-old"]
        await push(ingest_key, event("thread.started", thread_id="T-new", user_input="hi"))
        (created,) = await ws.events("global")
        assert created["type"] == "thread.created" and created["thread_id"] == "T-new"
        assert created["mcp_id"] == "srv-alpha"
        await push(ingest_key, event("thread.ended", 3, thread_id="T-new", status="error"))
        (ended,) = await ws.events("global")
        assert ended["type"] == "thread.ended" and ended["status"] == "error"


async def test_it_streams_a_servers_thread_events_on_its_mcp_channel(ingest_key: str) -> None:
    async with Socket() as ws:
        (state,) = await ws.subscribe("mcp:srv-alpha")
        assert state["type"] == "mcp.state" and state["mcp"]["id"] == "srv-alpha"
        await push(ingest_key, event("thread.started", thread_id="T-m"))
        (created,) = await ws.events("mcp:srv-alpha")
        assert created["type"] == "thread.created" and created["thread_id"] == "T-m"


async def test_it_streams_permission_checks_of_a_thread(ingest_key: str) -> None:
    await push(ingest_key, event("permission.check", 0, thread_id="T-p", resource="old"))
    async with Socket() as ws:
        history = await ws.subscribe("permission:T-p")
        assert [e["resource"] for e in history] == ["old"]
        await push(
            ingest_key, event("permission.check", 1, thread_id="T-p", granted=False, resource="fs/write")
        )
        (check,) = await ws.events("permission:T-p")
        assert check["granted"] is False and check["severity"] == "warn" and check["resource"] == "fs/write"


async def test_it_stops_streaming_after_unsubscribe(ingest_key: str) -> None:
    async with Socket() as ws:
        await ws.subscribe("logs:*")
        await ws.send(type="unsubscribe", channel="logs:*", request_id="u")
        ack = await ws.recv()
        assert (
            ack["type"] == "response"
            and ack["payload"] == {"unsubscribed": True}
            and ack["request_id"] == "u"
        )
        await push(ingest_key, event("log"))
        assert await ws.nothing()


async def test_it_does_not_send_a_duplicate_event_twice(ingest_key: str) -> None:
    log = event("log", message="once")
    async with Socket() as ws:
        await ws.subscribe("logs:*")
        await push(ingest_key, log)
        assert len(await ws.events("logs:*")) == 1
        await push(ingest_key, log)
        assert await ws.nothing()


@pytest.mark.parametrize("channel", ["", "threads:1", "thread:", "logs", "weather:today"])
async def test_it_refuses_an_unknown_channel(channel: str) -> None:
    async with Socket() as ws:
        await ws.send(type="subscribe", channel=channel, request_id="r")
        frame = await ws.recv()
        assert frame["type"] == "error" and frame["payload"]["field"] == "channel"


async def test_it_answers_ping_with_pong() -> None:
    async with Socket() as ws:
        await ws.send(type="ping", request_id="p1")
        frame = await ws.recv()
        assert (
            frame["type"] == "response" and frame["payload"] == {"pong": True} and frame["request_id"] == "p1"
        )
        assert "timestamp" in frame


async def test_it_answers_malformed_commands_with_a_clear_error() -> None:
    async with Socket() as ws:
        await ws.send(type="command", payload={"command": "reconnect"}, request_id="c1")
        frame = await ws.recv()
        assert frame["type"] == "error" and frame["request_id"] == "c1"
        assert frame["payload"]["field"] == "channel"
        await ws.send(type="command", channel="logs:*", payload={"command": "reconnect"}, request_id="c2")
        assert (await ws.recv())["payload"]["reason"] == "commands go to a server's channel, mcp:{id}"
        await ws.send(type="command", channel="mcp:time", payload={"command": "explode"}, request_id="c3")
        frame = await ws.recv()
        assert frame["payload"]["field"] == "command"
        assert "expected one of call_tool, list_tools, reconnect" in frame["payload"]["reason"]


async def test_it_answers_a_query_without_subscribing(ingest_key: str) -> None:
    await push(ingest_key, event("thread.started", thread_id="T-q"))
    async with Socket() as ws:
        await ws.send(type="query", channel="thread:T-q", request_id="q1")
        frame = await ws.recv()
        assert frame["type"] == "response" and frame["request_id"] == "q1"
        assert frame["payload"]["events"][0]["thread"]["id"] == "T-q"
        await push(ingest_key, event("thread.step", thread_id="T-q"))
        assert await ws.nothing()


async def test_it_reports_malformed_frames() -> None:
    async with Socket() as ws:
        await ws.comm.send_to(text_data="{nope")
        assert (await ws.recv())["payload"]["reason"].startswith("frame is not valid JSON: ")
        await ws.send(type="shout")
        assert (await ws.recv())["payload"]["field"] == "type"


@override_settings(WS_MAX_CONNECTIONS=1)
async def test_a_socket_past_the_connection_cap_is_told_and_closed_with_4013() -> None:
    async with Socket():
        extra = Socket()
        connected, _ = await extra.comm.connect()
        assert connected
        error = await extra.recv()
        assert error["type"] == "error"
        assert error["payload"]["field"] == "websocket.max_connections"
        closed = await extra.comm.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": CLOSE_BUSY}
    # The first socket's close frees its place.
    async with Socket() as again:
        assert await again.subscribe("global") is not None


async def test_a_publish_no_socket_here_listens_to_is_kept_for_replay_but_not_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    from missioncontrol import history
    from missioncontrol.live import Outbox, group_for

    layer = get_channel_layer()
    if not isinstance(layer, InMemoryChannelLayer):
        pytest.skip("the in-memory layer's (Redis gets every channel in one call)")
    sent: list[str] = []
    group_send = layer.group_send

    async def counted(group: str, message: dict[str, Any]) -> None:
        sent.append(group)
        await group_send(group, message)

    monkeypatch.setattr(layer, "group_send", counted)
    await layer.group_add(group_for("logs:*"), "listener!abc")
    outbox = Outbox()
    outbox.add("logs:*", '{"id": "1"}')
    outbox.add("thread:nobody-watches", '{"id": "2"}')
    await outbox.send()

    assert sent == [group_for("logs:*")]  # delivered where a socket listens, only there
    group = group_for("thread:nobody-watches")
    epoch = history.memory.replay(group, None, 0).position.epoch
    replay = history.memory.replay(group, epoch, 0)
    assert [m["events"] for m in replay.messages] == [['{"id": "2"}']]  # a later subscriber still gets it
