"""OTLP benchmark (`make bench`): spans stored durably per second against raw COPY of the same rows.

BENCH_SPANS spans (default 50,000) in agent-shaped traces of 10 (an invoke_agent root,
tool executions and LLM calls below it) are posted to POST /v1/traces as protobuf, 500
spans a request, 4 requests in flight per web process, on PostgreSQL + Redis. Each
answer is a 200 only once its spans are committed, so the rate is durable spans/s.
It runs with one web (daphne) process, then with two (BENCH_WEB=1,2; requests spread
round-robin), from empty tables each time. After each run the rows are counted (stored
against sent); then the baseline: raw psycopg COPY of the same rows (threads, steps,
the idempotency ledger) into the same tables with the same indexes, one transaction per
500 spans, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from missioncontrol.ingest.otlp import decode  # noqa: E402
from missioncontrol.ingest.otlp.mapping import map_spans  # noqa: E402
from tests.processes import clean_env, create_key, daphne, free_port  # noqa: E402

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_OTLP_DB", "mc_bench_otlp")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SPANS = int(os.environ.get("BENCH_SPANS", 50_000))
BATCH = 500
TRACE_SIZE = 10
CONCURRENCY = 4  # requests in flight per web process
WEB = [int(n) for n in os.environ.get("BENCH_WEB", "1,2").split(",")]
TABLES = "threads_thread, threads_executionstep, threads_threadevent, threads_llmmessage"


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def batch(index: int) -> bytes:
    """500 spans: 50 traces of an invoke_agent root and 9 tool or LLM spans under it."""
    start = time.time_ns()
    spans = []
    for i in range(BATCH):
        trace, position = divmod(index * BATCH + i, TRACE_SIZE)
        trace_id = (trace + 1).to_bytes(16, "big")
        root = (trace * TRACE_SIZE + 1).to_bytes(8, "big")
        t0 = start + i * 10_000
        if position == 0:
            attrs = [kv("gen_ai.operation.name", "invoke_agent"), kv("gen_ai.agent.name", "planner")]
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=root,
                    name="invoke_agent planner",
                    start_time_unix_nano=t0,
                    end_time_unix_nano=t0 + 90_000_000,
                    attributes=attrs,
                )
            )
            continue
        span_id = (trace * TRACE_SIZE + 1 + position).to_bytes(8, "big")
        if position % 3:
            attrs = [
                kv("gen_ai.operation.name", "execute_tool"),
                kv("gen_ai.tool.name", f"tool_{position}"),
                kv("gen_ai.tool.call.arguments", json.dumps({"path": f"/repo/{i}", "limit": position})),
                kv("http.status_code", 200),
            ]
            name = f"execute_tool tool_{position}"
        else:
            attrs = [
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.request.model", "gpt-5"),
                kv("gen_ai.usage.input_tokens", 100 + i),
                kv("gen_ai.usage.output_tokens", 20 + position),
            ]
            name = "chat gpt-5"
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=root,
                name=name,
                start_time_unix_nano=t0 + position * 1_000,
                end_time_unix_nano=t0 + 5_000_000,
                attributes=attrs,
                status=Status(code=Status.STATUS_CODE_OK),
            )
        )
    resource = Resource(attributes=[kv("service.name", "bench-agent")])
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )
    return request.SerializeToString()


def reset_database() -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    url = f"{PG}/{DB_NAME}"
    env = clean_env(DATABASE_URL=url, SECRET_KEY="bench")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return url


async def post_all(bases: list[str], key: str, bodies: list[bytes]) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}

    async def worker(client: httpx.AsyncClient, base: str) -> None:
        while not queue.empty():
            response = await client.post(f"{base}/v1/traces", content=queue.get_nowait(), headers=headers)
            assert response.status_code == 200, response.content[:300]
            answer = ExportTraceServiceResponse.FromString(response.content)
            assert not answer.HasField("partial_success"), answer

    async with httpx.AsyncClient(timeout=120) as client:
        start = time.perf_counter()
        workers = [worker(client, bases[i % len(bases)]) for i in range(CONCURRENCY * len(bases))]
        await asyncio.gather(*workers)
        return SPANS / (time.perf_counter() - start)


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("threads_thread", "threads_executionstep", "threads_threadevent")
        }


def copy_baseline(url: str, bodies: list[bytes]) -> float:
    """Spans/s of raw COPY of the rows the spans make, one transaction per 500 spans."""
    rows: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]] = []
    for body in bodies:
        events = map_spans(decode.spans(decode.parse("traces", "protobuf", body)), "srv-bench").events
        threads = [
            (
                e["thread_id"],
                e["parent_id"],
                e["mcp_id"],
                "complete",
                e["user_input"],
                json.dumps(e["execution_context"]),
                e["timestamp"],
            )
            for e in events
            if e["type"] == "thread.started"
        ]
        steps = [
            (
                e["thread_id"],
                e["sequence"],
                e["timestamp"],
                e["duration_ms"],
                e["step_type"],
                e["description"],
                json.dumps(e["details"]),
                e["status"],
            )
            for e in events
            if e["type"] == "thread.step"
        ]
        ledger = [(e["id"], e["type"], e["thread_id"]) for e in events if e["type"] != "thread.message"]
        rows.append((threads, steps, ledger))
    with psycopg.connect(url) as conn:
        conn.execute(f"TRUNCATE {TABLES} CASCADE")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur:
            for threads, steps, ledger in rows:
                with cur.copy("COPY threads_threadevent (id, type, thread_id) FROM STDIN") as copy:
                    for row in ledger:
                        copy.write_row(row)
                with cur.copy(
                    "COPY threads_thread (id, parent_id, mcp_id, status, user_input, execution_context, "
                    "started_at) FROM STDIN"
                ) as copy:
                    for row in threads:
                        copy.write_row(row)
                with cur.copy(
                    "COPY threads_executionstep (thread_id, sequence, timestamp, duration_ms, step_type, "
                    "description, details, status) FROM STDIN"
                ) as copy:
                    for row in steps:
                        copy.write_row(row)
                conn.commit()
        return SPANS / (time.perf_counter() - start)


def run(web: int, url: str, env: dict[str, str], key: str, bodies: list[bytes]) -> dict[str, Any]:
    """Post every body to `web` daphne processes from empty tables; the rate and the counts."""
    with psycopg.connect(url) as conn:
        conn.execute(f"TRUNCATE {TABLES} CASCADE")
    logs = ROOT / "bench" / "results"
    servers = [daphne(free_port(), env, logs / f"daphne_otlp-{i}.log") for i in range(web)]
    try:
        for server in servers:
            server.wait_healthy()
        rate = asyncio.run(post_all([s.url for s in servers], key, bodies))
    finally:
        for server in servers:
            server.stop()
    stored = counts(url)
    expected_steps = SPANS - SPANS // TRACE_SIZE
    return {
        "web_processes": web,
        "durable_spans_per_s": round(rate),
        "threads_stored": stored["threads_thread"],
        "steps_stored": stored["threads_executionstep"],
        "steps_expected": expected_steps,
        "lost": expected_steps - stored["threads_executionstep"],
    }


def main() -> None:
    url = reset_database()
    env = clean_env(
        DATABASE_URL=url, REDIS_URL=REDIS, SECRET_KEY="bench", MC_CHANNEL_PREFIX="bench_otlp", MC_DEMO="0"
    )
    key = create_key(env, "bench", "srv-bench")
    bodies = [batch(i) for i in range(SPANS // BATCH)]
    logs = ROOT / "bench" / "results"
    logs.mkdir(parents=True, exist_ok=True)
    runs = [run(web, url, env, key, bodies) for web in WEB]
    copy_rate = copy_baseline(url, bodies)
    for result in runs:
        result["copy_spans_per_s"] = round(copy_rate)
        result["ratio"] = round(result["durable_spans_per_s"] / copy_rate, 2)
    result = {"spans_sent": SPANS, "runs": runs}
    print(json.dumps(result, indent=2))
    (logs / "otlp.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
