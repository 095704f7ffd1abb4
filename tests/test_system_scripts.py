"""Mission Control's maintenance and analysis scripts on crafted data, with exact outcomes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import PermissionEvent
from automations import scripts
from automations.models import Directive, KnowledgeEntry
from automations.scripts.patterns import normalise
from logs.models import LogEntry
from mcps.models import HealthCheck, MCPServer
from missioncontrol.stats import percentile
from threads.models import ExecutionStep, Thread

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def ago(**delta: float) -> datetime:
    return timezone.now() - timedelta(**delta)


def finished(tid: str, ms: float, ended: datetime, status: str = "complete", **fields: Any) -> Thread:
    return Thread(
        id=tid, status=status, started_at=ended - timedelta(milliseconds=ms), ended_at=ended, **fields
    )


def run(name: str, **params: Any) -> dict[str, Any]:
    script = scripts.get(name)
    assert script is not None, name
    return script.run(params)


# -- thread health ---------------------------------------------------------------------


def test_it_marks_exactly_the_running_threads_without_a_step_for_too_long() -> None:
    Thread.objects.bulk_create(
        [
            Thread(id="idle", started_at=ago(minutes=30)),  # no step at all
            Thread(id="busy", started_at=ago(minutes=30)),  # a step a minute ago
            Thread(id="quiet", started_at=ago(minutes=30)),  # last step 20 minutes ago
            Thread(id="young", started_at=ago(minutes=1)),
            Thread(id="paused", status="paused", started_at=ago(minutes=30)),
            Thread(id="done", status="complete", started_at=ago(minutes=30), ended_at=ago(minutes=25)),
        ]
    )
    ExecutionStep.objects.bulk_create(
        [
            ExecutionStep(thread_id="busy", sequence=1, timestamp=ago(minutes=20), step_type="tool_call"),
            ExecutionStep(thread_id="busy", sequence=2, timestamp=ago(minutes=1), step_type="tool_call"),
            ExecutionStep(thread_id="quiet", sequence=1, timestamp=ago(minutes=20), step_type="tool_call"),
        ]
    )
    found = run("find_stalled_threads", timeout_seconds="300")  # a template renders text
    assert (found["checked"], found["count"]) == (4, 2)
    assert [t["id"] for t in found["threads"]] == ["idle", "quiet"]
    assert 1790 < found["threads"][0]["idle_seconds"] < 1830

    marked = run("mark_stalled_threads", timeout_seconds=300)
    assert marked["marked"] == ["idle", "quiet"]
    assert set(Thread.objects.filter(stalled_at__isnull=False).values_list("id", flat=True)) == {
        "idle",
        "quiet",
    }
    # A second round flags nothing new.
    assert run("mark_stalled_threads", timeout_seconds=300)["marked"] == []
    assert run("mark_thread_stalled", thread_id="idle", idle_seconds=1)["status"] == "already_flagged"
    assert run("mark_thread_stalled", thread_id="done", idle_seconds=1)["status"] == "complete"
    with pytest.raises(ValueError, match="no thread 'ghost'"):
        run("mark_thread_stalled", thread_id="ghost")


def test_a_new_step_clears_the_stalled_flag() -> None:
    from tests.conftest import event, store

    Thread.objects.create(id="T-1", started_at=ago(hours=1))
    run("mark_stalled_threads", timeout_seconds=60)
    assert Thread.objects.get(id="T-1").stalled_at is not None
    store(event("thread.step", thread_id="T-1", sequence=1, timestamp=timezone.now().isoformat()))
    thread = Thread.objects.get(id="T-1")
    assert thread.stalled_at is None and thread.summary()["stalled_at"] is None


def test_it_logs_the_health_summary_through_ingest() -> None:
    result = run("log_health_check", checked=5, stalled="2", failed=0)
    entry = LogEntry.objects.get(id=result["log_id"])
    assert (entry.level, entry.service, entry.mcp_id) == ("WARN", "mission-control", "mission-control")
    assert entry.message == "thread health: 3 healthy, 2 stalled, 0 failed of 5 running"
    assert run("log_health_check", checked=1)["level"] == "INFO"


def test_it_ends_sessions_running_far_too_long_as_timed_out_errors() -> None:
    Thread.objects.bulk_create(
        [
            Thread(id="ancient", started_at=ago(hours=30)),
            Thread(id="ancient-paused", status="paused", started_at=ago(hours=25)),
            Thread(id="recent", started_at=ago(hours=2)),
            Thread(id="old-done", status="complete", started_at=ago(hours=40), ended_at=ago(hours=39)),
        ]
    )
    result = run("cleanup_stale_sessions", timeout_hours=24)
    assert result["ended"] == 2 and [t["id"] for t in result["threads"]] == ["ancient", "ancient-paused"]
    statuses = dict(Thread.objects.values_list("id", "status"))
    assert statuses == {
        "ancient": "error",
        "ancient-paused": "error",
        "recent": "running",
        "old-done": "complete",
    }
    assert Thread.objects.get(id="ancient").ended_at is not None
    logged = LogEntry.objects.filter(thread_id="ancient").get()
    assert logged.level == "WARN" and logged.context["reason"] == "timeout"
    assert logged.message.startswith("thread ancient ended as error: timeout after 30.0 h")
    assert run("cleanup_stale_sessions", timeout_hours=24)["ended"] == 0


# -- anomalies -------------------------------------------------------------------------


def slow_scene() -> None:
    """101 durations: 97 normal ones (P95 1940 ms, threshold 2910 ms), 3 slow ones just
    now and 1 slow one two hours ago (in the baseline, not in the lookback)."""
    rows = [finished(f"n{i}", 1000 + 10 * i, ago(hours=1 + i / 10)) for i in range(96)]
    rows.append(finished("n-recent", 1500, ago(minutes=1)))
    rows += [finished(f"slow{s}", s * 1000, ago(minutes=2)) for s in (10, 20, 30)]
    rows.append(finished("slow-old", 50_000, ago(hours=2)))
    rows.append(Thread(id="still-running", started_at=ago(hours=3)))
    Thread.objects.bulk_create(rows)


def test_it_flags_exactly_the_threads_slower_than_one_and_a_half_times_the_p95() -> None:
    slow_scene()
    result = run("detect_slow_thread_anomalies", lookback_minutes=10, baseline_hours=24)
    assert result["baseline_size"] == 101
    assert result["populations"]["server:"] == {
        "baseline": "server (none)",
        "size": 101,
        "p95_ms": 1940,
        "threshold_ms": 2940,  # 1.5 x 1940 is 2910, less than the 1000 ms over the P95 asked
    }
    assert [a["thread_id"] for a in result["anomalies"]] == ["slow30", "slow20", "slow10"]
    assert all(a["alerted"] for a in result["anomalies"])
    entries = KnowledgeEntry.objects.filter(category="alert")
    assert sorted(entries.values_list("slug", flat=True)) == [
        "anomaly-slow-thread-slow10",
        "anomaly-slow-thread-slow20",
        "anomaly-slow-thread-slow30",
    ]
    assert "took 30000 ms" in entries.get(slug="anomaly-slow-thread-slow30").content


def test_a_rerun_updates_the_anomaly_without_duplicating_or_realerting_it() -> None:
    slow_scene()
    Directive.objects.upsert_from_yaml("name: detect_anomalies\nsteps: [{script: x}]", system=True)
    run("detect_slow_thread_anomalies")
    again = run("detect_slow_thread_anomalies")
    assert again["count"] == 3 and not any(a["alerted"] for a in again["anomalies"])
    assert KnowledgeEntry.objects.filter(category="alert").count() == 3
    assert set(KnowledgeEntry.objects.values_list("source_directive__name", flat=True)) == {
        "detect_anomalies"
    }


def test_it_needs_a_baseline_before_calling_anything_slow() -> None:
    Thread.objects.bulk_create([finished(f"t{i}", 1000 * (i + 1), ago(minutes=1)) for i in range(5)])
    result = run("detect_slow_thread_anomalies", min_baseline=20)
    assert (result["count"], result["baseline_size"]) == (0, 5)
    assert result["populations"]["server:"]["p95_ms"] is None


def test_it_judges_a_thread_against_its_own_servers_threads() -> None:
    """A 5 s thread among 100 ms ones of its server is slow, whatever lasts long elsewhere:
    sessions on /mcp, directive runs (each judged among their own kind)."""
    rows = [finished(f"t{i}", 100 + i, ago(hours=1, minutes=i), mcp_id="time") for i in range(30)]
    rows.append(finished("t-slow", 5000, ago(minutes=1), mcp_id="time"))
    rows += [
        finished(f"s{i}", 600_000 + i, ago(hours=2, minutes=i), mcp_id="mission-control") for i in range(5)
    ]
    directive = {"directive": "nightly_backup", "execution_id": 1}
    rows += [
        finished(
            f"d{i}",
            60_000 + 100 * i,
            ago(hours=3, minutes=i),
            mcp_id="mission-control",
            execution_context=directive,
        )
        for i in range(25)
    ]
    rows.append(
        finished("d-now", 61_000, ago(minutes=2), mcp_id="mission-control", execution_context=directive)
    )
    rows.append(finished("s-now", 900_000, ago(minutes=3), mcp_id="mission-control"))
    MCPServer.objects.create(id="time")
    MCPServer.objects.get_or_create(id="mission-control")
    Thread.objects.bulk_create(rows)
    result = run("detect_slow_thread_anomalies", lookback_minutes=10, baseline_hours=24, min_baseline=20)
    assert [a["thread_id"] for a in result["anomalies"]] == ["t-slow"]
    (slow,) = result["anomalies"]
    assert slow["population"] == "server:time" and slow["p95_ms"] == 129
    populations = result["populations"]
    assert populations["directive:nightly_backup"]["size"] == 26
    assert populations["directive:nightly_backup"]["p95_ms"] == 62_300
    # 6 sessions: too few of their own, and no other session to compare with: not judged.
    assert populations["session:mission-control"] == {
        "baseline": None,
        "size": 6,
        "p95_ms": None,
        "threshold_ms": None,
    }


def test_a_thread_only_a_little_slower_than_its_quick_peers_is_jitter_not_an_anomaly() -> None:
    rows = [finished(f"t{i}", 100 + i, ago(hours=1, minutes=i), mcp_id="time") for i in range(60)]
    rows += [
        finished("t-cold", 320, ago(minutes=1), mcp_id="time"),
        finished("t-stuck", 2500, ago(minutes=1), mcp_id="time"),
    ]
    MCPServer.objects.create(id="time")
    Thread.objects.bulk_create(rows)
    assert [a["thread_id"] for a in run("detect_slow_thread_anomalies")["anomalies"]] == ["t-stuck"]
    flagged = run("detect_slow_thread_anomalies", min_excess_ms=0)["anomalies"]
    assert [a["thread_id"] for a in flagged] == ["t-stuck", "t-cold"]


def test_a_population_too_small_to_judge_falls_back_on_all_threads_of_its_kind() -> None:
    rows = [finished(f"t{i}", 100 + i, ago(hours=1, minutes=i), mcp_id="time") for i in range(30)]
    rows += [
        finished("g-slow", 5000, ago(minutes=1), mcp_id="git"),
        finished("g-ok", 110, ago(minutes=1), mcp_id="git"),
    ]
    directive = {"directive": "nightly_backup"}
    rows.append(finished("d-now", 60_000, ago(minutes=2), execution_context=directive))
    MCPServer.objects.create(id="time")
    MCPServer.objects.create(id="git")
    Thread.objects.bulk_create(rows)
    result = run("detect_slow_thread_anomalies", min_baseline=20)
    # git has 2 threads: judged against every server thread; the lone directive run is not
    # judged against tool threads at all.
    assert [a["thread_id"] for a in result["anomalies"]] == ["g-slow"]
    assert result["anomalies"][0]["baseline"] == "all server threads (server git has 2, too few to judge)"
    assert result["populations"]["directive:nightly_backup"]["baseline"] is None


def test_slow_thread_detection_costs_the_same_queries_for_2_or_20_populations() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for(servers: int) -> int:
        Thread.objects.all().delete()
        for s in range(servers):
            MCPServer.objects.get_or_create(id=f"srv{s}")
        Thread.objects.bulk_create(
            [
                finished(f"t{s}-{i}", 100 + i, ago(minutes=i + 1), mcp_id=f"srv{s}")
                for s in range(servers)
                for i in range(5)
            ]
        )
        with CaptureQueriesContext(connection) as captured:
            run("detect_slow_thread_anomalies", min_baseline=3)
        return len(captured)

    assert queries_for(2) == queries_for(20)


def test_it_detects_error_and_denial_rate_spikes_against_the_baseline() -> None:
    thread = Thread.objects.create(id="T-1", started_at=ago(days=2))
    # Baseline (the 24 h before the last 10 minutes): 2 of 100 logs are errors, 5 of 100 checks denied.
    logs = [
        LogEntry(
            id=f"b{i}",
            timestamp=ago(hours=2, minutes=i),
            level="ERROR" if i < 2 else "INFO",
            service="svc",
            mcp_id="m",
            message="x",
        )
        for i in range(100)
    ]
    # Now: 8 of 20 logs are errors (40% against 2%).
    logs += [
        LogEntry(
            id=f"c{i}",
            timestamp=ago(minutes=1, seconds=i),
            level="ERROR" if i < 8 else "INFO",
            service="svc",
            mcp_id="m",
            message="x",
        )
        for i in range(20)
    ]
    LogEntry.objects.bulk_create(logs)
    checks = [
        PermissionEvent(
            id=f"pb{i}",
            timestamp=ago(hours=3, minutes=i),
            thread=thread,
            resource="r",
            action="read",
            granted=i >= 5,
        )
        for i in range(100)
    ]
    # Now: 2 of 20 denied (10% against 5%): not twice the baseline plus 5 points? it is 2x, +5 points.
    checks += [
        PermissionEvent(
            id=f"pc{i}",
            timestamp=ago(minutes=2, seconds=i),
            thread=thread,
            resource="r",
            action="read",
            granted=i >= 2,
        )
        for i in range(20)
    ]
    PermissionEvent.objects.bulk_create(checks)
    result = run("detect_rate_spikes", lookback_minutes=10, baseline_hours=24)
    assert result["rates"]["log_error_rate"] == {
        "current": 0.4,
        "baseline": 0.02,
        "samples": 20,
        "baseline_samples": 100,
    }
    assert result["rates"]["denial_rate"]["current"] == 0.1
    assert result["rates"]["thread_error_rate"]["samples"] == 0
    assert [a["kind"] for a in result["anomalies"]] == ["log_error_rate_spike", "denial_rate_spike"]
    entry = KnowledgeEntry.objects.get(slug="anomaly-log-error-rate-spike")
    assert (
        entry.category == "alert"
        and "40.0% (8 of 20)" in entry.content
        and "2.0% (2 of 100)" in entry.content
    )
    # A milder window: 2 of 20 logs (10%) clears 2x the baseline but too few samples are asked.
    assert run("detect_rate_spikes", min_samples=50)["count"] == 0


def test_a_rate_with_no_baseline_yet_is_no_spike() -> None:
    """A new install's first minutes: 1 denial in 15 checks is not a spike from nothing."""
    thread = Thread.objects.create(id="T-1", started_at=ago(minutes=5))
    PermissionEvent.objects.bulk_create(
        [
            PermissionEvent(
                id=f"p{i}",
                timestamp=ago(minutes=4, seconds=i),
                thread=thread,
                resource="time/set_system_time" if i == 0 else "time/get_current_time",
                action="execute",
                granted=i > 0,
            )
            for i in range(15)
        ]
    )
    result = run("detect_rate_spikes", lookback_minutes=10, baseline_hours=24)
    assert result["rates"]["denial_rate"]["baseline_samples"] == 0
    assert result["count"] == 0 and not KnowledgeEntry.objects.exists()


