"""Benchmarks (`make bench`): each figure beside a baseline measured in the same run.

1. Ingest: 100k log events through POST /api/ingest/events in batches of 500, against
   raw psycopg COPY of the same rows into the same table with the same indexes.
2. Live: 100 WebSocket clients on `logs:*` while 1,000 events/s are ingested for 30 s;
   latency from the start of the ingest request to receipt, p50 and p99.

Needs the machine's PostgreSQL and Redis; uses a scratch database `mc_bench`.
Each runs with one web process, then with two (BENCH_WEB=1,2).
Environment: BENCH_EVENTS, BENCH_CLIENTS, BENCH_SECONDS, BENCH_RATE to scale it down.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
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

from tests.processes import Server, clean_env, create_key, create_token, daphne, free_port  # noqa: E402

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "mc_bench"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
EVENTS = int(os.environ.get("BENCH_EVENTS", 100_000))
BATCH = 500
CONCURRENCY = 4
# Web (daphne) process counts to run both benchmarks with, behind the same PostgreSQL
# and Redis; clients and batches are spread over them round-robin, as a load balancer
# would spread them. Default: one process, then two (one per core of the machine).
WEB = [int(n) for n in os.environ.get("BENCH_WEB", "1,2").split(",")]
CLIENTS = int(os.environ.get("BENCH_CLIENTS", 100))
SECONDS = int(os.environ.get("BENCH_SECONDS", 30))
RATE = int(os.environ.get("BENCH_RATE", 1000))
LIVE_BATCHES_PER_SECOND = 20
COLUMNS = ("id", "timestamp", "level", "service", "thread_id", "mcp_id", "message", "context", "exception")
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


async def http_ingest(bases: list[str], key: str, events: list[dict[str, Any]]) -> float:
    bodies = [json.dumps({"events": events[i : i + BATCH]}).encode() for i in range(0, len(events), BATCH)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def worker(client: httpx.AsyncClient, base: str) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post(f"{base}/api/ingest/events", content=body, headers=headers)
            assert response.status_code == 200 and response.json()["accepted"] == BATCH, response.text[:300]

    async with httpx.AsyncClient(timeout=60) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client, bases[i % len(bases)]) for i in range(CONCURRENCY)))
        return len(events) / (time.perf_counter() - start)


# Live: the producer and the subscribers run in separate processes (CLIENT_PROCESSES
# of them), so one harness event loop serialising 100 sockets' frames is not what gets
# measured. Each event carries its send time (CLOCK_MONOTONIC, shared by all processes
# on the machine); a frame's latency holds for each of its events.
CLIENT_PROCESSES = int(os.environ.get("BENCH_CLIENT_PROCESSES", 4))
SENT_RE = re.compile(r'"sent":([0-9.]+)')


def _total_events() -> int:
    return SECONDS * LIVE_BATCHES_PER_SECOND * (RATE // LIVE_BATCHES_PER_SECOND)


async def _subscribers(port: int, count: int, ready: Any, token: str) -> list[tuple[float, int]]:
    """`count` sockets on logs:*, signed in with `token`; (latency, events) per frame received."""
    frames: list[tuple[float, int]] = []
    subscribed = 0
    total = _total_events()

    async def client() -> None:
        nonlocal subscribed
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/?token={token}", max_size=None) as ws:
            await ws.send(json.dumps({"type": "subscribe", "channel": "logs:*", "payload": {"history": 0}}))
            await ws.recv()
            await ws.recv()
            subscribed += 1
            if subscribed == count:
                ready.set()
            received = 0
            while received < total:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=10)
                except TimeoutError:
                    return
                now = time.monotonic()
                # Regex, not json.loads, so the harness doesn't starve the server.
                sent = float(SENT_RE.search(raw).group(1))  # type: ignore[union-attr, arg-type]
                count_in_frame = raw.count('"type":"log"')  # type: ignore[arg-type]
                frames.append((now - sent, count_in_frame))
                received += count_in_frame

    await asyncio.gather(*(client() for _ in range(count)))
    return frames


def _subscriber_process(port: int, count: int, ready: Any, out: Any, token: str) -> None:
    out.put(asyncio.run(_subscribers(port, count, ready, token)))


async def _produce(bases: list[str], key: str) -> list[float]:
    """Post RATE events/s in LIVE_BATCHES_PER_SECOND batches; seconds to each answer."""
    per_batch = RATE // LIVE_BATCHES_PER_SECOND
    answered: list[float] = []
    pending = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=30) as http:

        async def post(base: str, body: str, sent: float) -> None:
            response = await http.post(f"{base}/api/ingest/events", content=body, headers=headers)
            answered.append(time.monotonic() - sent)
            assert response.status_code == 200, response.text[:300]

        start = time.monotonic()
        for b in range(SECONDS * LIVE_BATCHES_PER_SECOND):
            await asyncio.sleep(max(0.0, start + b / LIVE_BATCHES_PER_SECOND - time.monotonic()))
            events = log_events(f"live-{b}", per_batch)
            sent = time.monotonic()
            for e in events:
                e["context"] = {"batch": b, "sent": sent}
            body = json.dumps({"events": events})
            pending.append(asyncio.ensure_future(post(bases[b % len(bases)], body, sent)))
        await asyncio.gather(*pending)
    return answered


def _percentile(frames: list[tuple[float, int]], q: float) -> float:
    """Event-weighted percentile of (latency, events) pairs."""
    frames = sorted(frames)
    target = q * sum(n for _, n in frames)
    seen = 0
    for latency, n in frames:
        seen += n
        if seen >= target:
            return latency
    return frames[-1][0]


def live_latency(servers: list[Server], key: str, token: str) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    sizes = [CLIENTS // CLIENT_PROCESSES + (i < CLIENTS % CLIENT_PROCESSES) for i in range(CLIENT_PROCESSES)]
    readies = []
    procs = []
    for i, size in enumerate(filter(None, sizes)):
        ready = ctx.Event()
        port = servers[i % len(servers)].port
        proc = ctx.Process(target=_subscriber_process, args=(port, size, ready, out, token))
        proc.start()
        readies.append(ready)
        procs.append(proc)
    for ready in readies:
        assert ready.wait(60), "subscribers did not connect"
    answered = sorted(asyncio.run(_produce([server.url for server in servers], key)))
    frames: list[tuple[float, int]] = []
    for _ in procs:
        frames.extend(out.get(timeout=60))
    for proc in procs:
        proc.join(10)
    return {
        "clients": CLIENTS,
        "client_processes": len(procs),
        "events_per_second": RATE,
        "seconds": SECONDS,
        "delivered": sum(n for _, n in frames),
        "expected": _total_events() * CLIENTS,
        "p50_ms": _percentile(frames, 0.50) * 1000,
        "p99_ms": _percentile(frames, 0.99) * 1000,
        "max_ms": max(lat for lat, _ in frames) * 1000,
        "ingest_answer_p50_ms": statistics.median(answered) * 1000,
        "ingest_answer_p99_ms": answered[int(len(answered) * 0.99) - 1] * 1000,
    }


def run(web: int) -> dict[str, Any]:
    """Both benchmarks against `web` daphne processes, on a fresh database."""
    url = reset_database()
    env = clean_env(
        DATABASE_URL=url,
        REDIS_URL=REDIS,
        SECRET_KEY="bench",
        MC_CHANNEL_PREFIX=f"mcbench{os.getpid()}",
        # Every benchmark client is one anonymous address: past the default per-user cap.
        MC_WS_MAX_CONNECTIONS_PER_USER=str(CLIENTS + 10),
    )
    key = create_key(env, "bench", "srv-bench")
    token = create_token(env)
    events = log_events("ingest", EVENTS)
    copy_rate = copy_baseline(url, events)
    servers = [daphne(free_port(), env, ROOT / "bench" / f"daphne-{i}.log") for i in range(web)]
    try:
        for server in servers:
            server.wait_healthy()
        http_rate = asyncio.run(http_ingest([server.url for server in servers], key, events))
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM logs_logentry").fetchone()[0]  # type: ignore[index]
        assert stored == EVENTS, f"stored {stored} of {EVENTS}"
        live = live_latency(servers, key, token)
    finally:
        for server in servers:
            server.stop()
    result = {
        "web_processes": web,
        "ingest": {
            "events": EVENTS,
            "batch": BATCH,
            "http_events_per_second": round(http_rate),
            "copy_rows_per_second": round(copy_rate),
            "ratio": round(http_rate / copy_rate, 3),
        },
        "live": {k: round(v, 1) if isinstance(v, float) else v for k, v in live.items()},
    }
    i, lv = result["ingest"], result["live"]
    print(f"-- {web} web process(es)")
    print(
        f"ingest: {i['http_events_per_second']} events/s over HTTP vs {i['copy_rows_per_second']} rows/s "
        f"raw COPY -> ratio {i['ratio']:.2f} (target >= 0.50)"
    )
    print(
        f"live: {lv['clients']} clients, {lv['events_per_second']} events/s for {lv['seconds']} s: "
        f"p50 {lv['p50_ms']} ms, p99 {lv['p99_ms']} ms, max {lv['max_ms']} ms "
        f"({lv['delivered']}/{lv['expected']} delivered; target p99 <= 50 ms); "
        f"ingest answered in p50 {lv['ingest_answer_p50_ms']} ms, p99 {lv['ingest_answer_p99_ms']} ms",
        flush=True,
    )
    return result


def main() -> None:
    results = [run(web) for web in WEB]
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
