"""The embedded default end to end: `make run` with nothing configured serves a working system."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import event
from tests.processes import (
    Server,
    clean_env,
    create_key,
    create_token,
    descendants,
    free_port,
    manage,
    receive_after_push,
    register_and_call_time,
)

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_it_runs_on_sqlite_and_the_in_memory_layer_with_nothing_configured(tmp_path: Path) -> None:
    port = free_port()
    # The first-run demo would add its own server, threads and logs: this test wants none.
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_DEMO="0")
    server = Server(["make", "--no-print-directory", "run", f"PORT={port}"], port, env, tmp_path / "run.log")
    try:
        health = server.wait_healthy(timeout=300)
        assert health["mode"] == "embedded"
        assert health["database"]["vendor"] == "sqlite"
        assert health["channel_layer"]["backend"] == "InMemoryChannelLayer"
        assert (tmp_path / "data" / "missioncontrol.sqlite3").exists()
        key = create_key(env, "laptop", "srv-laptop")
        token = create_token(env)

        history, (log,) = receive_after_push(
            port, "logs:*", server.url, key, [event("log", message="hello from the laptop")], token
        )
        assert history == []
        assert log["message"] == "hello from the laptop" and log["mcp_id"] == "srv-laptop"

        # The gateway runs inside this one process: register a real server, call it.
        answer = register_and_call_time(server.url, token)
        assert answer["result"]["structuredContent"]["timezone"] == "UTC"
    finally:
        server.stop()


def test_a_managed_servers_health_changes_are_its_logs_live_and_stored(tmp_path: Path) -> None:
    """Kill the managed server's process: `logs:*` shows it degraded with the error, then
    reconnected, and /api/logs keeps both as the server's logs."""
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_DEMO="0")
    manage(env, "migrate", "--noinput", timeout=120)
    port = free_port()
    server = Server(
        [sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp_path / "serve.log"
    )
    try:
        server.wait_healthy()
        token = create_token(env)
        register_and_call_time(server.url, token)

        async def scenario() -> list[dict[str, Any]]:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/?token={token}") as ws:
                await ws.send(
                    json.dumps(
                        {"type": "subscribe", "channel": "logs:*", "payload": {"services": ["gateway"]}}
                    )
                )
                assert json.loads(await ws.recv())["type"] == "response"
                await ws.recv()  # the snapshot: connecting, connected
                pids = descendants(server.proc.pid, "mcp_server_time")
                assert pids, "mcp-server-time is not running under the server"
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                seen: list[dict[str, Any]] = []
                while not any(e["message"] == "time: reconnected" for e in seen):
                    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
                    seen += frame["payload"]["events"]
                return seen

        live = asyncio.run(scenario())
        # The start's own entries are batched: on a busy machine they may land after the snapshot.
        first = next(i for i, e in enumerate(live) if e["message"].startswith("time: degraded"))
        assert {e["message"] for e in live[:first]} <= {"time: connecting", "time: connected"}
        assert (live[first]["level"], live[first]["mcp_id"]) == ("WARN", "time")
        assert live[first]["message"].startswith("time: degraded, reconnecting: ")
        assert live[-1]["message"] == "time: reconnected" and live[-1]["level"] == "INFO"
        stored = httpx.get(
            f"{server.url}/api/logs",
            params={"mcps": "time", "services": "gateway"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()["results"]
        messages = [row["message"] for row in reversed(stored)]
        assert messages[:2] == ["time: connecting", "time: connected"]
        assert [m for m in messages if not m.startswith("time: degraded")][-1] == "time: reconnected"
        assert any(m.startswith("time: degraded, reconnecting: ") for m in messages)
    finally:
        server.stop()