# -- log retention ---------------------------------------------------------------------


def test_it_profiles_logs_recommends_and_deletes_only_old_debug_lines() -> None:
    def log(i: str, level: str, days: float, service: str = "api") -> LogEntry:
        return LogEntry(id=i, timestamp=ago(days=days), level=level, service=service, mcp_id="m", message=i)

    LogEntry.objects.bulk_create(
        [
            log("d-old-1", "DEBUG", 10),
            log("d-old-2", "DEBUG", 40, "worker"),
            log("d-new", "DEBUG", 2),
            log("i-old", "INFO", 40),
            log("e-today", "ERROR", 0.1),
        ]
    )
    result = run("analyze_log_retention", debug_max_age_days=7)
    assert result["total"] == 5 and result["reclaimable"] == 2
    assert result["by_level"] == {"DEBUG": 3, "INFO": 1, "WARN": 0, "ERROR": 1}
    assert result["by_service"] == {"api": 4, "worker": 1}
    assert result["by_age"] == {"<1d": 1, "1-7d": 1, "7-30d": 1, ">30d": 2}
    assert result["by_level_and_age"]["DEBUG"] == {"<1d": 0, "1-7d": 1, "7-30d": 1, ">30d": 1}
    entry = KnowledgeEntry.objects.get(slug="log-retention-recommendation")
    assert entry.category == "optimization"
    assert entry.content.startswith("Delete the 2 DEBUG log lines older than 7 days (40% of 5)")

    assert run("cleanup_debug_logs", max_age_days=7)["deleted"] == 2
    assert sorted(LogEntry.objects.values_list("id", flat=True)) == ["d-new", "e-today", "i-old"]
    assert run("analyze_log_retention")["reclaimable"] == 0
    assert KnowledgeEntry.objects.count() == 1
    assert KnowledgeEntry.objects.get().content.startswith("Nothing to reclaim")


