"""The embedded default end to end: `make run` with nothing configured serves a working system."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import websockets

from tests.conftest import event
from tests.processes import ROOT, Server, clean_env, create_key, free_port, post_events

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_it_runs_on_sqlite_and_the_in_memory_layer_with_nothing_configured(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"))
    server = Server(["make", "--no-print-directory", "run", f"PORT={port}"], port, env, tmp_path / "run.log")
    try:
        health = server.wait_healthy(timeout=300)
        assert health["mode"] == "embedded"
        assert health["database"]["vendor"] == "sqlite"
        assert health["channel_layer"]["backend"] == "InMemoryChannelLayer"
        assert (tmp_path / "data" / "missioncontrol.sqlite3").exists()
        key = create_key(env, "laptop", "srv-laptop")

        async def scenario() -> list[dict[str, object]]:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/") as ws:
                await ws.send(json.dumps({"type": "subscribe", "channel": "logs:*"}))
                assert json.loads(await ws.recv())["type"] == "response"
                assert json.loads(await ws.recv())["payload"]["events"] == []
                answer = post_events(server.url, key, [event("log", message="hello from the laptop")])
                assert answer["accepted"] == 1
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                return frame["payload"]["events"]

        (log,) = asyncio.run(scenario())
        assert log["message"] == "hello from the laptop" and log["mcp_id"] == "srv-laptop"
    finally:
        server.stop()
    assert ROOT.joinpath("Makefile").exists()
