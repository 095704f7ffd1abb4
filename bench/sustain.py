"""Sustained ingest while archival runs (`make bench`), on PostgreSQL with day partitions.

1. A scratch database `mc_bench_sustain` is preloaded with BENCH_ARCHIVE_DAYS old days of
   BENCH_ARCHIVE_ROWS logs each (in their day partitions, as made ahead at the time).
2. Without archival: log batches of 500 over HTTP, 4 at a time, for BENCH_SUSTAIN_SECONDS
   (default 60) against one web process -> events/s.
3. With archival: the same for as long again, with `manage.py archive_logs` started at
   the same moment (each old day written to the archive, verified, its partition dropped).
   Events/s while the archival process ran, as a ratio of (2).
4. Rows lost: every ingested event must be in the table and every preloaded row in an
   archive file (ArchiveDay.rows); lost = expected - found, which must be 0.
Results in bench/results/sustain.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import Load, count, drop_database, fresh_database, post_for  # noqa: E402
from tests.processes import clean_env, create_key, daphne, free_port  # noqa: E402

DB_NAME = "mc_bench_sustain"
SECONDS = float(os.environ.get("BENCH_SUSTAIN_SECONDS", 60))
DAYS = int(os.environ.get("BENCH_ARCHIVE_DAYS", 5))
ROWS_PER_DAY = int(os.environ.get("BENCH_ARCHIVE_ROWS", 100_000))
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
COLUMNS = ("id", "timestamp", "level", "service", "thread_id", "mcp_id", "message", "context")


def preload(url: str, env: dict[str, str]) -> int:
    """DAYS old days (from 14 days ago back), ROWS_PER_DAY rows each, over several servers."""
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=14 + n) for n in range(DAYS)]
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            f"from datetime import date; from logs import partitions; "
            f"partitions.ensure(date.fromisoformat('{min(days)}'), date.fromisoformat('{max(days)}'))",
        ],
        cwd=ROOT,
        env={**env, "DATABASE_URL": url},
        check=True,
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for day in days:
            start = datetime.combine(day, datetime.min.time(), UTC)
            step = 86400 / ROWS_PER_DAY
            with cur.copy(f"COPY logs_logentry ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for i in range(ROWS_PER_DAY):
                    copy.write_row(
                        (
                            f"old-{day:%Y%m%d}-{i}",
                            start + timedelta(seconds=i * step),
                            ("INFO", "WARN", "ERROR")[i % 3],
                            "executor",
                            f"T-{i % 500}",
                            f"srv-{i % 4}",
                            f"archived line {i} of {day}: tool call finished, status ok",
                            json.dumps({"i": i}),
                        )
                    )
            cur.execute(
                "INSERT INTO logs_logeventid (id) SELECT id FROM logs_logentry WHERE timestamp >= %s "
                "AND timestamp < %s",
                [start, start + timedelta(days=1)],
            )
        conn.commit()
    return DAYS * ROWS_PER_DAY


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="mc-bench-sustain-"))
    prefix = f"mcsustain{os.getpid()}"
    env = clean_env(SECRET_KEY="bench", MC_DATA_DIR=str(data_dir), REDIS_URL=REDIS, MC_CHANNEL_PREFIX=prefix)
    url = fresh_database(DB_NAME, env)
    env["DATABASE_URL"] = url
    try:
        preloaded = preload(url, env)
        key = create_key(env, "bench", "srv-bench")
        server = daphne(free_port(), env, ROOT / "bench" / "daphne-sustain.log")
        try:
            server.wait_healthy()
            quiet = asyncio.run(post_for(server.url, key, SECONDS, "quiet"))
            archiver = subprocess.Popen(
                [sys.executable, "manage.py", "archive_logs", "--no-progress"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            archive_started = time.monotonic()

            async def busy_and_watch() -> tuple[Load, float]:
                load_task = asyncio.ensure_future(post_for(server.url, key, SECONDS, "busy"))
                while archiver.poll() is None:
                    await asyncio.sleep(0.05)
                ended = time.monotonic()
                return await load_task, ended

            busy, archive_ended = asyncio.run(busy_and_watch())
            archive_output = archiver.stdout.read().strip() if archiver.stdout else ""
            assert archiver.returncode == 0, archive_output
        finally:
            server.stop()
        ingested = quiet.accepted + busy.accepted
        hot = count(url)
        with psycopg.connect(url) as conn:
            archived = conn.execute("SELECT coalesce(sum(rows), 0) FROM logs_archiveday").fetchone()[0]  # type: ignore[index]
            partitions_left = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'logs_logentry'::regclass"
            ).fetchone()[0]  # type: ignore[index]
    finally:
        drop_database(DB_NAME)
    window_end = min(archive_ended, busy.ended)
    during = busy.rate(archive_started, window_end)
    result = {
        "seconds_each": SECONDS,
        "preloaded_days": DAYS,
        "preloaded_rows": preloaded,
        "ingest_without_archival_events_per_s": round(quiet.rate()),
        "ingest_during_archival_events_per_s": round(during),
        "ratio": round(during / quiet.rate(), 2),
        "ingest_whole_busy_phase_events_per_s": round(busy.rate()),
        "archival_seconds": round(archive_ended - archive_started, 1),
        "archival": archive_output.splitlines()[-1] if archive_output else "",
        "ingested": ingested,
        "hot_rows": hot,
        "archived_rows": archived,
        "rows_lost": preloaded + ingested - hot - archived,
        "partitions_left": partitions_left,
        "http_statuses": {"quiet": quiet.statuses, "busy": busy.statuses},
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sustain.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    assert result["rows_lost"] == 0, "rows lost"


if __name__ == "__main__":
    main()
