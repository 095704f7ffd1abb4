"""Policy benchmark: what the policy check adds to a routed call (`make bench`, or alone).

Two figures, same run, embedded default (SQLite) in one process:
- the decision alone: `decide()` over the cached rules, per call, for 0 and 50 rules and
  a chain of 1 and 3 threads (the rules are in memory: no query, no I/O), warm (the
  verdict remembered, as for an agent's repeated calls) and cold (a new rule set);
- end to end: `get_current_time` of mcp-server-time through the aggregated server (the
  one /mcp and mcp_proxy serve) by an in-memory `mcp` SDK client, recorded as in
  production, in three modes interleaved round by round so drift hits each alike:
  `bypass` (the gate replaced by a constant grant: the no-policy path), `0 rules`
  (the real gate, the default deciding) and `50 rules, child of 2` (the real gate,
  50 rules none of which match until the last, a thread with two ancestors).
Environment: BENCH_CALLS (per mode per round, default 300), BENCH_ROUNDS (default 3).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["MC_DATA_DIR"] = tempfile.mkdtemp(prefix="mc-bench-policy-")
for name in ("DATABASE_URL", "REDIS_URL", "MC_CONFIG"):
    os.environ.pop(name, None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missioncontrol.settings")

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from django.core.management import call_command  # noqa: E402
from mcp import Client  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "300"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WARMUP = 50


def micro() -> dict[str, float]:
    from audit.models import PolicyRule
    from audit.policy import Link, RuleSet, Subject, decide, policies

    out = {}
    alice, bob = Subject(user="alice", teams=("ops",)), Subject(user="bob")
    for rules in (0, 50):
        PolicyRule.objects.all().delete()
        PolicyRule.objects.bulk_create(
            [
                PolicyRule(subject_kind="user", subject_value=f"u{i}", server=f"s{i}*", effect="deny")
                for i in range(rules)
            ]
        )
        policies.invalidate()
        for depth in (1, 3):
            chain = [Link(f"T{i}", bob if i else alice) for i in range(depth)]
            policies.rules()
            n = 20000
            start = time.perf_counter()
            for _ in range(n):
                decide(policies.rules(), chain, "time", "get_current_time", "read")
            out[f"{rules} rules, chain {depth}"] = (time.perf_counter() - start) / n * 1e6
            # Cold: a new RuleSet each time (as right after a change), nothing remembered.
            loaded = policies.rules()
            n = 2000
            start = time.perf_counter()
            for _ in range(n):
                decide(RuleSet(loaded.rules, True), chain, "time", "get_current_time", "read")
            out[f"{rules} rules, chain {depth}, cold"] = (time.perf_counter() - start) / n * 1e6
    PolicyRule.objects.all().delete()
    policies.invalidate()
    return out


async def end_to_end() -> dict[str, dict[str, float]]:
    import mcps.endpoint.server as server_module
    from audit.models import PolicyRule
    from audit.policy import Decision, Subject, policies
    from mcps.endpoint.gate import PARENT_META_KEY
    from mcps.endpoint.recorder import CallRecorder
    from mcps.endpoint.router import LocalRouter
    from mcps.gateway.connection import Backoff
    from mcps.gateway.service import Gateway
    from mcps.models import MCPServer
    from missioncontrol.ingest.batcher import EventBatcher

    await sync_to_async(MCPServer.objects.update_or_create)(
        id="time",
        defaults={
            "name": "time",
            "source": "api",
            "transport": "stdio",
            "command": sys.executable,
            "args": ["-m", "mcp_server_time", "--local-timezone=UTC"],
        },
    )
    gateway = Gateway(Backoff(0.1, 0.5), private=True)
    await gateway.start()
    await gateway.settled(30)
    batcher = EventBatcher("bench calls", isolated=True)
    recorder = CallRecorder(batcher)
    real = server_module.authorize
    subject = Subject(user="alice", teams=("ops",))
    granted = {}

    async def bypass(
        recorder: Any, session: Any, mcp_id: str, tool: str, annotations: Any, *thread: Any
    ) -> Decision:
        # The no-policy path: a constant grant, nothing evaluated.
        key = (mcp_id, tool)
        if key not in granted:
            granted[key] = Decision(subject, f"{mcp_id}/{tool}", "read", True, "bypass", [], [])
        return granted[key]

    def session_of(ctx: Any) -> Any:
        parent = (ctx.meta or {}).get(PARENT_META_KEY)
        return recorder.session(
            ("bench", parent or ""), via="bench", client={}, subject=subject, parent_id=parent
        )

    server = server_module.build_server(LocalRouter(gateway), recorder, session_of)
    # Two ancestor threads, recorded: the child's chain is resolved once per session.
    parents = []
    async with Client(server) as client:  # type: ignore[arg-type]
        meta = None
        for _ in range(2):
            result = await client.call_tool("time__get_current_time", {"timezone": "UTC"}, meta=meta)
            parents.append(result.meta["mc/thread_id"])
            meta = {PARENT_META_KEY: parents[-1]}
    await batcher.flush()

    async def run(mode: str) -> list[float]:
        meta = None
        if mode == "bypass":
            server_module.authorize = bypass
        else:
            server_module.authorize = real
            rules = 50 if mode.startswith("50") else 0
            await sync_to_async(PolicyRule.objects.all().delete)()
            await sync_to_async(PolicyRule.objects.bulk_create)(
                [
                    PolicyRule(subject_kind="user", subject_value=f"u{i}", server=f"s{i}*", effect="deny")
                    for i in range(rules)
                ]
            )
            policies.invalidate()
            if rules:
                meta = {PARENT_META_KEY: parents[-1]}
        latencies = []
        async with Client(server) as client:  # type: ignore[arg-type]
            for _ in range(WARMUP):
                await client.call_tool("time__get_current_time", {"timezone": "UTC"}, meta=meta)
            for _ in range(CALLS):
                start = time.perf_counter()
                result = await client.call_tool("time__get_current_time", {"timezone": "UTC"}, meta=meta)
                latencies.append((time.perf_counter() - start) * 1000)
                assert not result.is_error, result
        return latencies

    modes = ("bypass", "0 rules", "50 rules, child of 2")
    samples: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for _ in range(ROUNDS):
            for mode in modes:
                samples[mode] += await run(mode)
    finally:
        server_module.authorize = real
        await batcher.close()
        await gateway.stop()
    out = {}
    for mode, values in samples.items():
        values.sort()
        out[mode] = {
            "p50": statistics.median(values),
            "p99": values[int(0.99 * (len(values) - 1))],
            "mean": statistics.fmean(values),
        }
    return out


def main() -> None:
    call_command("migrate", verbosity=0)
    print("decision alone (cached rules), µs per call:")
    for name, us in micro().items():
        print(f"  {name:<28} {us:8.1f} µs")
    figures = asyncio.run(end_to_end())
    base = figures["bypass"]
    print(f"routed get_current_time, {ROUNDS} x {CALLS} calls per mode, ms:")
    for mode, f in figures.items():
        print(
            f"  {mode:<22} p50 {f['p50']:6.3f}  p99 {f['p99']:6.3f}  mean {f['mean']:6.3f}"
            f"  (p50 {f['p50'] - base['p50']:+.3f}, mean {f['mean'] - base['mean']:+.3f} vs bypass)"
        )


if __name__ == "__main__":
    main()