# -- performance report ----------------------------------------------------------------


def test_it_reports_percentiles_by_tool_server_and_thread_kind() -> None:
    MCPServer.objects.create(id="git", name="git")
    Thread.objects.bulk_create(
        [finished(f"r{i}", 100 * (i + 1), ago(minutes=5), mcp_id="git") for i in range(10)]
        + [finished(f"c{i}", 1000 * (i + 1), ago(minutes=5), parent_id="r0") for i in range(4)]
        + [finished("d0", 5, ago(minutes=5), execution_context={"kind": "directive"})]
    )
    steps = [
        ExecutionStep(
            thread_id="r0",
            sequence=i,
            timestamp=ago(minutes=5),
            step_type="tool_result",
            duration_ms=float(ms),
            details={"mcp_id": "time", "tool": "now"},
        )
        for i, ms in enumerate([10, 20, 30, 40, 100])
    ]
    steps += [  # pushed by an agent: the tool is the description, the server the thread's
        ExecutionStep(
            thread_id="r1",
            sequence=i,
            timestamp=ago(minutes=5),
            step_type="tool_call",
            duration_ms=float(ms),
            description="git_log",
        )
        for i, ms in enumerate([200, 400])
    ]
    steps.append(ExecutionStep(thread_id="r1", sequence=9, timestamp=ago(minutes=5), step_type="tool_call"))
    ExecutionStep.objects.bulk_create(steps)

    result = run("performance_report", window_hours=1)
    assert result["by_tool"] == {
        "git__git_log": {"count": 2, "p50": 300.0, "p95": 390.0, "p99": 398.0},
        "time__now": {"count": 5, "p50": 30.0, "p95": 88.0, "p99": 97.6},
    }
    assert result["by_server"] == {
        "git": {"count": 2, "p50": 300.0, "p95": 390.0, "p99": 398.0},
        "time": {"count": 5, "p50": 30.0, "p95": 88.0, "p99": 97.6},
    }
    assert result["by_thread_kind"] == {
        "child": {"count": 4, "p50": 2500.0, "p95": 3850.0, "p99": 3970.0},
        "directive": {"count": 1, "p50": 5.0, "p95": 5.0, "p99": 5.0},
        "root": {"count": 10, "p50": 550.0, "p95": 955.0, "p99": 991.0},
    }
    assert result["slowest_tool"] == "git__git_log"
    assert (
        "git__git_log: p50 300 ms, p95 390 ms"
        in KnowledgeEntry.objects.get(slug="performance-slowest-tool").content
    )


