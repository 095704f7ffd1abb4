"""Shared fixtures: ingest keys, event builders, a WebSocket helper, server processes."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from channels.testing import WebsocketCommunicator

from mcps.models import IngestKey, MCPServer

pytest_plugins = ["tests.mcp_servers"]  # the real-MCP-server fixtures: repo, gateway

BASE_TIME = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
_ids = itertools.count(1)


def at(seconds: float) -> str:
    """An ISO timestamp `seconds` after a fixed base, so order is explicit in tests."""
    return (BASE_TIME + timedelta(seconds=seconds)).isoformat()


def event(type_: str, seconds: float = 0, **fields: Any) -> dict[str, Any]:
    """A valid event of `type_` with sensible defaults; fields override them."""
    defaults: dict[str, dict[str, Any]] = {
        "thread.started": {"thread_id": "T-1", "user_input": "summarise the repo"},
        "thread.step": {
            "thread_id": "T-1",
            "sequence": 1,
            "step_type": "tool_call",
            "description": "git log",
        },
        "thread.message": {"thread_id": "T-1", "role": "user", "content": "hello"},
        "thread.ended": {"thread_id": "T-1", "status": "complete"},
        "log": {"level": "INFO", "service": "executor", "message": "tool finished"},
        "permission.check": {
            "thread_id": "T-1",
            "user_id": "alice",
            "resource": "git/commit",
            "action": "execute",
            "granted": True,
        },
    }
    body: dict[str, Any] = {"id": f"ev-{next(_ids)}", "type": type_, "timestamp": at(seconds)}
    body.update(defaults[type_])
    body.update(fields)
    return body


def store(*events: dict[str, Any], mcp_id: str | None = None) -> None:
    """Store `events` through the ingest pipeline, as pushed by an unbound ingest key."""
    from missioncontrol.ingest.events import Source
    from missioncontrol.ingest.pipeline import ingest

    result = ingest(list(events), Source(mcp_id=mcp_id))
    assert all(v.status == "accepted" for v in result.verdicts), result.verdicts


def result_ids(response: Any) -> list[str]:
    """The ids of a successful list response's `results`, in order."""
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture(autouse=True, scope="session")
def _no_system_directives_on_migrate() -> None:
    """Test databases start with no directive; tests about the system ones load them."""
    from django.conf import settings

    settings.LOAD_SYSTEM_DIRECTIVES = False


@pytest.fixture(autouse=True)
def _no_embedded_gateway(settings: Any) -> None:
    """Tests that need a gateway (or the scheduler) start their own, on their own event loop."""
    settings.GATEWAY_EMBEDDED = False
    settings.SCHEDULE_IN_PROCESS = False


@pytest.fixture(autouse=True)
def _own_spool(settings: Any, tmp_path: Any) -> None:
    """Each test spools into a directory of its own; tests drain it themselves."""
    settings.SPOOL_DIR = tmp_path / "spool"
    settings.SPOOL_DRAIN_IN_PROCESS = False


@pytest.fixture(autouse=True)
def _eager_celery(settings: Any) -> None:
    """Tasks run where they are handed over (directive runs included), Redis or not."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Users are made in many tests; the production hasher's cost is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_server_registry() -> Iterator[None]:
    """Each test starts with no memory of servers registered by an earlier one."""
    MCPServer.objects.forget_registered()
    yield
    MCPServer.objects.forget_registered()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """Each test starts with no requests counted against the rate limits."""
    from missioncontrol.ratelimit import limiter, sockets

    limiter().reset()
    sockets().reset()
    yield
    limiter().reset()
    sockets().reset()


@pytest.fixture
def server(db: None) -> MCPServer:
    return MCPServer.objects.create(id="srv-alpha", name="alpha")


@pytest.fixture
def ingest_key(server: MCPServer) -> str:
    """A raw ingest key bound to server srv-alpha."""
    _key, raw = IngestKey.objects.issue("alpha-key", server)
    return raw


@pytest.fixture
def open_key(db: None) -> str:
    """A raw ingest key bound to no server: events must name their mcp_id."""
    _key, raw = IngestKey.objects.issue("open-key")
    return raw


class Socket:
    """A WebsocketCommunicator speaking the contract's JSON frames.

    `headers` (name, value) are sent with the handshake (an Origin, say); `client` is
    the peer's (address, port).
    """

    def __init__(
        self, headers: list[tuple[bytes, bytes]] | None = None, client: tuple[str, int] | None = None
    ) -> None:
        from missioncontrol.asgi import application

        self.comm = WebsocketCommunicator(application, "/ws/", headers=headers)
        if client is not None:
            self.comm.scope["client"] = client

    async def __aenter__(self) -> Socket:
        connected, _ = await self.comm.connect()
        assert connected
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.comm.disconnect()

    async def send(self, **frame: Any) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def recv(self, timeout: float = 3) -> dict[str, Any]:
        return json.loads(await self.comm.receive_from(timeout=timeout))

    async def subscribe(self, channel: str, **payload: Any) -> list[dict[str, Any]]:
        """Subscribe; return the snapshot events that follow the acknowledgement."""
        await self.send(type="subscribe", channel=channel, payload=payload, request_id=channel)
        ack = await self.recv()
        assert ack["type"] == "response" and ack["payload"] == {"subscribed": True}, ack
        snapshot = await self.recv()
        assert snapshot["type"] == "event" and snapshot["channel"] == channel, snapshot
        return snapshot["payload"]["events"]

    async def events(self, channel: str, timeout: float = 3) -> list[dict[str, Any]]:
        frame = await self.recv(timeout)
        assert frame["type"] == "event" and frame["channel"] == channel, frame
        return frame["payload"]["events"]

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.comm.receive_nothing(timeout=timeout)


@pytest.fixture
def socket() -> Iterator[type[Socket]]:
    yield Socket


async def post_batch(
    body: Any, key: str | None, *, raw: bool = False, method: str = "POST"
) -> httpx.Response:
    """Send a batch to /api/ingest/events through the ASGI application, as daphne would."""
    from missioncontrol.asgi import application

    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    content = body if raw else json.dumps(body)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, "/api/ingest/events", content=content, headers=headers)
