"""Floods get 429 with Retry-After (or a WebSocket error frame, then a close); others don't.

Every surface: ingest, the OTLP receiver, REST, GraphQL, the export, /mcp (an `mcp` SDK
client and raw HTTP) and the WebSocket.
"""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from mcp.shared.exceptions import MCPError

from mcps.endpoint.http import RATE_LIMITED
from missioncontrol import ratelimit
from missioncontrol.config import Rate, RateLimitsConfig, parse_config
from missioncontrol.consumers import CLOSE_FLOOD, CLOSE_TOO_MANY_CONNECTIONS
from missioncontrol.ratelimit import MemoryLimiter, RedisLimiter, RedisSockets, limiter
from tests.conftest import Socket, api_token, event, make_user, post_batch, signed_in
from tests.mcp_servers import mcp_client
from tests.test_otlp_http import post as otlp_post


@pytest.fixture(autouse=True)
def _window_starts_with_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limiters count in fixed windows (60 s here): their clock is shifted so one
    begins as the test does, and a test's hits never straddle two windows (which would
    let a few more through and make the counts below flaky)."""
    wall, steady = time.time() % 60 - 0.5, time.monotonic() % 60 - 0.5
    clock = SimpleNamespace(time=lambda: time.time() - wall, monotonic=lambda: time.monotonic() - steady)
    monkeypatch.setattr(ratelimit, "time", clock)


def limits(settings: Any, **changes: Any) -> None:
    settings.RATE_LIMITS = dataclasses.replace(RateLimitsConfig(), **changes)


def assert_limited(response: Any, limit: str) -> None:
    assert response.status_code == 429, response.content
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    error = response.json()["error"]
    assert error["limit"] == limit and error["retry_after"] == retry_after
    assert "retry in" in error["reason"]


def test_rates_read_from_mission_control_yml() -> None:
    config = parse_config(
        {
            "rate_limits": {
                "ingest": "100/10s",
                "api": "5000/h",
                "websocket_frames": "off",
                "websocket_connections": 3,
            }
        }
    ).rate_limits
    assert config == RateLimitsConfig(Rate(100, 10), Rate(5000, 3600), Rate(0, 1), 3)
    with pytest.raises(Exception, match="rate_limits.api"):
        parse_config({"rate_limits": {"api": "lots"}})


def test_the_limiter_is_shared_through_redis_when_redis_url_is_set(settings: Any) -> None:
    assert isinstance(limiter(), RedisLimiter if settings.REDIS_URL else MemoryLimiter)


@pytest.mark.django_db(transaction=True)
async def test_an_ingest_key_past_its_rate_gets_429_and_another_key_does_not(
    settings: Any, ingest_key: str, open_key: str
) -> None:
    limits(settings, ingest=Rate(3, 60))
    for n in range(3):
        response = await post_batch({"events": [event("log", message=f"m{n}")]}, ingest_key)
        assert response.status_code == 200
    flood = await post_batch({"events": [event("log", message="one too many")]}, ingest_key)
    assert_limited(flood, "rate_limits.ingest")
    other = await post_batch({"events": [event("log", mcp_id="srv-beta", message="fine")]}, open_key)
    assert other.status_code == 200


@pytest.fixture
def alice(db: None) -> Client:
    return signed_in(make_user("alice", "viewer", "alpha"))


@pytest.fixture
def bob(db: None) -> Client:
    return signed_in(make_user("bob", "viewer", "alpha"))


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/threads", "/api/logs", "/api/logs/export?format=jsonl"])
def test_rest_requests_past_the_users_rate_get_429_and_other_users_do_not(
    settings: Any, alice: Client, bob: Client, path: str
) -> None:
    limits(settings, api=Rate(4, 60))
    for _ in range(4):  # each request counted once, whichever way it is served
        assert alice.get(path).status_code == 200
    assert_limited(alice.get(path), "rate_limits.api")
    assert bob.get(path).status_code == 200
    assert Client().get(path, REMOTE_ADDR="10.0.0.9").status_code == 401  # anonymous: refused anyway


@pytest.mark.django_db
def test_graphql_requests_past_the_users_rate_get_429(settings: Any, alice: Client, bob: Client) -> None:
    limits(settings, api=Rate(3, 60))
    query = {"query": "{ threads { totalCount } }"}

    def ask(client: Client) -> Any:
        return client.post("/graphql", query, content_type="application/json")

    for _ in range(3):
        assert ask(alice).status_code == 200
    assert_limited(ask(alice), "rate_limits.api")
    assert ask(bob).status_code == 200


@pytest.mark.django_db
def test_anonymous_clients_are_limited_per_address(settings: Any) -> None:
    # Refused (401) until the limit, then told to slow down: a flood of guesses is limited.
    limits(settings, api=Rate(2, 60))
    client = Client()

    def ask(**extra: Any) -> int:
        body = {"query": "{ threads { totalCount } }"}
        return client.post("/graphql", body, content_type="application/json", **extra).status_code

    assert [ask() for _ in range(3)] == [401, 401, 429]
    assert ask(REMOTE_ADDR="10.0.0.7") == 401
    assert client.get("/health").status_code == 200  # not an API request


@pytest.mark.django_db(transaction=True)
async def test_a_websocket_flood_gets_an_error_frame_then_the_socket_is_closed(settings: Any) -> None:
    limits(settings, websocket_frames=Rate(5, 60))
    async with Socket() as calm, Socket() as noisy:
        for _ in range(5):
            await noisy.send(type="ping")
            assert (await noisy.recv())["payload"] == {"pong": True}
        await noisy.send(type="ping")
        error = await noisy.recv()
        assert error["type"] == "error"
        assert error["payload"]["field"] == "rate_limits.websocket_frames"
        assert 1 <= error["payload"]["retry_after"] <= 60
        for _ in range(4):  # dropped, unanswered
            await noisy.send(type="ping")
        assert await noisy.nothing()
        await noisy.send(type="ping")  # past twice the limit: the flood goes on
        closed = await noisy.comm.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": CLOSE_FLOOD}

        await calm.send(type="ping")  # another connection keeps its own budget
        assert (await calm.recv())["payload"] == {"pong": True}


@pytest.mark.django_db(transaction=True)
async def test_a_user_past_the_connection_cap_is_refused_and_others_are_not(settings: Any) -> None:
    limits(settings, websocket_connections=2)
    carol = await sync_to_async(make_user)("carol", "viewer", "alpha")
    dave = await sync_to_async(make_user)("dave", "viewer", "alpha")
    here = ("10.0.0.1", 50000)  # the same address: it is the user that counts
    async with Socket(client=here, user=carol) as first, Socket(client=here, user=carol) as second:
        for ws in (first, second):  # an answer: its connect() has finished, its place is taken
            await ws.send(type="ping")
            assert (await ws.recv())["payload"] == {"pong": True}
        third = Socket(client=here, user=carol)
        connected, _ = await third.comm.connect()
        assert connected  # accepted only to say why, then closed
        error = await third.recv()
        assert error["type"] == "error"
        assert error["payload"]["field"] == "rate_limits.websocket_connections"
        closed = await third.comm.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": CLOSE_TOO_MANY_CONNECTIONS}
        async with Socket(client=here, user=dave) as elsewhere:
            await elsewhere.send(type="ping")
            assert (await elsewhere.recv())["payload"] == {"pong": True}
    async with Socket(client=here, user=carol) as again:  # a closed socket frees its place
        await again.send(type="ping")
        assert (await again.recv())["payload"] == {"pong": True}


async def test_open_sockets_are_counted_across_processes_through_redis(settings: Any) -> None:
    if not settings.REDIS_URL:
        pytest.skip("the embedded default counts in its one process")
    one = RedisSockets(settings.REDIS_URL, settings.RATE_LIMIT_KEY_PREFIX)
    other = RedisSockets(settings.REDIS_URL, settings.RATE_LIMIT_KEY_PREFIX)  # another web process
    assert await one.open("user:1", "socket-a", 2)
    assert await other.open("user:1", "socket-b", 2)
    assert not await other.open("user:1", "socket-c", 2)
    assert await other.open("user:2", "socket-d", 2)
    await one.close("user:1", "socket-a")
    assert await other.open("user:1", "socket-c", 2)


# --- /mcp and the OTLP receiver ----------------------------------------------------------


def _tokens() -> tuple[str, str]:
    """API tokens of two operators of team alpha."""
    return (
        api_token(make_user("olga", "operator", "alpha"), "alpha"),
        api_token(make_user("otto", "operator", "alpha"), "alpha"),
    )


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}


async def _initialize(http: httpx.AsyncClient, token: str) -> httpx.Response:
    """A handshake's first request, in raw HTTP."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    return await http.post("/mcp", json=INITIALIZE, headers=headers)


