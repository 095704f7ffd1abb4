"""Query benchmark (`make bench`): log search and a thread timeline over a loaded database.

1M log events and 10k threads (one of them with a 1,000-step timeline) are loaded
through the bulk ingest path (`missioncontrol.ingest.pipeline.ingest`, what
POST /api/ingest/events calls), in batches of 5,000, into a scratch PostgreSQL database
`mc_bench_query`; then VACUUM (ANALYZE), as autovacuum would after such a load. Then,
in-process through `django.test.Client` (the whole Django view stack, no network), 50
runs after 3 warm-ups of each, p50 and p95:
- baseline: GET /api/logs/<id> (one log by primary key), and GET /api/threads/<id>;
- search: GET /api/logs?search=<two words>&levels=ERROR,WARN&mcps=<one server>, with
  rare words, with common ones, and with common words that no log under the filters
  holds (first page of 100, newest first);
- timeline: GET /api/threads/<id of the 1,000-step thread>/timeline.
Targets: search p95 <= 100 ms (the seed asks < 500 ms), timeline p95 <= 50 ms.
Each search's SQL and its EXPLAIN (ANALYZE, BUFFERS) land in bench/results/query.json.
The load rates are not comparable with bench/run.py's HTTP ingest: no HTTP, no live fan-out
(the ingest result's outbox is not sent), one process.

Environment: BENCH_QUERY_LOGS (default 1,000,000), BENCH_QUERY_THREADS (10,000),
BENCH_PG, BENCH_QUERY_DB (the scratch database's name), BENCH_QUERY_KEEP=1 to keep it afterwards.
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import CLEARED, clean_env  # noqa: E402

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_QUERY_DB", "mc_bench_query")
LOGS = int(os.environ.get("BENCH_QUERY_LOGS", 1_000_000))
THREADS = int(os.environ.get("BENCH_QUERY_THREADS", 10_000))
KEEP = os.environ.get("BENCH_QUERY_KEEP", "") not in ("", "0")
BATCH = 5000
RUNS = 50
WARMUP = 3
TIMELINE_STEPS = 1000
SEARCH_TARGET_MS = 100.0
SEED_SEARCH_TARGET_MS = 500.0
TIMELINE_TARGET_MS = 50.0
SPAN = timedelta(days=7)

# Servers, with a long tail: the searched one carries about a tenth of the traffic.
MCPS = [f"srv-{name}" for name in ("github", "postgres", "filesystem", "slack", "jira", "browser")]
MCPS += [f"srv-internal-{i}" for i in range(14)]
MCP_WEIGHTS = [16, 12, 10, 8, 7, 6] + [3] * 14
SEARCHED_MCP = "srv-postgres"
SERVICES = ("executor", "parser", "auth", "gateway", "scheduler", "indexer", "storage", "notifier")
TOOLS = [
    "git_log",
    "git_diff",
    "git_blame",
    "read_file",
    "write_file",
    "list_dir",
    "search_code",
    "run_query",
    "describe_table",
    "send_message",
    "list_channels",
    "create_issue",
    "update_issue",
    "fetch_url",
    "screenshot",
    "click_element",
    "fill_form",
    "get_current_time",
    "run_tests",
    "lint_code",
    "format_code",
    "open_pull_request",
    "merge_branch",
    "summarize_text",
    "translate_text",
    "embed_text",
    "vector_search",
    "upload_file",
    "download_file",
    "delete_file",
]
HOSTS = [f"db-{i}.internal" for i in range(8)] + [f"api-{i}.internal" for i in range(12)]
HOSTS += ["api.github.com", "slack.com", "jira.example.com", "s3.amazonaws.com", "search.example.com"]
TABLES = ("threads", "steps", "messages", "logs", "users", "sessions", "documents", "embeddings")
PARAMS = ("path", "query", "limit", "branch", "channel", "timeout", "encoding", "recursive")
VOLUMES = ("data0", "data1", "scratch", "logs", "cache")
EXCEPTIONS = ("TimeoutError", "ConnectionRefusedError", "PermissionError", "ValueError", "MemoryError")

# (level, share of all logs, [(template, weight within the level)]). Rare phrases
# ("disk quota exceeded", "deadlock ... rolled back") make selective searches, frequent
# words ("request", "ms", "tool", "call") non-selective ones.
LEVELS: list[tuple[str, float, list[tuple[str, int]]]] = [
    (
        "INFO",
        0.60,
        [
            ("tool call {tool} finished in {ms} ms, status ok, request {req}", 30),
            ("request {req} completed with status 200 in {ms} ms", 15),
            ("listed {n} files under {path}", 10),
            ("session {sess} opened for user {user}", 10),
            ("indexed {n} documents into {table} in {ms} ms", 10),
            ("sent notification to channel #{channel}", 8),
            ("cache hit for key {key}", 8),
            ("scheduled job {job} to run every {k} minutes", 5),
            ("loaded configuration from {path}", 4),
        ],
    ),
    (
        "DEBUG",
        0.15,
        [
            ("payload of {n} bytes prepared for {tool}", 30),
            ("cache miss for key {key}, fetching from {host}", 25),
            ("parsed {n} tokens from the prompt of step {k}", 20),
            ("sql query on table {table} returned {n} rows in {ms} ms", 15),
            ("heartbeat from worker {worker}", 10),
        ],
    ),
    (
        "WARN",
        0.15,
        [
            ("slow response from {host}: {ms} ms exceeds the 500 ms budget, request {req}", 30),
            ("retrying {tool} after a transient error, attempt {k} of 5", 25),
            ("rate limit approaching for {host}: {n} requests remaining", 15),
            ("connection pool near capacity on {host} ({k} of 20 in use)", 15),
            ("deprecated parameter {param} used in {tool} call", 10),
            ("certificate for {host} expires in {k} days", 5),
        ],
    ),
    (
        "ERROR",
        0.10,
        [
            ("tool call {tool} failed: timeout after {ms} ms waiting for {host}, request {req}", 25),
            ("connection refused by {host} port {port}", 20),
            ("permission denied writing {path}", 15),
            ("upstream {host} returned 503 service unavailable, request {req}", 12),
            ("invalid arguments for {tool}: missing field {param}", 10),
            ("authentication token expired for user {user}", 8),
            ("out of memory while parsing {path}", 5),
            ("database deadlock detected on table {table}, transaction rolled back", 3),
            ("disk quota exceeded on volume {volume}", 2),
        ],
    ),
]
SEARCHES = {
    "rare words": "quota exceeded",
    "common words": "request ms",
    # Both words are frequent, but only in INFO logs: nothing matches under the filters.
    "common words, none match": "request completed",
}


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def chunks(events: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while batch := list(islice(events, size)):
        yield batch


# -- data ------------------------------------------------------------------------------


class Data:
    """Deterministic (seeded) threads and logs, in ingest's JSON shape."""

    def __init__(self, threads: int, logs: int) -> None:
        self.rng = random.Random(20260728)
        self.end = datetime.now(UTC).replace(microsecond=0)
        self.start = self.end - SPAN
        self.thread_ids = [f"thread-{i:06d}" for i in range(threads)]
        self.big_thread = self.thread_ids[threads // 2]
        self.thread_mcp = self.rng.choices(MCPS, MCP_WEIGHTS, k=threads)
        self.logs = logs
        levels = [(level, share) for level, share, _ in LEVELS]
        self.level_names = [level for level, _ in levels]
        self.level_weights = [share for _, share in levels]
        self.templates = {level: [t for t, _ in rows] for level, _, rows in LEVELS}
        self.template_weights = {level: [w for _, w in rows] for level, _, rows in LEVELS}

    def at(self, fraction: float) -> datetime:
        return self.start + SPAN * min(max(fraction, 0.0), 1.0)

    def _step(self, thread_id: str, seq: int, ts: datetime, tool: str, big: bool) -> dict[str, Any]:
        rng = self.rng
        call = seq % 2 == 0
        ms = round(rng.uniform(2, 900), 1)
        if call:
            path = f"/srv/repo/src/module_{rng.randrange(400)}.py"
            description = f"call {tool} with path {path}"
            details: dict[str, Any] = {
                "tool": tool,
                "arguments": {"path": path, "limit": rng.randrange(1, 200)},
            }
        else:
            items = rng.randrange(0, 500)
            description = f"{tool} returned {items} items in {ms} ms"
            details = {"tool": tool, "items": items}
            if big:  # a result preview, as agents record them
                details["preview"] = " ".join(rng.choices(TOOLS + list(TABLES), k=24))
        return {
            "id": f"{thread_id}-step-{seq}",
            "type": "thread.step",
            "timestamp": ts.isoformat(),
            "thread_id": thread_id,
            "sequence": seq,
            "step_type": "tool_call" if call else "tool_result",
            "description": description,
            "details": details,
            "status": "error" if rng.random() < 0.03 else "complete",
            "duration_ms": ms,
        }

    def thread_events(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        count = len(self.thread_ids)
        for i, tid in enumerate(self.thread_ids):
            started = self.at(i / count)
            big = tid == self.big_thread
            yield {
                "id": f"{tid}-started",
                "type": "thread.started",
                "timestamp": started.isoformat(),
                "thread_id": tid,
                "parent_id": self.thread_ids[rng.randrange(i)] if i and rng.random() < 0.2 else None,
                "mcp_id": self.thread_mcp[i],
                "user_input": f"{rng.choice(('fix', 'review', 'summarize', 'deploy'))} {rng.choice(TOOLS)}",
                "execution_context": {"model": "bench-model", "attempt": 1},
            }
            steps = TIMELINE_STEPS if big else rng.randint(0, 6)
            ts = started
            tool = rng.choice(TOOLS)
            for seq in range(steps):
                ts += timedelta(milliseconds=rng.randrange(50, 3000))
                if seq % 2 == 0:
                    tool = rng.choice(TOOLS)
                yield self._step(tid, seq, ts, tool, big)
            if big or rng.random() < 0.85:
                status = rng.choices(("complete", "error", "cancelled"), (80, 15, 5))[0]
                yield {
                    "id": f"{tid}-ended",
                    "type": "thread.ended",
                    "timestamp": (ts + timedelta(seconds=1)).isoformat(),
                    "thread_id": tid,
                    "status": "complete" if big else status,
                }

    def _message(self, level: str) -> tuple[str, str | None]:
        rng = self.rng
        template = rng.choices(self.templates[level], self.template_weights[level])[0]
        message = template.format(
            tool=rng.choice(TOOLS),
            ms=rng.randrange(1, 5000),
            req=f"{rng.getrandbits(32):08x}",
            n=rng.randrange(1, 100_000),
            path=f"/srv/data/{rng.choice(TABLES)}/{rng.randrange(1000)}.json",
            sess=f"{rng.getrandbits(48):012x}",
            user=f"user{rng.randrange(500)}",
            table=rng.choice(TABLES),
            channel=rng.choice(("alerts", "deploys", "agents", "general")),
            key=f"thread:{rng.randrange(10_000)}:state",
            job=f"job-{rng.randrange(50)}",
            k=rng.randrange(1, 20),
            host=rng.choice(HOSTS),
            worker=f"worker-{rng.randrange(16)}",
            port=rng.choice((443, 5432, 6379, 8080)),
            param=rng.choice(PARAMS),
            volume=rng.choice(VOLUMES),
        )
        exception = None
        if level == "ERROR" and rng.random() < 0.3:
            exception = (
                "Traceback (most recent call last):\n"
                f'  File "/app/tools/{rng.choice(TOOLS)}.py", line {rng.randrange(10, 400)}, in run\n'
                f"{rng.choice(EXCEPTIONS)}: {message}"
            )
        return message, exception

    def log_events(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        step = SPAN / max(self.logs, 1)
        threads = len(self.thread_ids)
        for i in range(self.logs):
            ts = self.start + step * i + timedelta(milliseconds=rng.randrange(-2000, 2000))
            level = rng.choices(self.level_names, self.level_weights)[0]
            message, exception = self._message(level)
            if rng.random() < 0.8:
                t = rng.randrange(threads)
                thread_id, mcp_id = self.thread_ids[t], self.thread_mcp[t]
            else:
                thread_id, mcp_id = None, rng.choices(MCPS, MCP_WEIGHTS)[0]
            yield {
                "id": f"log-{i}",
                "type": "log",
                "timestamp": ts.isoformat(),
                "level": level,
                "service": rng.choice(SERVICES),
                "thread_id": thread_id,
                "mcp_id": mcp_id,
                "message": message,
                "context": {"attempt": rng.randrange(3), "tool": rng.choice(TOOLS)},
                "exception": exception,
            }


# -- database --------------------------------------------------------------------------


def reset_database() -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    url = f"{PG}/{DB_NAME}"
    env = clean_env(DATABASE_URL=url, SECRET_KEY="bench")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    return url


def drop_database() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def setup_django(url: str) -> None:
    for name in CLEARED:
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="missioncontrol.settings", DATABASE_URL=url, SECRET_KEY="bench", DEBUG="0"
    )
    import django

    django.setup()


def load(data: Data) -> dict[str, Any]:
    """Everything through ingest(), BATCH events per call; events/s of the ingest calls."""
    from missioncontrol.ingest.events import Source
    from missioncontrol.ingest.pipeline import ingest

    def run(events: Iterator[dict[str, Any]], label: str) -> dict[str, Any]:
        batches: list[tuple[int, float]] = []  # (events, seconds in ingest())
        wall = time.perf_counter()
        for batch in chunks(events, BATCH):
            start = time.perf_counter()
            result = ingest(batch, Source(mcp_id=None))
            batches.append((len(batch), time.perf_counter() - start))
            accepted = result.count("accepted")
            assert accepted == len(batch), (
                f"{label}: {len(batch) - accepted} not accepted: {result.as_dict()}"
            )
        wall = time.perf_counter() - wall
        count, busy = sum(n for n, _ in batches), sum(t for _, t in batches)
        tenth = max(1, len(batches) // 10)
        slices = [batches[i : i + tenth] for i in range(0, len(batches), tenth)]
        return {
            "events": count,
            "batch": BATCH,
            "ingest_seconds": round(busy, 1),
            "events_per_second": round(count / busy),
            # Does the rate hold as the tables grow? Events/s over each tenth of the batches.
            "events_per_second_by_tenth": [
                round(sum(n for n, _ in s) / sum(t for _, t in s)) for s in slices
            ],
            "wall_seconds_with_generation": round(wall, 1),
        }

    threads = run(data.thread_events(), "threads")
    print(
        f"load: {threads['events']:,} thread events ({THREADS:,} threads) in {threads['ingest_seconds']} s "
        f"of ingest(): {threads['events_per_second']:,} events/s",
        flush=True,
    )
    logs = run(data.log_events(), "logs")
    print(
        f"load: {logs['events']:,} log events in {logs['ingest_seconds']} s of ingest(): "
        f"{logs['events_per_second']:,} events/s (by tenth: "
        f"{', '.join(f'{r:,}' for r in logs['events_per_second_by_tenth'])})",
        flush=True,
    )
    return {"threads": threads, "logs": logs}


def vacuum_analyze() -> float:
    from django.db import connection

    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - start


def check_loaded(data: Data) -> dict[str, int]:
    from logs.models import LogEntry
    from threads.models import ExecutionStep, Thread

    counts = {
        "logs": LogEntry.objects.count(),
        "threads": Thread.objects.count(),
        "steps": ExecutionStep.objects.count(),
        "timeline_steps": ExecutionStep.objects.filter(thread_id=data.big_thread).count(),
    }
    assert counts["logs"] == LOGS, counts
    assert counts["threads"] == THREADS, counts
    assert counts["timeline_steps"] == TIMELINE_STEPS, counts
    return counts


# -- measurement -----------------------------------------------------------------------


def timed(call: Callable[[int], Any], check: Callable[[Any], None]) -> list[float]:
    """Milliseconds of RUNS calls after WARMUP, sorted; every answer checked untimed."""
    answers = [call(i) for i in range(WARMUP)]
    latencies = []
    for i in range(WARMUP, WARMUP + RUNS):
        start = time.perf_counter()
        answer = call(i)
        latencies.append((time.perf_counter() - start) * 1000)
        answers.append(answer)
    for answer in answers:
        check(answer)
    return sorted(latencies)


def check_search(response: Any, expect_rows: bool) -> None:
    assert response.status_code == 200, (response.status_code, response.content[:300])
    body = response.json()
    assert {"results", "next", "previous"} <= set(body), list(body)
    results = body["results"]
    assert len(results) <= 100 and (len(results) > 0) == expect_rows, len(results)
    assert all(r["level"] in ("ERROR", "WARN") and r["mcp_id"] == SEARCHED_MCP for r in results)
    stamps = [r["timestamp"] for r in results]
    assert stamps == sorted(stamps, reverse=True), "not newest first"


def measure(data: Data) -> tuple[dict[str, tuple[str, list[float]]], dict[str, Any]]:
    """({figure: (request, sorted latencies)}, {search: matching rows, SQL, plans})."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import get_resolver

    from logs.models import LogEntry
    from missioncontrol.runtime import tune_for_latency

    # As the web process does once it has started (missioncontrol/asgi.py).
    get_resolver().url_patterns  # noqa: B018
    tune_for_latency()
    # Signed in as an admin (sees every team: no visibility filter), as an operator's
    # browser would be; the session and user reads are part of each request's cost.
    client = Client()
    client.force_login(
        User.objects.filter(is_superuser=True).first() or User.objects.create_superuser("bench")
    )
    rng = random.Random(7)
    log_ids = [f"log-{rng.randrange(LOGS)}" for _ in range(WARMUP + RUNS)]
    others = [t for t in data.thread_ids if t != data.big_thread]
    thread_ids = [rng.choice(others) for _ in range(WARMUP + RUNS)]
    rows: dict[str, tuple[str, list[float]]] = {}

    def ok(response: Any) -> None:
        assert response.status_code == 200, (response.status_code, response.content[:300])

    rows["log by id (baseline)"] = (
        "GET /api/logs/<id>",
        timed(lambda i: client.get(f"/api/logs/{log_ids[i]}"), ok),
    )
    rows["thread by id"] = (
        "GET /api/threads/<id>",
        timed(lambda i: client.get(f"/api/threads/{thread_ids[i]}"), ok),
    )

    searches: dict[str, Any] = {}
    for name, text in SEARCHES.items():
        params = {"search": text, "levels": "ERROR,WARN", "mcps": SEARCHED_MCP}
        found = LogEntry.objects.search(text)
        matching = {
            "text_only": found.count(),
            "with_filters": found.filter(level__in=["ERROR", "WARN"], mcp_id=SEARCHED_MCP).count(),
        }
        expect_rows = matching["with_filters"] > 0
        latencies = timed(
            lambda i, p=params: client.get("/api/logs", p),  # type: ignore[misc]
            lambda response, e=expect_rows: check_search(response, e),  # type: ignore[misc]
        )
        rows[f"search, {name}"] = (
            f"GET /api/logs?{'&'.join(f'{k}={v}' for k, v in params.items())}",
            latencies,
        )
        # The statement the view ran, and its plan.
        with CaptureQueriesContext(connection) as captured:
            ok(client.get("/api/logs", params))
        sql = [q["sql"] for q in captured.captured_queries if "to_tsvector" in q["sql"]]
        plans = explain(sql)
        searches[name] = {
            "text": text,
            "matching_rows": matching,
            "indexes_scanned": sorted({ix for plan in plans for ix in INDEX_SCAN.findall(plan)}),
            "sql": sql,
            "plans": plans,
        }

    def check_timeline(response: Any) -> None:
        ok(response)
        assert len(response.json()["results"]) == TIMELINE_STEPS, len(response.json()["results"])

    rows["timeline, 1,000 steps"] = (
        f"GET /api/threads/<id>/timeline?limit={TIMELINE_STEPS}",
        timed(
            lambda i: client.get(f"/api/threads/{data.big_thread}/timeline", {"limit": TIMELINE_STEPS}),
            check_timeline,
        ),
    )
    # Thread lists carry each thread's error count and current step (stored columns).
    for name, params in (("threads", {}), ("threads with failures", {"with_failures": "true"})):
        rows[name] = (
            f"GET /api/threads?{'&'.join(f'{k}={v}' for k, v in params.items())}",
            timed(lambda i, p=params: client.get("/api/threads", p), ok),  # type: ignore[misc]
        )
    return rows, searches


INDEX_SCAN = re.compile(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)")


def explain(statements: list[str]) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements the search ran."""
    from django.db import connection

    plans = []
    with connection.cursor() as cursor:
        for sql in statements:
            try:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
            except Exception as exc:  # evidence only; the figures stand without it
                plans.append(f"EXPLAIN failed: {exc}")
    return plans


def report(
    rows: dict[str, tuple[str, list[float]]], searches: dict[str, Any], loaded: dict[str, Any]
) -> dict[str, Any]:
    base = rows["log by id (baseline)"][1]
    b50, b95 = pct(base, 0.5), pct(base, 0.95)
    figures = []
    print(
        f"-- query: {LOGS:,} logs, {THREADS:,} threads; {RUNS} runs after {WARMUP} warm-ups each, "
        "through django.test.Client in-process"
    )
    print(f"{'figure':34s} {'p50':>9s} {'p95':>9s} {'p50/base':>9s} {'p95/base':>9s}  target")
    for name, (request, values) in rows.items():
        p50, p95 = pct(values, 0.5), pct(values, 0.95)
        target = None
        if name.startswith("search"):
            target = SEARCH_TARGET_MS
        elif name.startswith("timeline"):
            target = TIMELINE_TARGET_MS
        figure: dict[str, Any] = {
            "figure": name,
            "request": request,
            "p50_ms": round(p50, 2),
            "p95_ms": round(p95, 2),
            "max_ms": round(values[-1], 2),
            "ratio_p50": round(p50 / b50, 2),
            "ratio_p95": round(p95 / b95, 2),
            "target_p95_ms": target,
            "met": None if target is None else p95 <= target,
        }
        verdict = "" if target is None else f"p95 <= {target:g} ms: {'met' if figure['met'] else 'NOT met'}"
        if name.startswith("search"):
            figure["seed_target_ms"] = SEED_SEARCH_TARGET_MS
            figure["seed_met"] = p95 < SEED_SEARCH_TARGET_MS
            verdict += f" (seed < {SEED_SEARCH_TARGET_MS:g} ms: {'met' if figure['seed_met'] else 'NOT met'})"
        figures.append(figure)
        print(
            f"{name:34s} {p50:6.2f} ms {p95:6.2f} ms {p50 / b50:8.1f}x {p95 / b95:8.1f}x  {verdict}",
            flush=True,
        )
    for figure in figures:
        print(f"  {figure['figure']}: {figure['request']}")
    for search in searches.values():
        print(
            f"  search {search['text']!r}: {search['matching_rows']['text_only']:,} logs match the words, "
            f"{search['matching_rows']['with_filters']:,} also the filters; "
            f"the plan scans {', '.join(search['indexes_scanned']) or 'no index'}"
        )
    return {
        "logs": LOGS,
        "threads": THREADS,
        "timeline_steps": TIMELINE_STEPS,
        "runs": RUNS,
        "warmup": WARMUP,
        "path": "HTTP: django.test.Client, in-process",
        "load": loaded,
        "baseline": "log by id (baseline)",
        "figures": figures,
        "searches": searches,
        "targets_met": all(f["met"] for f in figures if f["met"] is not None),
    }


def main() -> None:
    started = time.perf_counter()
    load_before = os.getloadavg()
    url = reset_database()
    try:
        setup_django(url)
        data = Data(THREADS, LOGS)
        loaded = load(data)
        loaded["vacuum_analyze_seconds"] = round(vacuum_analyze(), 1)
        loaded["counts"] = check_loaded(data)
        gc.collect()  # the load's garbage is not the web process's to collect
        rows, searches = measure(data)
        result = report(rows, searches, loaded)
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not KEEP:
            drop_database()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    # Other work on the machine skews every figure: the 1-minute load before and after.
    result["load_average"] = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
    average = result["load_average"]
    print(
        f"targets: {'all met' if result['targets_met'] else 'NOT all met'}; {result['total_seconds']} s "
        f"in all; load average {average['before']} before, {average['after']} after"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "query.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
