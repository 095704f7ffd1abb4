"""The WebSocket of `manage.py serve`, spoken to by a real client (the websockets library):
signing in with an `Authorization: Bearer` header instead of `?token=` in the URL, and a
command re-sent after a reconnect (same `command_id`) answered once, never run twice."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.processes import Server, clean_env, create_token, free_port, jwt_for, manage, register

pytestmark = pytest.mark.slow


class Served:
    def __init__(self, server: Server, env: dict[str, str], token: str, jwt: str, admin: str) -> None:
        self.server, self.env, self.token, self.jwt = server, env, token, jwt
        self.ws = f"ws://127.0.0.1:{server.port}/ws/"
        self.auth = {"Authorization": f"Bearer {token}"}
        self.admin = {"Authorization": f"Bearer {admin}"}

    def threads(self, mcp: str) -> set[str]:
        """The ids of the threads of calls to `mcp` (as an admin: every team's)."""
        answer = httpx.get(
            f"{self.server.url}/api/threads", params={"mcp": mcp}, headers=self.admin, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return {thread["id"] for thread in answer.json()["results"]}

    def settled_threads(self, mcp: str, at_least: int) -> set[str]:
        """The threads of `mcp` once there are `at_least` (recording is batched), and a
        moment more for any that should not be there."""
        deadline = time.monotonic() + 15
        while len(self.threads(mcp)) < at_least and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)
        return self.threads(mcp)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("ws-served")
    env = clean_env(MC_DATA_DIR=str(tmp / "data"), MC_DEMO="0")
    manage(env, "migrate", "--noinput", "-v0")
    token = create_token(env, "ops", "operator")
    admin = create_token(env, "root", "admin")
    port = free_port()
    server = Server([sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp / "serve.log")
    try:
        server.wait_healthy()
        # A server whose `pause(seconds)` tool takes its time: a call is under way when the socket drops.
        register(
            server.url,
            admin,
            {"id": "leaky", "command": sys.executable, "args": ["-m", "tests.servers.leaky"]},
        )
        yield Served(server, env, token, jwt_for(env, "ops"), admin)
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


def pause_command(command_id: str | None, seconds: float = 2) -> str:
    payload: dict[str, Any] = {"command": "call_tool", "tool": "pause", "arguments": {"seconds": seconds}}
    if command_id is not None:
        payload["command_id"] = command_id
    return json.dumps({"type": "command", "channel": "mcp:leaky", "payload": payload, "request_id": "call-1"})


async def final_frame(ws: Any, timeout: float = 30) -> dict[str, Any]:
    """The command's response or error (progress events skipped)."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=timeout))
        if frame["type"] != "event":
            return frame


def test_a_command_resent_after_a_reconnect_runs_once_and_gets_the_first_answer(served: Served) -> None:
    before = served.threads("leaky")

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(served.ws, additional_headers=served.auth) as ws:
            await ws.send(pause_command("page-7f3a:1"))
            await asyncio.sleep(0.7)  # the call is under way when the connection drops
        answers = []
        # The re-send on a new socket waits for the first run's answer, ...
        async with websockets.connect(served.ws, additional_headers=served.auth) as ws:
            await ws.send(pause_command("page-7f3a:1"))
            answers.append(await final_frame(ws))
        # ... and a later one gets it at once.
        async with websockets.connect(served.ws, additional_headers=served.auth) as ws:
            started = asyncio.get_running_loop().time()
            await ws.send(pause_command("page-7f3a:1"))
            answers.append(await final_frame(ws))
            assert asyncio.get_running_loop().time() - started < 1.5
        return answers

    first, again = asyncio.run(scenario())
    assert first["type"] == "response" and first["request_id"] == "call-1", first
    assert first["payload"]["thread_id"], first
    assert again["payload"] == first["payload"]
    assert served.settled_threads("leaky", len(before) + 1) - before == {first["payload"]["thread_id"]}

    # Another id is another command: it runs.
    async def another() -> dict[str, Any]:
        async with websockets.connect(served.ws, additional_headers=served.auth) as ws:
            await ws.send(pause_command("page-7f3a:2", seconds=0.1))
            return await final_frame(ws)

    other = asyncio.run(another())
    assert other["type"] == "response" and other["payload"]["thread_id"] != first["payload"]["thread_id"]
    assert served.settled_threads("leaky", len(before) + 2) - before == {
        first["payload"]["thread_id"],
        other["payload"]["thread_id"],
    }


def test_a_command_id_must_be_a_short_string(served: Served) -> None:
    async def scenario() -> dict[str, Any]:
        async with websockets.connect(served.ws, additional_headers=served.auth) as ws:
            frame = json.loads(pause_command(None))
            frame["payload"]["command_id"] = 42
            await ws.send(json.dumps(frame))
            return await final_frame(ws)

    refusal = asyncio.run(scenario())
    assert refusal["type"] == "error" and refusal["payload"]["field"] == "command_id", refusal
