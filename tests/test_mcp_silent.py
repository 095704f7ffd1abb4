"""/mcp answers a 2026-07-28 request that asked for no notifications with one JSON body,
and streams to one that asked for progress (mcps/endpoint/silent.py)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import httpx2
import mcp_types as types
import pytest
from asgiref.sync import sync_to_async
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcps.endpoint import silent
from mcps.gateway.service import Gateway
from tests.mcp_servers import superuser_token


def _request(meta: dict[str, Any] | None = None, method: str = "tools/call", **extra: Any) -> bytes:
    params: dict[str, Any] = {"name": "time__get_current_time", "arguments": {}}
    if meta is not None:
        params["_meta"] = meta
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params, **extra}).encode()


def test_a_request_that_asked_for_no_notifications_is_told_apart() -> None:
    assert silent.wants_no_notifications(_request())
    assert silent.wants_no_notifications(_request({"io.modelcontextprotocol/clientInfo": {"name": "a"}}))
    assert not silent.wants_no_notifications(_request({"progressToken": 7}))
    assert not silent.wants_no_notifications(_request({types.LOG_LEVEL_META_KEY: "info"}))
    assert not silent.wants_no_notifications(_request(method="subscriptions/listen"))
    notification = json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled"}).encode()
    assert not silent.wants_no_notifications(notification)
    assert not silent.wants_no_notifications(b"{not json")
    assert not silent.wants_no_notifications(b"[1, 2]")


def test_only_posts_past_the_handshake_era_are_candidates() -> None:
    def scope(method: str, version: bytes | None) -> dict[str, Any]:
        headers = [(b"mcp-protocol-version", version)] if version else []
        return {"method": method, "headers": headers}

    assert silent.is_modern_post(scope("POST", b"2026-07-28"))
    assert not silent.is_modern_post(scope("POST", b"2025-06-18"))
    assert not silent.is_modern_post(scope("POST", None))
    assert not silent.is_modern_post(scope("GET", b"2026-07-28"))


async def test_the_body_read_is_handed_again_and_an_oversized_one_is_not_kept() -> None:
    parts = [
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.request", "body": b"1}", "more_body": False},
        {"type": "http.disconnect"},
    ]

    def receiver() -> Any:
        queue = list(parts)

        async def receive() -> dict[str, Any]:
            return queue.pop(0)

        return receive

    body, again = await silent.read_body(receiver(), limit=100)
    assert body == b'{"a":1}'
    assert [await again() for _ in parts] == parts

    body, again = await silent.read_body(receiver(), limit=4)
    assert body is None  # over the limit: the SDK's own check answers 413
    assert [await again() for _ in parts] == parts


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for server-everything")
async def test_a_call_without_progress_is_answered_in_place_and_one_with_progress_is_streamed(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcps.endpoint.http import mcp_endpoint
    from missioncontrol.asgi import application

    token = await sync_to_async(superuser_token)()
    answers: list[tuple[str, str]] = []

    async def seen(response: httpx2.Response) -> None:
        if response.request.method == "POST":
            answers.append((json.loads(response.request.content)["method"], response.headers["content-type"]))

    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    http = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=application),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {token}"},
        event_hooks={"response": [seen]},
        timeout=httpx2.Timeout(30, read=300),
    )
    async with http, Client(streamable_http_client("http://testserver/mcp", http_client=http)) as client:
        first = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not first.is_error and "UTC" in first.content[0].text
        managers = mcp_endpoint._managers
        assert managers is not None
        served: list[str] = []
        for name in ("streaming", "plain"):
            manager = getattr(managers, name)
            monkeypatch.setattr(manager, "handle_request", _counted(manager.handle_request, served, name))
        answers.clear()
        await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert answers == [("tools/call", "application/json")]
        assert served == ["plain"]  # the JSON-mode manager: no stream, no watcher task
        answers.clear()
        served.clear()
        await client.call_tool(
            "everything__trigger-long-running-operation",
            {"duration": 0.6, "steps": 2},
            progress_callback=on_progress,
        )
        assert progress == [1, 2]
        assert answers == [("tools/call", "text/event-stream")]
        assert served == ["streaming"]
    await mcp_endpoint.batcher.close()


def _counted(handle: Any, served: list[str], name: str) -> Any:
    async def counted(scope: Any, receive: Any, send: Any) -> None:
        served.append(name)
        await handle(scope, receive, send)

    return counted