def test_percentile_interpolates_like_percentile_cont() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([10], 0.99) == 10
    assert percentile([0, 100], 0.95) == 95


# -- patterns --------------------------------------------------------------------------


def test_it_finds_repeated_denials_and_escalations_per_user() -> None:
    thread = Thread.objects.create(id="T-1", started_at=ago(days=1))

    def check(i: int, user: str, resource: str, granted: bool, escalation: bool = False) -> PermissionEvent:
        return PermissionEvent(
            id=f"p{i}",
            timestamp=ago(hours=1, minutes=i),
            thread=thread,
            user_id=user,
            resource=resource,
            action="execute",
            granted=granted,
            escalation_detected=escalation,
        )

    rows = [check(i, "bob", "git/push", False) for i in range(4)]
    rows += [check(10 + i, "bob", "git/push", True) for i in range(2)]
    rows += [check(20 + i, "alice", "fs/write", False) for i in range(2)]  # below min_denials
    rows += [check(30, "carol", "admin/*", False, escalation=True)]
    PermissionEvent.objects.bulk_create(rows)
    result = run("analyze_permission_patterns", window_hours=24, min_denials=3)
    assert result["by_user"]["bob"] == {"checks": 6, "denials": 4, "escalations": 0}
    assert [(p["user_id"], p["resource"], p["denials"], p["checks"]) for p in result["denial_patterns"]] == [
        ("bob", "git/push", 4, 6)
    ]
    assert [e["user_id"] for e in result["escalations"]] == ["carol"]
    practice = KnowledgeEntry.objects.get(category="best_practice")
    assert practice.title == "Repeated denials: bob execute git/push"
    assert practice.content.startswith("bob was denied execute on git/push 4 times out of 6 checks.")
    assert KnowledgeEntry.objects.get(category="alert").title == "Privilege escalations by carol"
    run("analyze_permission_patterns", window_hours=24, min_denials=3)
    assert KnowledgeEntry.objects.count() == 2


