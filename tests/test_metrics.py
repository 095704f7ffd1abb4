"""GET /metrics: Prometheus text that reflects a known load, summed over processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from mcps.models import MCPServer
from missioncontrol.ingest.spool import default_spool
from missioncontrol.tasks import drain_spool
from tests.conftest import Socket, event, post_batch
from tests.processes import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client: Any) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


async def ascrape(async_client: Any) -> str:
    response = await async_client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


async def test_ingest_counters_follow_the_events_answered(ingest_key: str, async_client: Any) -> None:
    before = await ascrape(async_client)
    await post_batch({"events": [event("log", id="m1"), event("log", id="m2"), {"id": "x"}]}, ingest_key)
    await post_batch({"events": [event("log", id="m1"), event("log", id="m3")]}, ingest_key)
    after = await ascrape(async_client)

    def delta(outcome: str) -> float:
        name = "mission_control_ingest_events_total"
        return value(after, name, outcome=outcome) - value(before, name, outcome=outcome)

    assert (delta("accepted"), delta("duplicate"), delta("rejected"), delta("spooled")) == (3, 1, 1, 0)


async def test_it_counts_open_websocket_connections(async_client: Any) -> None:
    before = value(await ascrape(async_client), "mission_control_websocket_connections")
    async with Socket(), Socket():
        assert value(await ascrape(async_client), "mission_control_websocket_connections") == before + 2
    assert value(await ascrape(async_client), "mission_control_websocket_connections") == before


def test_it_reports_spool_depth_and_server_statuses(client: Any) -> None:
    MCPServer.objects.create(id="a", name="a", status="connected")
    MCPServer.objects.create(id="b", name="b", status="connected")
    MCPServer.objects.create(id="c", name="c", status="degraded")
    default_spool().append([event("log")], None)
    text = scrape(client)
    assert value(text, "mission_control_spool_depth") == 1
    assert value(text, "mission_control_spool_bytes") > 0
    assert value(text, "mission_control_mcp_connections", status="connected") == 2
    assert value(text, "mission_control_mcp_connections", status="degraded") == 1
    assert value(text, "mission_control_database_up") == 1


def test_a_scrape_the_database_does_not_answer_says_so_and_keeps_the_spool_depth(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from missioncontrol import metrics

    def unreachable() -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(metrics, "_database_sources", [*metrics._database_sources, unreachable])
    default_spool().append([event("log")], None)
    text = scrape(client)
    assert value(text, "mission_control_database_up") == 0
    assert "mission_control_mcp_connections" not in text
    assert value(text, "mission_control_spool_depth") == 1


def test_it_times_rest_queries_and_counts_task_runs(client: Any) -> None:
    before = scrape(client)
    assert client.get("/api/logs").status_code in (200, 401, 403)
    drain_spool.apply()
    after = scrape(client)
    latency = "mission_control_query_latency_seconds_count"
    assert value(after, latency, surface="rest") == value(before, latency, surface="rest") + 1
    runs = "mission_control_task_runs_total"
    labels = {"task": "missioncontrol.drain_spool", "status": "succeeded"}
    assert value(after, runs, **labels) == value(before, runs, **labels) + 1


async def test_it_times_gateway_calls_per_server(gateway: Any, async_client: Any) -> None:
    before = await ascrape(async_client)
    await gateway.handle(
        "call_tool", {"mcp_id": "time", "tool": "get_current_time", "arguments": {"timezone": "UTC"}}
    )
    after = await ascrape(async_client)
    name = "mission_control_gateway_call_seconds_count"
    assert (
        value(after, name, mcp_id="time", outcome="ok")
        == value(before, name, mcp_id="time", outcome="ok") + 1
    )
    assert await sync_to_async(lambda: MCPServer.objects.get(id="time").status)() == "connected"
    assert value(after, "mission_control_mcp_connections", status="connected") >= 3


_COUNT_IN_A_PROCESS = """
import django, sys
django.setup()
from missioncontrol import metrics
metrics.INGEST_EVENTS.labels("accepted").inc(int(sys.argv[1]))
"""

_SCRAPE_IN_A_PROCESS = """
import django
django.setup()
from missioncontrol.metrics import exposition
print(exposition()[0].decode())
"""


def test_processes_sharing_a_metrics_directory_are_summed(tmp_path: Path) -> None:
    import os

    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "DJANGO_SETTINGS_MODULE": "missioncontrol.settings",
    }
    (tmp_path / "prom").mkdir()
    for n in (5, 7):
        subprocess.run(
            [sys.executable, "-c", _COUNT_IN_A_PROCESS, str(n)], cwd=ROOT, env=env, check=True, timeout=60
        )
    out = subprocess.run(
        [sys.executable, "-c", _SCRAPE_IN_A_PROCESS],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert value(out, "mission_control_ingest_events_total", outcome="accepted") == 12


def test_the_shipped_grafana_dashboard_asks_only_for_metrics_mission_control_exports(client: Any) -> None:
    """deploy/grafana/mission-control.json: every metric its queries name is one /metrics
    declares (a renamed metric would leave a panel empty without a word)."""
    import json
    import re

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "mission-control.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    asked = {name for query in queries for name in re.findall(r"mission_control_[a-z_]+", query)}
    exported = set()
    for family in text_string_to_metric_families(scrape(client)):
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
        }.get(family.type, ("",))
        exported |= {family.name + suffix for suffix in suffixes}
    if connection.vendor != "postgresql":
        asked.discard("mission_control_db_connection_pool")  # read from pg_stat_activity
    assert len(queries) >= 12 and asked, queries
    assert asked <= exported, sorted(asked - exported)
