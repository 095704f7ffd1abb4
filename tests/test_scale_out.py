"""Two web processes on one PostgreSQL and Redis: ingest on one, receive on the other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import event
from tests.processes import (
    Server,
    daphne,
    free_port,
    receive_after_push,
    register_and_call_time,
    shared_database_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


needs_pg_and_redis = pytest.mark.skipif(
    connection.vendor != "postgresql" or not settings.REDIS_URL, reason="needs PostgreSQL and Redis"
)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@needs_pg_and_redis
def test_it_delivers_an_event_ingested_on_one_process_to_a_socket_on_another(
    tmp_path: Path, ingest_key: str, admin_token: str
) -> None:
    env = shared_database_env()
    a = daphne(free_port(), env, tmp_path / "a.log")
    b = daphne(free_port(), env, tmp_path / "b.log")
    try:
        assert a.wait_healthy()["database"]["vendor"] == "postgresql"
        assert b.wait_healthy()["channel_layer"]["backend"] == "PubSubChannelLayer"

        _state, (started,) = receive_after_push(
            b.port,
            "thread:T-x",
            a.url,
            ingest_key,
            [event("thread.started", thread_id="T-x", user_input="scale")],
            admin_token,
        )
        assert started["type"] == "thread.started" and started["user_input"] == "scale"
    finally:
        a.stop()
        b.stop()


@needs_pg_and_redis
def test_serve_runs_the_configured_workers_on_one_port_and_stops_them_all(
    tmp_path: Path, ingest_key: str, admin_token: str
) -> None:
    port = free_port()
    command = [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", "2"]
    server = Server(command, port, shared_database_env(), tmp_path / "serve.log")
    try:
        server.wait_healthy()
        workers = _children(server.proc.pid)
        assert len(workers) == 2, workers
        _state, (started,) = receive_after_push(
            port,
            "thread:T-w",
            server.url,
            ingest_key,
            [event("thread.started", thread_id="T-w")],
            admin_token,
        )
        assert started["thread_id"] == "T-w"
    finally:
        server.stop()
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
    assert "with 2 daphne workers" in (tmp_path / "serve.log").read_text()


@needs_pg_and_redis
def test_a_separate_gateway_process_serves_tool_calls_from_a_web_process(
    tmp_path: Path, admin_token: str
) -> None:
    env = shared_database_env()
    web = daphne(free_port(), env, tmp_path / "web.log")
    gateway = Server([sys.executable, "manage.py", "run_gateway"], 0, env, tmp_path / "gateway.log")
    try:
        web.wait_healthy()
        answer = register_and_call_time(web.url, admin_token)
        assert answer["result"]["structuredContent"]["timezone"] == "UTC"
        assert gateway.proc.poll() is None
    finally:
        gateway.stop()
        web.stop()
