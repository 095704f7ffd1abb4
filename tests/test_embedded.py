"""The embedded default end to end: `make run` with nothing configured serves a working system."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import event
from tests.processes import (
    Server,
    clean_env,
    create_key,
    create_token,
    free_port,
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
