"""Spool benchmark (`make bench`): drain rate after a real database outage, against normal ingest.

Against one web process (daphne) and a scratch PostgreSQL database `mc_bench_spool`:
1. normal ingest: log batches of 500 over HTTP, 4 at a time, for BENCH_SPOOL_NORMAL_SECONDS
   (default 20) -> events/s;
2. an outage of BENCH_OUTAGE_SECONDS (default 60): the database refuses connections
   (`ALLOW_CONNECTIONS false`, its backends terminated, as tests/faults.py does) while
   batches keep coming at BENCH_OUTAGE_RATE events/s (default 2,000); each is answered 202
   and kept in the fsync'd spool;
3. recovery: the database comes back and the web process's own drainer replays the spool;
   drain rate = spooled events / seconds from the database's return until the last is
   stored. Reported as a ratio of (1), with a check that every accepted event is stored
   exactly once. Results in bench/results/spool.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import BATCH, PG, count, drop_database, fresh_database, post_for  # noqa: E402
from tests.processes import clean_env, create_key, daphne, free_port  # noqa: E402

DB_NAME = "mc_bench_spool"
NORMAL_SECONDS = float(os.environ.get("BENCH_SPOOL_NORMAL_SECONDS", 20))
OUTAGE_SECONDS = float(os.environ.get("BENCH_OUTAGE_SECONDS", 60))
OUTAGE_RATE = int(os.environ.get("BENCH_OUTAGE_RATE", 2000))
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def take_down() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{DB_NAME}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [DB_NAME],
        )


def bring_back() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{DB_NAME}" ALLOW_CONNECTIONS true')


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="mc-bench-spool-"))
    env = clean_env(
        SECRET_KEY="bench",
        MC_DATA_DIR=str(data_dir),
        REDIS_URL=REDIS,
        MC_CHANNEL_PREFIX=f"mcspool{os.getpid()}",
        MC_SPOOL_DRAIN_INTERVAL="0.5",
        MC_SPOOL_MAX_BYTES=str(4 << 30),
    )
    url = fresh_database(DB_NAME, env)
    env["DATABASE_URL"] = url
    try:
        key = create_key(env, "bench", "srv-bench")
        server = daphne(free_port(), env, ROOT / "bench" / "daphne-spool.log")
        try:
            server.wait_healthy()
            normal = asyncio.run(post_for(server.url, key, NORMAL_SECONDS, "normal"))
            assert count(url) == normal.accepted
            take_down()
            outage = asyncio.run(post_for(server.url, key, OUTAGE_SECONDS, "outage", OUTAGE_RATE / BATCH))
            spooled_files = len(list((data_dir / "spool").glob("*.batch")))
            bring_back()
            back = time.monotonic()
            expected = normal.accepted + outage.accepted
            stored = count(url)
            while stored < expected and time.monotonic() - back < 600:
                time.sleep(0.1)
                stored = count(url)
            drained = time.monotonic() - back
        finally:
            server.stop()
        distinct = count(url, "logs_logeventid")
    finally:
        drop_database(DB_NAME)
    drain_rate = outage.accepted / drained
    result = {
        "normal_seconds": NORMAL_SECONDS,
        "outage_seconds": OUTAGE_SECONDS,
        "normal_ingest_events_per_s": round(normal.rate()),
        "outage_offered_events_per_s": OUTAGE_RATE,
        "outage_statuses": outage.statuses,
        "spooled_events": outage.accepted,
        "spooled_files": spooled_files,
        "drain_seconds": round(drained, 2),
        "drain_events_per_s": round(drain_rate),
        "drain_to_ingest_ratio": round(drain_rate / normal.rate(), 2),
        "expected": expected,
        "stored": stored,
        "distinct_ids": distinct,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "spool.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    assert stored == expected == distinct, "events lost or duplicated"
    assert set(outage.statuses) == {202}, "the outage was not answered from the spool"


if __name__ == "__main__":
    main()
