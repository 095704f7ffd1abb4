"""The WebSocket of `manage.py serve`, spoken to by a real client (the websockets library):
signing in with an `Authorization: Bearer` header instead of `?token=` in the URL."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from tests.processes import Server, clean_env, create_token, free_port, jwt_for, manage

pytestmark = pytest.mark.slow


class Served:
    def __init__(self, server: Server, env: dict[str, str], token: str, jwt: str) -> None:
        self.server, self.env, self.token, self.jwt = server, env, token, jwt
        self.ws = f"ws://127.0.0.1:{server.port}/ws/"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("ws-served")
    env = clean_env(MC_DATA_DIR=str(tmp / "data"), MC_DEMO="0")
    manage(env, "migrate", "--noinput", "-v0")
    token = create_token(env, "ops", "operator")
    port = free_port()
    server = Server([sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp / "serve.log")
    try:
        server.wait_healthy()
        yield Served(server, env, token, jwt_for(env, "ops"))
    finally:
        server.stop()


async def subscribed(url: str, headers: dict[str, str]) -> dict[str, Any]:
    """The answer to a subscribe on a socket opened with `headers`."""
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": "mcp:*", "request_id": "r1"}))
        return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))


@pytest.mark.parametrize("credential", ["jwt", "token"])
def test_a_client_signs_in_with_the_authorization_header(served: Served, credential: str) -> None:
    raw = served.jwt if credential == "jwt" else served.token
    answer = asyncio.run(subscribed(served.ws, {"Authorization": f"Bearer {raw}"}))
    assert answer["type"] == "response" and answer["payload"] == {"subscribed": True}, answer
    assert answer["request_id"] == "r1"


def test_a_bad_authorization_header_is_refused_with_4401(served: Served) -> None:
    async def scenario() -> tuple[dict[str, Any], int | None]:
        async with websockets.connect(served.ws, additional_headers={"Authorization": "Bearer nope"}) as ws:
            refusal = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=10)
            return refusal, closed.value.rcvd.code if closed.value.rcvd else None

    refusal, code = asyncio.run(scenario())
    assert refusal["type"] == "error" and refusal["payload"]["field"] == "token", refusal
    assert code == 4401


def test_without_credentials_the_refusal_names_the_header(served: Served) -> None:
    async def scenario() -> dict[str, Any]:
        async with websockets.connect(served.ws) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))

    refusal = asyncio.run(scenario())
    assert "Authorization: Bearer" in refusal["payload"]["reason"], refusal
