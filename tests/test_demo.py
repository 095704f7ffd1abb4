"""The first-run demo: seed_demo, and the demo agent `serve` starts beside the web process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from audit.models import PermissionEvent
from logs.models import LogEntry
from mcps.models import IngestKey, MCPServer
from missioncontrol.config import ConfigError, parse_config
from tests.conftest import event, store
from tests.processes import ROOT, Server, clean_env, create_token, free_port, manage
from threads.models import ExecutionStep, LLMMessage, Thread

# The SDK's sender thread stores the round: it sees only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


def seed_demo(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_demo_on_an_empty_database_records_a_real_tool_call_with_threads_steps_and_logs() -> None:
    output = seed_demo("--if-empty")
    assert "demo: seeded; first thread" in output
    time_server = MCPServer.objects.get(id="time")
    assert time_server.managed and time_server.args == ["-m", "mcp_server_time"]
    assert IngestKey.objects.get(name="demo-agent").mcp_id == "demo-agent"

    parent = Thread.objects.get(parent__isnull=True)
    assert parent.status == "complete" and parent.mcp_id == "demo-agent"
    children = list(Thread.objects.filter(parent=parent).order_by("started_at"))
    assert [c.user_input for c in children] == ["Look up the time in Tokyo", "Look up the time in New York"]
    lookup = ExecutionStep.objects.get(thread=children[0], step_type="tool_call")
    # The answer of the real mcp-server-time, not a canned one.
    assert lookup.details["result"]["timezone"] == "Asia/Tokyo" and lookup.status == "complete"
    assert "T" in lookup.details["result"]["datetime"]
    failed = ExecutionStep.objects.get(thread=parent, step_type="tool_call", status="error")
    assert "Invalid timezone" in failed.details["error"]
    assert LogEntry.objects.filter(thread_id=children[0].id, message__startswith="Tokyo: ").exists()
    assert LogEntry.objects.filter(thread_id=parent.id, level="WARN").count() == 2
    assert PermissionEvent.objects.filter(granted=False, resource="time/set_system_time").exists()
    assert LLMMessage.objects.filter(thread=parent, role="agent", content__contains="09:00 in Tokyo").exists()


def test_seed_demo_is_idempotent() -> None:
    seed_demo("--no-round")
    counts = (MCPServer.objects.count(), IngestKey.objects.count(), Thread.objects.count())
    assert "already seeded" in seed_demo()
    assert (MCPServer.objects.count(), IngestKey.objects.count(), Thread.objects.count()) == counts


def test_seed_demo_leaves_a_database_with_data_alone_when_asked_to() -> None:
    store(event("log", mcp_id="srv-x"))
    assert "has data already" in seed_demo("--if-empty")
    assert not MCPServer.objects.filter(id="time").exists()


def test_the_demo_can_be_switched_off(settings: Any) -> None:
    settings.DEMO = False
    assert "switched off" in seed_demo()
    assert not IngestKey.objects.exists()


def test_the_config_file_switches_the_demo_off_with_a_boolean() -> None:
    assert parse_config({}).demo is True and parse_config({"demo": False}).demo is False
    with pytest.raises(ConfigError, match="demo: expected true or false"):
        parse_config({"demo": "no"})


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


@pytest.mark.slow
def test_serve_runs_the_demo_agent_which_calls_tools_through_mcp_and_reports_through_the_sdk(
    tmp_path: Path,
) -> None:
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_DEMO_INTERVAL="1")
    for command in (["migrate", "--noinput"], ["seed_demo", "--if-empty", "--no-round"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, timeout=120)
    port = free_port()
    server = Server(
        [sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp_path / "serve.log"
    )
    db = tmp_path / "data" / "missioncontrol.sqlite3"
    try:
        server.wait_healthy()
        deadline = time.monotonic() + 90
        while True:
            reported = _count(db, "SELECT count(*) FROM threads_thread WHERE mcp_id = 'demo-agent'")
            # /mcp records each call it routes as a thread of the server that answered it.
            routed = _count(
                db,
                "SELECT count(*) FROM threads_executionstep s JOIN threads_thread t ON t.id = s.thread_id "
                "WHERE t.mcp_id = 'time' AND s.description = 'time__get_current_time'",
            )
            if reported >= 3 and routed >= 1:  # a whole round, from the live agent alone
                break
            assert time.monotonic() < deadline, (reported, routed, server.log.read_text()[-3000:])
            time.sleep(0.5)
        assert _count(db, "SELECT count(*) FROM logs_logentry WHERE mcp_id = 'demo-agent'") > 0
    finally:
        server.stop()


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql).fetchall())


@pytest.mark.slow
def test_the_demo_runs_clean_no_escalation_no_anomaly_and_only_its_deliberate_denials(tmp_path: Path) -> None:
    """What a new user gets from `make run`: migrate, seed_demo --if-empty, serve with
    the demo agent. Its normal rounds are not alarms; set_system_time stays a denial."""
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_DEMO_INTERVAL="0.2")

    manage(env, "migrate", "--noinput", timeout=180)
    manage(env, "seed_demo", "--if-empty", timeout=180)
    token = create_token(env)
    port = free_port()
    server = Server(
        [sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp_path / "serve.log"
    )
    db = tmp_path / "data" / "missioncontrol.sqlite3"
    rounds = "SELECT count(*) FROM threads_thread WHERE mcp_id = 'demo-agent' AND parent_id IS NULL"
    try:
        server.wait_healthy()
        deadline = time.monotonic() + 120
        while _count(db, rounds + " AND status = 'complete'") < 8:  # the seeded round and 7 live ones
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.5)
        auth = {"Authorization": f"Bearer {token}"}
        audit = f"{server.url}/api/permissions/audit"
        escalations = httpx.get(audit, params={"escalation": "true"}, headers=auth, timeout=10).json()
        assert escalations["results"] == [], escalations["results"][:3]
        denied = httpx.get(audit, params={"granted": "false"}, headers=auth, timeout=10).json()["results"]
        assert {(d["resource"], d["user_id"]) for d in denied} == {("time/set_system_time", "demo-agent")}
    finally:
        server.stop()
    report = manage(env, "run_directive", "detect_anomalies", timeout=180)
    assert "completed" in report, report

    # Every third round (0, 3, ...) tries set_system_time, off its allow-list: one denial
    # each, on the round's thread, and no other denial.
    denials = _rows(
        db,
        "SELECT p.resource, p.user_id, json_extract(t.execution_context, '$.round'), t.status "
        "FROM audit_permissionevent p JOIN threads_thread t ON t.id = p.thread_id WHERE NOT p.granted",
    )
    assert {(r, u) for r, u, _n, _s in denials} == {("time/set_system_time", "demo-agent")}
    assert all(n % 3 == 0 for _r, _u, n, _s in denials), denials
    assert sum(1 for *_, s in denials if s == "complete") == _count(
        db, rounds + " AND status = 'complete' AND json_extract(execution_context, '$.round') % 3 = 0"
    )
    # mcp-server-time logs its failed lookups at INFO: nothing the demo does is an ERROR.
    assert _rows(db, "SELECT service, message FROM logs_logentry WHERE level = 'ERROR'") == []
    alerts = _rows(db, "SELECT slug, content FROM automations_knowledgeentry WHERE slug LIKE 'anomaly-%'")
    assert alerts == [], "\n".join(f"{slug}: {content}" for slug, content in alerts)
