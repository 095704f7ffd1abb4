"""Spool benchmark (`make bench`): the outage path against normal ingest, on PostgreSQL.

In one process, through the same functions the ingest endpoint and the drainer call:
1. normal ingest: BENCH_SPOOL_BATCHES batches of 500 logs stored by `ingest()`;
2. an outage: as many batches written to the spool (`Spool.append`, fsync'd each), the
   rate at which ingest can answer 202 while the database is down;
3. recovery: `Spool.drain()` replays them into the database.
Reported: events/s of each, and the drain rate as a ratio of normal ingest (the issue's
"spool drain rate after an outage, as a ratio of normal ingest"). A scratch database
`mc_bench_spool` (dropped afterwards); results in bench/results/spool.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "mc_bench_spool"
BATCHES = int(os.environ.get("BENCH_SPOOL_BATCHES", 200))
PER_BATCH = 500


def batch(prefix: str, n: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"{prefix}-{n}-{i}",
            "type": "log",
            "timestamp": "2026-11-21T10:00:00+00:00",
            "level": "INFO",
            "service": "bench",
            "mcp_id": "bench",
            "message": f"spool bench line {i} of batch {n}",
            "context": {"i": i},
        }
        for i in range(PER_BATCH)
    ]


def main() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB_NAME}")
    data_dir = Path(tempfile.mkdtemp(prefix="mc-bench-spool-"))
    os.environ.update(
        DATABASE_URL=f"{PG}/{DB_NAME}", SECRET_KEY="bench", MC_DATA_DIR=str(data_dir), MC_CONN_MAX_AGE="0"
    )
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missioncontrol.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from missioncontrol.ingest.events import Source
    from missioncontrol.ingest.pipeline import ingest
    from missioncontrol.ingest.spool import Spool

    call_command("migrate", verbosity=0)
    events = BATCHES * PER_BATCH
    try:
        start = time.perf_counter()
        for n in range(BATCHES):
            ingest(batch("direct", n), Source(mcp_id=None))
        direct = events / (time.perf_counter() - start)

        spool = Spool(data_dir / "spool", 1 << 40)
        start = time.perf_counter()
        for n in range(BATCHES):
            spool.append(batch("spooled", n), None)
        spooling = events / (time.perf_counter() - start)

        start = time.perf_counter()
        report = spool.drain()
        drain = report.events / (time.perf_counter() - start)
        assert report.events == events and report.remaining == 0
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    result = {
        "events": events,
        "batch": PER_BATCH,
        "ingest_events_per_s": round(direct),
        "spool_append_events_per_s": round(spooling),
        "drain_events_per_s": round(drain),
        "drain_to_ingest_ratio": round(drain / direct, 2),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "spool.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
