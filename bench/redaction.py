"""Redaction benchmark (`make bench`): ingest throughput with and without redaction.

The same mix of events goes through `missioncontrol.ingest.pipeline.ingest` (what
POST /api/ingest/events calls) in batches of 500, into a scratch PostgreSQL database
`mc_bench_redaction`, with redaction off, on (secrets), and on with personal data
(`redaction.pii`: e-mails, Luhn-checked card numbers, US SSNs) for rotating batches (each
mode first, second and third in turn, so the tables' growth and the machine's other
load weigh on all alike). The mix: 70% logs (short messages, a context object), 15%
steps (nested JSON arguments), 10% transcript messages (~600 characters), 5%
permission checks; one event in 50 carries a secret and one in 50 personal data.
Reported: events/s of wall time and of this process's CPU time, each with redaction
over without (and with PII over without); and the cost of `redact_event` alone, per
event, on the mix.

Environment: BENCH_REDACTION_EVENTS (default 60,000), BENCH_PG, BENCH_REDACTION_DB.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import CLEARED  # noqa: E402

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_REDACTION_DB", "mc_bench_redaction")
EVENTS = int(os.environ.get("BENCH_REDACTION_EVENTS", 60_000))
BATCH = 500
WORDS = [
    "tool",
    "finished",
    "request",
    "served",
    "cache",
    "miss",
    "retry",
    "upstream",
    "timeout",
    "parsed",
    "rows",
    "query",
    "commit",
    "branch",
    "file",
    "written",
    "directory",
    "listed",
    "user",
    "asked",
    "summary",
    "of",
    "the",
    "repository",
    "deploy",
    "staging",
    "production",
    "latency",
    "p99",
    "exceeded",
    "budget",
    "connection",
    "pool",
    "healthy",
]
SECRETS = (
    "Authorization: Bearer mF_9.B5f-4.1JqM0aZ",
    "sk-proj-Tq8mZ2vLx9Rk4Wn7Yb3Hc6Jd1Fg5Sa0P",
    "postgres://admin:hunter2@db.internal/mc",
    "api_key=abc123def456",
)
PERSONAL = (
    "reply to alice.smith@example.com",
    "card 4111 1111 1111 1111 declined",
    "ssn 123-45-6789 on file",
)


def _text(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    if rng.random() < 0.02:
        text += " " + rng.choice(SECRETS)
    if rng.random() < 0.02:
        text += " " + rng.choice(PERSONAL)
    return text


def events(prefix: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = "2026-11-21T10:00:00+00:00"
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = rng.random()
        base = {"id": f"{prefix}-{i}", "timestamp": now}
        thread = f"{prefix}-T{i // 200}"
        if kind < 0.70:
            out.append(
                {
                    **base,
                    "type": "log",
                    "level": "INFO",
                    "service": "executor",
                    "mcp_id": "srv-bench",
                    "thread_id": thread,
                    "message": _text(rng, 12),
                    "context": {"tool": rng.choice(WORDS), "duration_ms": rng.random() * 100},
                }
            )
        elif kind < 0.85:
            out.append(
                {
                    **base,
                    "type": "thread.step",
                    "thread_id": thread,
                    "sequence": i,
                    "step_type": "tool_call",
                    "description": _text(rng, 4),
                    "details": {
                        "mcp_id": "git",
                        "tool": "git_log",
                        "arguments": {"repo_path": "/srv/repo", "max_count": 20, "query": _text(rng, 6)},
                    },
                }
            )
        elif kind < 0.95:
            out.append(
                {
                    **base,
                    "type": "thread.message",
                    "thread_id": thread,
                    "role": "agent",
                    "content": _text(rng, 90),
                    "metadata": {"model": "claude", "tokens": 120},
                }
            )
        else:
            out.append(
                {
                    **base,
                    "type": "permission.check",
                    "thread_id": thread,
                    "user_id": "alice",
                    "resource": "git/git_log",
                    "action": "execute",
                    "granted": True,
                    "reason": _text(rng, 5),
                }
            )
    return out


def setup(url: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    for name in CLEARED:
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="missioncontrol.settings", DATABASE_URL=url, SECRET_KEY="bench", DEBUG="0"
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> None:
    url = f"{PG}/{DB_NAME}"
    setup(url)
    from django.test.utils import override_settings

    from missioncontrol.config import PII_KINDS, RedactionConfig
    from missioncontrol.ingest.events import Source, validate
    from missioncontrol.ingest.pipeline import ingest
    from missioncontrol.redaction import redact_event

    # Batches rotate off/on/pii, each mode first, second and third in turn, so that load
    # on the machine (it is shared) and the tables' growth weigh on all alike.
    configs = {
        "off": RedactionConfig(enabled=False),
        "on": RedactionConfig(),
        "pii": RedactionConfig(pii=PII_KINDS),
    }
    modes = tuple(configs)
    wall = dict.fromkeys(modes, 0.0)
    cpu = dict.fromkeys(modes, 0.0)
    counted = dict.fromkeys(modes, 0)
    rounds = EVENTS // (len(modes) * BATCH)
    for round_ in range(rounds):
        batch_events = events(f"p{round_}", BATCH, seed=round_)
        order = modes[round_ % 3 :] + modes[: round_ % 3]
        for position, mode in enumerate(order):
            batch = [{**e, "id": f"{e['id']}-{position}"} for e in batch_events]  # the same events, new ids
            with override_settings(REDACTION=configs[mode]):
                began, began_cpu = time.perf_counter(), time.process_time()
                result = ingest(batch, Source(mcp_id=None))
                wall[mode] += time.perf_counter() - began
                cpu[mode] += time.process_time() - began_cpu
            assert result.count("accepted") == len(batch), result.as_dict()
            counted[mode] += len(batch)
    rate = {mode: counted[mode] / wall[mode] for mode in wall}
    cpu_rate = {mode: counted[mode] / cpu[mode] for mode in cpu}

    # redact_event alone, on validated events of the same mix.
    sample = [validate(e, Source(mcp_id=None)) for e in events("solo", 20_000, seed=99)]
    per_event_us = {}
    for mode in ("on", "pii"):
        with override_settings(REDACTION=configs[mode]):
            copies = [dict(e) for e in sample]
            began = time.perf_counter()
            for event in copies:
                redact_event(event)
            per_event_us[mode] = (time.perf_counter() - began) / len(copies) * 1e6

    result = {
        "events": sum(counted.values()),
        "batch": BATCH,
        "ingest_events_per_second_without_redaction": round(rate["off"]),
        "ingest_events_per_second_with_redaction": round(rate["on"]),
        "ingest_events_per_second_with_pii_redaction": round(rate["pii"]),
        "ratio": round(rate["on"] / rate["off"], 3),
        "pii_ratio": round(rate["pii"] / rate["off"], 3),
        "cpu_events_per_second_without_redaction": round(cpu_rate["off"]),
        "cpu_events_per_second_with_redaction": round(cpu_rate["on"]),
        "cpu_events_per_second_with_pii_redaction": round(cpu_rate["pii"]),
        "cpu_ratio": round(cpu_rate["on"] / cpu_rate["off"], 3),
        "cpu_pii_ratio": round(cpu_rate["pii"] / cpu_rate["off"], 3),
        "redact_event_us_per_event": round(per_event_us["on"], 2),
        "redact_event_with_pii_us_per_event": round(per_event_us["pii"], 2),
    }
    print(
        f"redaction: ingest() {result['ingest_events_per_second_with_redaction']:,} events/s with, "
        f"{result['ingest_events_per_second_with_pii_redaction']:,} with PII too, "
        f"{result['ingest_events_per_second_without_redaction']:,} without -> ratio {result['ratio']:.3f}, "
        f"with PII {result['pii_ratio']:.3f} (CPU of this process: ratio {result['cpu_ratio']:.3f}, "
        f"with PII {result['cpu_pii_ratio']:.3f}); redact_event alone "
        f"{result['redact_event_us_per_event']} us/event, with PII "
        f"{result['redact_event_with_pii_us_per_event']} us/event",
        flush=True,
    )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "redaction.json").write_text(json.dumps(result, indent=2) + "\n")
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


if __name__ == "__main__":
    main()