@pytest.mark.django_db(transaction=True)
async def test_mcp_requests_past_the_tokens_rate_get_429_with_a_json_rpc_error(settings: Any) -> None:
    from missioncontrol.asgi import application

    limits(settings, mcp=Rate(4, 60))
    mine, theirs = await sync_to_async(_tokens)()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for _ in range(4):  # within the limit: answered by the MCP server
            answered = await _initialize(http, mine)
            assert answered.status_code == 200 and "serverInfo" in answered.text, answered.text
        flood = await _initialize(http, mine)
        assert flood.status_code == 429
        retry_after = int(flood.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        assert flood.headers["content-type"] == "application/json"
        answer = flood.json()
        assert answer["jsonrpc"] == "2.0" and answer["id"] is None
        assert answer["error"]["code"] == RATE_LIMITED
        assert answer["error"]["message"].startswith(
            "Rate limit exceeded: more than 4 per 60 s for this token"
        )
        assert answer["error"]["data"] == {
            "limit": "rate_limits.mcp",
            "reason": answer["error"]["data"]["reason"],
            "retry_after": retry_after,
        }
        assert (await _initialize(http, theirs)).status_code == 200  # another token: its own budget
        # A flood of a credential that is not valid is limited too, before any lookup.
        for _ in range(4):
            assert (await _initialize(http, "mct_never-issued")).status_code == 401
        assert (await _initialize(http, "mct_never-issued")).status_code == 429


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_mcp_client_past_its_rate_gets_the_limit_as_its_calls_error(
    settings: Any, mode: str
) -> None:
    limits(settings, mcp=Rate(8, 60))
    mine, theirs = await sync_to_async(_tokens)()
    answered = 0
    async with mcp_client(mine, mode) as client:
        with pytest.raises(MCPError) as refused:
            for _ in range(10):
                result = await client.call_tool("missioncontrol__list_servers", {})
                assert not result.is_error
                answered += 1
        assert 1 <= answered < 8  # the handshake (and a legacy client's tools/list) took their share
    assert refused.value.code == RATE_LIMITED
    assert refused.value.message.startswith("Rate limit exceeded: more than 8 per 60 s")
    assert refused.value.data["limit"] == "rate_limits.mcp"
    assert 1 <= refused.value.data["retry_after"] <= 60
    async with mcp_client(theirs, mode) as client:  # another token's client is not affected
        assert not (await client.call_tool("missioncontrol__list_servers", {})).is_error


async def _export(key: str, content_type: str = "application/x-protobuf") -> httpx.Response:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    body = ExportTraceServiceRequest().SerializeToString() if "protobuf" in content_type else "{}"
    return await otlp_post("/v1/traces", body, key, content_type)


@pytest.mark.django_db(transaction=True)
async def test_otlp_exports_past_the_keys_rate_get_429_with_retry_info_and_another_key_does_not(
    settings: Any, ingest_key: str, open_key: str
) -> None:
    from google.rpc import code_pb2, error_details_pb2, status_pb2

    limits(settings, otlp=Rate(3, 60))
    for _ in range(3):
        assert (await _export(ingest_key)).status_code == 200
    flood = await _export(ingest_key)
    assert flood.status_code == 429
    retry_after = int(flood.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    status = status_pb2.Status.FromString(flood.content)
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert status.message.startswith("more than 3 per 60 s for this ingest key")
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry) and retry.retry_delay.seconds == retry_after
    as_json = await _export(ingest_key, "application/json")  # refused in the request's encoding
    assert as_json.status_code == 429 and as_json.json()["code"] == code_pb2.RESOURCE_EXHAUSTED
    assert (await _export(open_key)).status_code == 200  # another key keeps its own budget
    # The receiver's budget is its own: the key may still push batches to the ingest API.
    assert (await post_batch({"events": [event("log", message="fine")]}, ingest_key)).status_code == 200


def test_the_mcp_and_otlp_rates_are_read_validated_and_overridden(tmp_path: Any) -> None:
    config = parse_config({"rate_limits": {"mcp": "60/10s", "otlp": "off"}}).rate_limits
    assert (config.mcp, config.otlp) == (Rate(60, 10), Rate(0, 1))
    defaults = RateLimitsConfig()
    assert (defaults.mcp, defaults.otlp) == (Rate(1200, 60), Rate(3000, 60))
    with pytest.raises(Exception, match=r"rate_limits\.mcp"):
        parse_config({"rate_limits": {"mcp": "fast"}})
    with pytest.raises(Exception, match=r"rate_limits\.otlp"):
        parse_config({"rate_limits": {"otlp": "10/0s"}})