def test_it_clusters_errors_by_their_normalised_message() -> None:
    messages = [
        "connection to 10.0.0.1:5432 refused after 3 retries",
        "connection to 10.0.0.7:5432 refused after 5 retries",
        "connection to 10.0.0.9:5432 refused after 1 retries",
        "file '/var/data/a.txt' not found",
        "file '/tmp/b.txt' not found",
        "file '/tmp/c.txt' not found",
        "request 3f2a1b4c-1d2e-4f5a-9b8c-7d6e5f4a3b2c failed",
        "disk full",
    ]
    LogEntry.objects.bulk_create(
        [
            LogEntry(
                id=f"e{i}",
                timestamp=ago(hours=i + 1),
                level="ERROR",
                service=f"s{i % 2}",
                mcp_id="m",
                message=m,
            )
            for i, m in enumerate(messages)
        ]
        + [
            LogEntry(
                id="i0", timestamp=ago(hours=1), level="INFO", service="s", mcp_id="m", message="disk full"
            )
        ]
    )
    result = run("analyze_error_clusters", lookback_days=7, min_size=3)
    assert result["lines"] == 8
    assert [(c["pattern"], c["count"], c["services"]) for c in result["clusters"]] == [
        ("connection to <n>.<n>.<n>.<n>:<n> refused after <n> retries", 3, ["s0", "s1"]),
        ("file <str> not found", 3, ["s0", "s1"]),
    ]
    assert normalise("request 3f2a1b4c-1d2e-4f5a-9b8c-7d6e5f4a3b2c failed") == "request <uuid> failed"
    assert KnowledgeEntry.objects.filter(category="pattern", title__startswith="Error cluster: ").count() == 2
    run("analyze_error_clusters", lookback_days=7, min_size=3)
    assert KnowledgeEntry.objects.count() == 2


