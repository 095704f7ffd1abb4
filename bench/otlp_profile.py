"""In-process cost of one 500-span OTLP export, per span: decode, map, validate + store.

No HTTP: the receiver's three stages timed separately on PostgreSQL (BENCH_PG) over
BENCH_PROFILE_BATCHES fresh batches (default 20) of `bench/otlp.py`'s spans, after 2
warm-ups. `--cprofile` prints the top functions of the whole export instead.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_PROFILE_DB", "mc_bench_otlp_profile")
BATCHES = int(os.environ.get("BENCH_PROFILE_BATCHES", 20))


def main() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    os.environ.update(DATABASE_URL=f"{PG}/{DB_NAME}", SECRET_KEY="bench", MC_DEMO="0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missioncontrol.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django

    django.setup()
    from otlp import batch  # bench/otlp.py

    from missioncontrol.ingest.events import Source
    from missioncontrol.ingest.otlp import decode
    from missioncontrol.ingest.otlp.mapping import map_spans
    from missioncontrol.ingest.pipeline import ingest

    source = Source(mcp_id="srv-bench")
    bodies = [batch(i) for i in range(BATCHES + 2)]
    totals = {"decode": 0.0, "map": 0.0, "store": 0.0}
    cpu = {"decode": 0.0, "map": 0.0, "store": 0.0}
    profiler = cProfile.Profile() if "--cprofile" in sys.argv else None
    for n, body in enumerate(bodies):
        if profiler and n >= 2:
            profiler.enable()
        t0, c0 = time.perf_counter(), time.thread_time()
        spans = decode.spans(decode.parse("traces", "protobuf", body))  # type: ignore[arg-type]
        t1, c1 = time.perf_counter(), time.thread_time()
        mapped = map_spans(spans, "srv-bench")
        t2, c2 = time.perf_counter(), time.thread_time()
        ingest(mapped.events, source)
        t3, c3 = time.perf_counter(), time.thread_time()
        if profiler:
            profiler.disable()
        if n >= 2:
            for stage, wall, used in (
                ("decode", t1 - t0, c1 - c0),
                ("map", t2 - t1, c2 - c1),
                ("store", t3 - t2, c3 - c2),
            ):
                totals[stage] += wall
                cpu[stage] += used
    spans_total = BATCHES * 500
    for name, spent in (("wall", totals), ("cpu (this process)", cpu)):
        per = {k: round(v / spans_total * 1e6, 1) for k, v in spent.items()}
        per["total"] = round(sum(spent.values()) / spans_total * 1e6, 1)
        print(f"µs per span, {name}:", per, f"→ {1e6 / per['total']:.0f} spans/s")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()
