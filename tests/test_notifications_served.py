"""Notifications from real processes. A stdio server held by the gateway is killed: a webhook
on loopback gets the alert (its first try meets a 500 and is retried after the 5 s backoff),
and the resolve message once the gateway has the server back.

- embedded: `manage.py serve` alone (SQLite, the gateway and the sending inside it);
- production: `manage.py run_gateway` and a Celery worker on PostgreSQL and a Redis of the
  test's own (the gateway hands the alert to the worker, which sends it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connection

from mcps.models import MCPServer
from notifications.models import Channel, Delivery
from tests.faults import PrivateRedis
from tests.processes import ROOT, Server, clean_env, create_token, free_port
from tests.receivers import Webhook, webhook
from tests.test_pages_browser import celery_worker

pytestmark = pytest.mark.slow

# The killed server comes back 7 to 14 s later: after the alert's retry (5 s).
SLOW_RECONNECT = {"MC_GATEWAY_BACKOFF_BASE": "14", "MC_GATEWAY_BACKOFF_CAP": "14"}


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def time_server(pid_file: Path) -> dict[str, Any]:
    """mcp-server-time over stdio, its pid written where the test can find it (exec keeps it)."""
    script = f"echo $$ > {pid_file}; exec {sys.executable} -m mcp_server_time --local-timezone=UTC"
    return {"command": "sh", "args": ["-c", script]}


def kill_and_come_back(hook: Webhook, pid_file: Path) -> None:
    """Kill the server; the alert arrives after one retry, then the resolution."""
    hook.fail(1)  # the alert's first try meets a 500: Celery's backoff sends it again 5 s later
    killed = time.monotonic()
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    (alert,) = hook.wait_for(1, timeout=30)
    assert alert["title"] == "[warn] Server time is degraded" and alert["type"] == "warning"
    assert "the server process exited" in alert["message"]
    assert time.monotonic() - killed >= 4.5  # it waited its backoff: not sent again at once
    _, resolved = hook.wait_for(2, timeout=60)
    assert resolved["title"] == "[resolved] Server time is degraded" and resolved["type"] == "success"
    assert "server time is connected again" in resolved["message"]


def test_embedded_a_killed_server_alerts_a_webhook_and_its_return_resolves_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "time.pid"
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_DEMO="0", **SLOW_RECONNECT)
    manage(env, "migrate", "--noinput")
    auth = {"Authorization": f"Bearer {create_token(env)}"}
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
            registered = api.post("/api/mcps", json={"id": "time", **time_server(pid_file)})
            assert registered.status_code == 201, registered.text
            wait(lambda: api.get("/api/mcps/time").json()["status"] == "connected", 60, "time to connect")

            kill_and_come_back(hook, pid_file)

            assert api.get("/api/mcps/time").json()["status"] == "connected"
            history = api.get(f"/api/notifications/channels/{made.json()['id']}/deliveries").json()["results"]
            assert [(d["purpose"], d["status"], d["tries"]) for d in history] == [
                ("resolved", "sent", 1),
                ("alert", "sent", 2),
            ]
            first_try = history[1]["attempts"][0]
            assert first_try["ok"] is False and "Internal server error" in first_try["error"]
        finally:
            server.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql" or not settings.REDIS_URL, reason="needs PostgreSQL and Redis"
)
def test_production_the_gateway_hands_the_alert_to_a_celery_worker(tmp_path: Path) -> None:
    pid_file = tmp_path / "time.pid"
    redis = PrivateRedis(tmp_path, persistent=False)  # a queue no other test run's worker takes from
    redis.start()
    db = connection.settings_dict
    env = clean_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
        SECRET_KEY=settings.SECRET_KEY,  # the targets are encrypted with it
        MC_CONN_MAX_AGE="0",
        MC_DATA_DIR=str(tmp_path / "data"),
        **SLOW_RECONNECT,
    )
    with webhook() as hook:
        channel = Channel.objects.create(name="ops", targets=[hook.url()])
        MCPServer.objects.create(id="time", name="time", transport="stdio", **time_server(pid_file))
        worker = celery_worker(env, tmp_path / "worker.log")
        gateway = Server([sys.executable, "manage.py", "run_gateway"], 0, env, tmp_path / "gateway.log")
        try:
            wait(lambda: MCPServer.objects.get(id="time").status == "connected", 60, "time to connect")

            kill_and_come_back(hook, pid_file)

            history = Delivery.objects.filter(channel=channel).order_by("created_at")
            assert [(d.purpose, d.status, d.tries) for d in history] == [
                ("alert", "sent", 2),
                ("resolved", "sent", 1),
            ]
            assert "notifications.deliver" in (tmp_path / "worker.log").read_text()
        finally:
            gateway.stop()
            worker.stop()
            redis.kill()
