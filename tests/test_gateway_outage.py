"""A real `run_gateway` killed with SIGKILL while a web process has calls in flight.

PostgreSQL and Redis shared by a daphne web process and a `run_gateway` process, the
gateway holding server-everything (stdio). The call in flight fails within seconds
with 502 and outcome unknown (it used to wait for its 60 s timeout), its thread says
so, the server is shown as unknown rather than connected, a call made while no gateway
runs is a 503 (never sent), and a gateway started again puts the server back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connection

from tests.mcp_servers import EVERYTHING
from tests.processes import Server, daphne, free_port, shared_database_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.REDIS_URL, reason="needs PostgreSQL and Redis"
    ),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for server-everything"),
]


def _status(url: str, auth: dict[str, str]) -> dict[str, Any]:
    return httpx.get(f"{url}/api/mcps/everything", headers=auth, timeout=5).json()


def _wait(predicate: Any, timeout: float, what: str) -> float:
    """Seconds until `predicate()` holds."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - start


def test_a_killed_gateway_fails_its_calls_within_seconds_and_its_servers_show_unknown(
    tmp_path: Path, admin_token: str
) -> None:
    from threads.models import ExecutionStep, Thread

    env = shared_database_env()
    auth = {"Authorization": f"Bearer {admin_token}"}
    web = daphne(free_port(), env, tmp_path / "web.log")
    gateway = Server([sys.executable, "manage.py", "run_gateway"], 0, env, tmp_path / "gateway.log")
    again: Server | None = None
    try:
        web.wait_healthy()
        spec = {"id": "everything", "command": "node", "args": [str(EVERYTHING), "stdio"]}
        assert httpx.post(f"{web.url}/api/mcps", json=spec, headers=auth, timeout=10).status_code == 201
        _wait(lambda: _status(web.url, auth)["status"] == "connected", 60, "everything to connect")

        answer: dict[str, Any] = {}

        def call() -> None:
            answer["response"] = httpx.post(
                f"{web.url}/api/mcps/everything/tools/trigger-long-running-operation/call",
                json={"arguments": {"duration": 30, "steps": 30}, "timeout": 60},
                headers=auth,
                timeout=90,
            )
            answer["at"] = time.monotonic()

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(2)  # the call runs on the server
        os.kill(gateway.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        unknown_after = _wait(lambda: _status(web.url, auth)["status"] == "unknown", 20, "unknown status")
        caller.join(30)
        assert not caller.is_alive()
        response = answer["response"]
        failed_after = answer["at"] - killed
        print(
            f"\nin-flight call failed {failed_after:.2f} s after the kill; "
            f"status unknown after {unknown_after:.2f} s"
        )
        assert response.status_code == 502, response.text
        body = response.json()
        assert body["outcome"] == "unknown" and "may or may not have run" in body["error"]["reason"]
        assert failed_after < 8, failed_after
        assert "gateway" in _status(web.url, auth)["last_error"]

        steps = ExecutionStep.objects.filter(thread_id=body["thread_id"], step_type="tool_result")
        _wait(steps.exists, 20, "the recorded call")
        step = steps.get()
        assert step.status == "error" and step.details["outcome"] == "unknown"
        assert Thread.objects.get(id=body["thread_id"]).status == "error"

        # No gateway: a new call is never sent, and says so.
        started = time.monotonic()
        refused = httpx.post(
            f"{web.url}/api/mcps/everything/tools/echo/call",
            json={"arguments": {"message": "x"}},
            headers=auth,
            timeout=30,
        )
        assert refused.status_code == 503 and "outcome" not in refused.json(), refused.text
        assert time.monotonic() - started < 5

        again = Server([sys.executable, "manage.py", "run_gateway"], 0, env, tmp_path / "gateway2.log")
        _wait(lambda: _status(web.url, auth)["status"] == "connected", 60, "the reconnect")
        echo = httpx.post(
            f"{web.url}/api/mcps/everything/tools/echo/call",
            json={"arguments": {"message": "back"}},
            headers=auth,
            timeout=30,
        )
        assert echo.status_code == 200, echo.text
    finally:
        for proc in (gateway, again):
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.proc.pid, signal.SIGKILL)
                proc.proc.wait(10)
        web.stop()
