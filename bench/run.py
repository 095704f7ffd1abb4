"""Benchmarks (`make bench`): each figure beside a baseline measured in the same run.

1. Ingest: 100k log events through POST /api/ingest/events in batches of 500, against
   raw psycopg COPY of the same rows into the same table with the same indexes.
2. Live: 100 WebSocket clients on `logs:*` while 1,000 events/s are ingested for 30 s;
   latency from the start of the ingest request to receipt, p50 and p99.

Needs the machine's PostgreSQL and Redis; uses a scratch database `mc_bench`.
Environment: BENCH_EVENTS, BENCH_CLIENTS, BENCH_SECONDS, BENCH_RATE to scale it down.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import clean_env, create_key, daphne, free_port  # noqa: E402

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "mc_bench"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
EVENTS = int(os.environ.get("BENCH_EVENTS", 100_000))
BATCH = 500
CONCURRENCY = 4
CLIENTS = int(os.environ.get("BENCH_CLIENTS", 100))
SECONDS = int(os.environ.get("BENCH_SECONDS", 30))
RATE = int(os.environ.get("BENCH_RATE", 1000))
LIVE_BATCHES_PER_SECOND = 20
COLUMNS = ("id", "timestamp", "level", "service", "thread_id", "mcp_id", "message", "context", "exception")
BATCH_RE = re.compile(r'"batch":(\d+)')
LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR")


def log_events(prefix: str, n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "id": f"{prefix}-{i}",
            "type": "log",
            "timestamp": now,
            "level": LEVELS[i % len(LEVELS)],
            "service": ("executor", "parser", "auth", "gateway")[i % 4],
            "thread_id": f"T-{i % 200}",
            "mcp_id": "srv-bench",
            "message": f"tool call {i} finished in {i % 97} ms, status ok, request {uuid.uuid4().hex[:8]}",
            "context": {"attempt": i % 3, "tool": "git_log"},
            "exception": None,
        }
        for i in range(n)
    ]


def reset_database() -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    url = f"{PG}/{DB_NAME}"
    env = clean_env(DATABASE_URL=url, SECRET_KEY="bench")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return url


def copy_baseline(url: str, events: list[dict[str, Any]]) -> float:
    """Rows/s of raw psycopg COPY of `events` into logs_logentry (indexes in place)."""
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE logs_logentry")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur:
            for offset in range(0, len(events), BATCH):
                with cur.copy(f"COPY logs_logentry ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for e in events[offset : offset + BATCH]:
                        copy.write_row(
                            (
                                e["id"],
                                e["timestamp"],
                                e["level"],
                                e["service"],
                                e["thread_id"],
                                e["mcp_id"],
                                e["message"],
                                json.dumps(e["context"]),
                                e["exception"],
                            )
                        )
                conn.commit()  # one transaction per batch, as ingest does
        elapsed = time.perf_counter() - start
        conn.execute("TRUNCATE logs_logentry")
        conn.commit()
    return len(events) / elapsed


async def http_ingest(base: str, key: str, events: list[dict[str, Any]]) -> float:
    bodies = [json.dumps({"events": events[i : i + BATCH]}).encode() for i in range(0, len(events), BATCH)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post(f"{base}/api/ingest/events", content=body, headers=headers)
            assert response.status_code == 200 and response.json()["accepted"] == BATCH, response.text[:300]

    async with httpx.AsyncClient(timeout=60) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
        return len(events) / (time.perf_counter() - start)


async def live_latency(base: str, port: int, key: str) -> dict[str, float]:
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    ready = asyncio.Event()
    subscribed = 0
    per_batch = RATE // LIVE_BATCHES_PER_SECOND
    total_batches = SECONDS * LIVE_BATCHES_PER_SECOND
    expected = total_batches * per_batch * CLIENTS

    async def client() -> None:
        nonlocal subscribed
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/", max_size=None) as ws:
            await ws.send(json.dumps({"type": "subscribe", "channel": "logs:*", "payload": {"history": 0}}))
            await ws.recv()
            await ws.recv()
            subscribed += 1
            if subscribed == CLIENTS:
                ready.set()
            received = 0
            while received < total_batches * per_batch:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=10)
                except TimeoutError:
                    return
                now = time.perf_counter()
                # A frame carries one batch: its latency holds for each of its events.
                # Regex, not json.loads, so the bench client doesn't starve the server.
                batch = int(BATCH_RE.search(raw).group(1))  # type: ignore[union-attr, arg-type]
                count = raw.count('"type":"log"')  # type: ignore[arg-type]
                latencies.extend([now - sent_at[batch]] * count)
                received += count

    async def producer() -> None:
        await ready.wait()
        async with httpx.AsyncClient(timeout=30) as http:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            start = time.perf_counter()
            for b in range(total_batches):
                target = start + b / LIVE_BATCHES_PER_SECOND
                await asyncio.sleep(max(0.0, target - time.perf_counter()))
                events = log_events(f"live-{b}", per_batch)
                for e in events:
                    e["context"] = {"batch": b}
                body = json.dumps({"events": events})
                sent_at[b] = time.perf_counter()
                asyncio.ensure_future(http.post(f"{base}/api/ingest/events", content=body, headers=headers))
            await asyncio.sleep(3)

    await asyncio.gather(producer(), *(client() for _ in range(CLIENTS)))
    latencies.sort()
    return {
        "clients": CLIENTS,
        "events_per_second": RATE,
        "seconds": SECONDS,
        "delivered": len(latencies),
        "expected": expected,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


def main() -> None:
    url = reset_database()
    env = clean_env(
        DATABASE_URL=url, REDIS_URL=REDIS, SECRET_KEY="bench", MC_CHANNEL_PREFIX=f"mcbench{os.getpid()}"
    )
    key = create_key(env, "bench", "srv-bench")
    events = log_events("ingest", EVENTS)
    copy_rate = copy_baseline(url, events)
    port = free_port()
    server = daphne(port, env, ROOT / "bench" / "daphne.log")
    try:
        server.wait_healthy()
        http_rate = asyncio.run(http_ingest(server.url, key, events))
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM logs_logentry").fetchone()[0]  # type: ignore[index]
        assert stored == EVENTS, f"stored {stored} of {EVENTS}"
        live = asyncio.run(live_latency(server.url, port, key))
    finally:
        server.stop()
    results = {
        "ingest": {
            "events": EVENTS,
            "batch": BATCH,
            "http_events_per_second": round(http_rate),
            "copy_rows_per_second": round(copy_rate),
            "ratio": round(http_rate / copy_rate, 3),
        },
        "live": {k: round(v, 1) if isinstance(v, float) else v for k, v in live.items()},
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    i, lv = results["ingest"], results["live"]
    print(
        f"ingest: {i['http_events_per_second']} events/s over HTTP vs {i['copy_rows_per_second']} rows/s "
        f"raw COPY -> ratio {i['ratio']:.2f} (target >= 0.50)"
    )
    print(
        f"live: {lv['clients']} clients, {lv['events_per_second']} events/s for {lv['seconds']} s: "
        f"p50 {lv['p50_ms']} ms, p99 {lv['p99_ms']} ms, max {lv['max_ms']} ms "
        f"({lv['delivered']}/{lv['expected']} delivered; target p99 <= 50 ms)"
    )


if __name__ == "__main__":
    main()
