"""Shared by the lifecycle benchmarks (bench/sustain.py, bench/spool.py): a scratch database,
a web process, and log batches posted over HTTP for a while, each answer timed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
BATCH = 500
CONCURRENCY = 4


def fresh_database(name: str, env: dict[str, str]) -> str:
    """Drop and create `name`, migrate it; its URL."""
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = f"{PG}/{name}"
    migrate = [sys.executable, "manage.py", "migrate", "-v0"]
    subprocess.run(migrate, cwd=ROOT, env={**env, "DATABASE_URL": url}, check=True)
    return url


def drop_database(name: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def batch(prefix: str, n: int, when: datetime | None = None) -> list[dict[str, Any]]:
    stamp = (when or datetime.now(UTC)).isoformat()
    return [
        {
            "id": f"{prefix}-{n}-{i}",
            "type": "log",
            "timestamp": stamp,
            "level": ("DEBUG", "INFO", "INFO", "WARN", "ERROR")[i % 5],
            "service": ("executor", "parser", "auth", "gateway")[i % 4],
            "thread_id": f"T-{i % 200}",
            "mcp_id": "srv-bench",
            "message": f"tool call {i} finished in {i % 97} ms, status ok, request {uuid.uuid4().hex[:8]}",
            "context": {"attempt": i % 3, "tool": "git_log"},
        }
        for i in range(BATCH)
    ]


@dataclass
class Load:
    """What a load run saw: per answered batch, when (monotonic) and how many events it accepted."""

    answers: list[tuple[float, int]] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0

    @property
    def accepted(self) -> int:
        return sum(n for _, n in self.answers)

    def rate(self, start: float | None = None, end: float | None = None) -> float:
        """Events/s accepted between `start` and `end` (the whole run by default)."""
        start = self.started if start is None else start
        end = self.ended if end is None else end
        events = sum(n for t, n in self.answers if start <= t <= end)
        return events / max(end - start, 1e-9)


async def post_for(
    base: str,
    key: str,
    seconds: float,
    prefix: str,
    batches_per_second: float | None = None,
    concurrency: int = CONCURRENCY,
) -> Load:
    """Post batches for `seconds`, flat out (`concurrency` at once) or at a fixed rate.

    202 (spooled) counts as accepted as well as 200; 503 (spool full) waits its Retry-After.
    """
    load = Load()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    counter = iter(range(10**9))

    async def one(client: httpx.AsyncClient) -> None:
        n = next(counter)
        response = await client.post(
            f"{base}/api/ingest/events", content=json.dumps({"events": batch(prefix, n)}), headers=headers
        )
        load.statuses[response.status_code] = load.statuses.get(response.status_code, 0) + 1
        if response.status_code in (200, 202):
            load.answers.append((time.monotonic(), response.json()["accepted"]))
        elif response.status_code == 503:
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        else:
            raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:300]}")

    async with httpx.AsyncClient(timeout=60) as client:
        load.started = time.monotonic()
        deadline = load.started + seconds
        if batches_per_second is None:

            async def worker() -> None:
                while time.monotonic() < deadline:
                    await one(client)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            pending = []
            b = 0
            while (due := load.started + b / batches_per_second) < deadline:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                pending.append(asyncio.ensure_future(one(client)))
                b += 1
            await asyncio.gather(*pending)
        load.ended = time.monotonic()
    return load


def count(url: str, table: str = "logs_logentry") -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
