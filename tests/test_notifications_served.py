"""Notifications from the real server process: `manage.py serve` on the embedded default holds
a stdio server; killing it sends an alert to a webhook (retried after a failed first try),
and its coming back sends the resolve message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import ROOT, Server, clean_env, create_token, free_port
from tests.receivers import webhook

pytestmark = pytest.mark.slow


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_killed_server_alerts_a_webhook_and_its_return_resolves_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "time.pid"
    env = clean_env(
        MC_DATA_DIR=str(tmp_path / "data"),
        MC_DEMO="0",
        # The killed server comes back 7 to 14 s later: after the alert's retry (5 s).
        MC_GATEWAY_BACKOFF_BASE="14",
        MC_GATEWAY_BACKOFF_CAP="14",
    )
    manage(env, "migrate", "--noinput")
    token = create_token(env)
    auth = {"Authorization": f"Bearer {token}"}
    port = free_port()
    server = Server(
        [sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp_path / "serve.log"
    )
    with webhook() as hook:
        try:
            server.wait_healthy()
            api = httpx.Client(base_url=server.url, headers=auth, timeout=30)
            made = api.post("/api/notifications/channels", json={"name": "ops", "targets": [hook.url()]})
            assert made.status_code == 201, made.text
            channel = made.json()["id"]
            # mcp-server-time, its pid written where the test can find it (exec keeps the pid).
            script = f"echo $$ > {pid_file}; exec {sys.executable} -m mcp_server_time --local-timezone=UTC"
            registered = api.post("/api/mcps", json={"id": "time", "command": "sh", "args": ["-c", script]})
            assert registered.status_code == 201, registered.text
            wait(lambda: api.get("/api/mcps/time").json()["status"] == "connected", 60, "time to connect")

            hook.fail(1)  # the alert's first try meets a 500: Celery's backoff sends it again 5 s later
            killed = time.monotonic()
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
            (alert,) = hook.wait_for(1, timeout=30)
            assert alert["title"] == "[warn] Server time is degraded" and alert["type"] == "warning"
            assert "the server process exited" in alert["message"]
            assert time.monotonic() - killed >= 4.5  # waited its backoff, not sent again at once

            _, resolved = hook.wait_for(2, timeout=60)
            assert resolved["title"] == "[resolved] Server time is degraded" and resolved["type"] == "success"
            assert "server time is connected again" in resolved["message"]
            assert api.get("/api/mcps/time").json()["status"] == "connected"

            history = api.get(f"/api/notifications/channels/{channel}/deliveries").json()["results"]
            assert [(d["purpose"], d["status"], d["tries"]) for d in history] == [
                ("resolved", "sent", 1),
                ("alert", "sent", 2),
            ]
            first_try = history[1]["attempts"][0]
            assert first_try["ok"] is False and "Internal server error" in first_try["error"]
        finally:
            server.stop()
