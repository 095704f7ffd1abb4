"""The embedded default runs every periodic job of the beat schedule, as `make run` serves it.

`manage.py migrate` then `manage.py serve` on a free port and a fresh data directory,
nothing else configured but a managed stdio server and a short health interval: the
health probes are recorded, the automation tick starts a cron automation at its minute,
and the server's output holds no scheduler error.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.processes import ROOT, Server, clean_env, create_token, free_port

pytestmark = pytest.mark.slow

HEALTH_INTERVAL = 2
# The server's clock is set this many seconds before a minute starts (tests/clock/), so
# the first cron minute after start-up comes within the test's time, not up to 60 s on.
LEAD = 12


def lead_the_clock() -> str:
    """Days to add to the server's clock so that a minute starts LEAD seconds from now."""
    now = datetime.now(UTC)
    next_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return str(((next_minute - now).total_seconds() - LEAD) / 86400)


def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout} s")


def test_serve_probes_health_and_starts_cron_automations_on_their_minute(tmp_path: Path) -> None:
    config = tmp_path / "mission_control.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "mcps": {
                    "health_check_interval": HEALTH_INTERVAL,
                    "servers": {"time": {"command": sys.executable, "args": ["-m", "mcp_server_time"]}},
                }
            }
        )
    )
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_CONFIG=str(config), MC_DEMO="0")
    migrate = [sys.executable, "manage.py", "migrate", "--noinput"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    auth = {"Authorization": f"Bearer {create_token(env)}"}
    port = free_port()
    server = Server(
        [sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp_path / "serve.log"
    )
    try:
        server.wait_healthy()
        api = httpx.Client(base_url=server.url, headers=auth, timeout=10)
        every_minute = api.post(
            "/api/internal/automations",
            json={
                "name": "every minute",
                "directive": "generate_performance_report",
                "trigger": "schedule",
                "schedule": "* * * * *",
            },
        )
        assert every_minute.status_code == 201, every_minute.text
        made_at = datetime.fromisoformat(every_minute.json()["created_at"])

        # Probes start one interval after start-up; those before the server connected fail.
        probes = until(
            lambda: [p for p in api.get("/api/mcps/time/health").json()["checks"] if p["ok"]],
            timeout=HEALTH_INTERVAL * 3 + 30,
            what="passing health probe of the managed server",
        )
        assert probes[0]["latency_ms"] is not None

        runs = until(
            lambda: api.get(f"/api/internal/executions?automation={every_minute.json()['id']}").json()[
                "results"
            ],
            timeout=LEAD + 60,
            what="scheduled run of the automation",
        )
        (run,) = runs
        scheduled_for = datetime.fromisoformat(run["trigger_info"]["scheduled_for"])
        # Its first minute after it was made, not the minute it was made in.
        assert scheduled_for > made_at and scheduled_for - made_at < timedelta(minutes=1)
        # Started on that minute, as celery beat's crontab would send it.
        assert (
            timedelta(0) <= datetime.fromisoformat(run["created_at"]) - scheduled_for < timedelta(seconds=5)
        )
    finally:
        server.stop()
    output = server.log.read_text()
    assert "scheduler:" not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