def test_it_finds_servers_that_fail_their_health_probes() -> None:
    MCPServer.objects.create(id="flaky", name="flaky")
    MCPServer.objects.create(id="solid", name="solid")
    HealthCheck.objects.bulk_create(
        [
            HealthCheck(server_id="flaky", ok=i % 2 == 0, error="" if i % 2 == 0 else "timed out")
            for i in range(8)
        ]
        + [HealthCheck(server_id="solid", ok=True) for _ in range(8)]
    )
    result = run("analyze_connection_failures", lookback_days=1, min_failures=3)
    assert result["servers"] == {"flaky": {"probes": 8, "failures": 4}, "solid": {"probes": 8, "failures": 0}}
    assert result["flagged"] == ["flaky"]
    assert KnowledgeEntry.objects.get().content == (
        "flaky failed 4 of 8 health probes (50%) over the last 1 days: most often timed out (4)."
    )


def test_it_describes_duration_and_denial_patterns() -> None:
    Thread.objects.bulk_create([finished(f"t{i}", 1000 * (i + 1), ago(hours=1)) for i in range(3)])
    durations = run("analyze_duration_patterns", lookback_days=1)
    assert durations["by_kind"] == {"root": {"count": 3, "p50": 2000.0, "p95": 2900.0, "p99": 2980.0}}
    assert KnowledgeEntry.objects.get(slug="pattern-thread-durations").content == (
        "Over the last 1 days, by thread kind: root: p50 2000 ms, p95 2900 ms, p99 2980 ms (3 threads)."
    )
    PermissionEvent.objects.bulk_create(
        [
            PermissionEvent(
                id=f"p{i}",
                timestamp=ago(hours=1),
                thread_id="t0",
                user_id=f"u{i % 2}",
                resource="git/push" if i < 3 else "fs/rm",
                action="execute",
                granted=False,
            )
            for i in range(4)
        ]
    )
    denials = run("analyze_denial_patterns", lookback_days=1)
    assert denials["resources"] == [
        {"resource": "git/push", "n": 3, "users": 2},
        {"resource": "fs/rm", "n": 1, "users": 1},
    ]


def test_script_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="timeout_seconds must be a number, not 'soon'"):
        run("find_stalled_threads", timeout_seconds="soon")
    with pytest.raises(ValueError, match="lookback_minutes must be > 0"):
        run("detect_rate_spikes", lookback_minutes=0)
