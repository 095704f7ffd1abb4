"""Gateway benchmark (`make bench`): the latency Mission Control adds to an agent's tool call.

`get_current_time` of mcp-server-time, 500 sequential calls after 50 warm-up calls, by
an `mcp` SDK client, in the same run:
- direct: the client spawns mcp-server-time itself (stdio), the baseline;
- /mcp on the embedded default (`make run`: one process, SQLite, the gateway inside);
- /mcp with the gateway in its own process (`run_gateway`), web on PostgreSQL + Redis;
- mcp_proxy: the host spawns `manage.py mcp_proxy` (stdio), which holds the server.
Every routed call is also recorded (thread steps, permission check), as in production.
Reports p50 and p99 of each and the added latency against direct.
Environment: BENCH_CALLS (default 500), BENCH_PG, BENCH_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import httpx2
import psycopg
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import clean_env, create_token, daphne, free_port  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "500"))
WARMUP = 50
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone=UTC"]
ARGUMENTS = {"timezone": "UTC"}


async def timed(client: Client, tool: str) -> list[float]:
    for _ in range(WARMUP):
        await client.call_tool(tool, ARGUMENTS)
    latencies = []
    for _ in range(CALLS):
        start = time.perf_counter()
        result = await client.call_tool(tool, ARGUMENTS)
        latencies.append((time.perf_counter() - start) * 1000)
        assert not result.is_error, result
    return sorted(latencies)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def direct() -> list[float]:
    params = StdioServerParameters(command=TIME_SERVER[0], args=TIME_SERVER[1:])
    async with Client(stdio_client(params)) as client:
        return await timed(client, "get_current_time")


async def over_http(url: str, token: str, mode: str = "auto") -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as client,  # type: ignore[arg-type]
    ):
        return await timed(client, "time__get_current_time")


async def proxy(env: dict[str, str]) -> list[float]:
    params = StdioServerParameters(
        command=sys.executable, args=["manage.py", "mcp_proxy"], env=env, cwd=str(ROOT)
    )
    async with Client(stdio_client(params)) as client:
        return await timed(client, "time__get_current_time")


def config(directory: Path) -> str:
    path = directory / "mission_control.yml"
    path.write_text(
        json.dumps({"mcps": {"servers": {"time": {"command": TIME_SERVER[0], "args": TIME_SERVER[1:]}}}})
    )
    return str(path)


def wait_connected(url: str, token: str, timeout: float = 60) -> None:
    """Until a call through this server's gateway succeeds."""
    deadline = time.monotonic() + timeout
    call = f"{url}/api/mcps/time/tools/get_current_time/call"
    auth = {"Authorization": f"Bearer {token}"}
    while httpx.post(call, json={"arguments": ARGUMENTS}, headers=auth, timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError("mcp-server-time did not connect")
        time.sleep(0.2)


def pg_database() -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS mc_bench_gateway WITH (FORCE)")
        conn.execute("CREATE DATABASE mc_bench_gateway")
    return f"{PG}/mc_bench_gateway"


def migrate(env: dict[str, str]) -> None:
    """Migrate, then issue an admin's API token into env["MC_TOKEN"] (what mcp_proxy reads)."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    env["MC_TOKEN"] = create_token(env)


def with_server(
    env: dict[str, str], log: Path, measure: Callable[[str, str], Awaitable[list[float]]]
) -> list[float]:
    server = daphne(free_port(), env, log)
    try:
        server.wait_healthy()
        wait_connected(server.url, env["MC_TOKEN"])
        return asyncio.run(measure(server.url, env["MC_TOKEN"]))
    finally:
        server.stop()


def split_deployment(directory: Path) -> list[float]:
    env = clean_env(
        DATABASE_URL=pg_database(),
        REDIS_URL=REDIS,
        SECRET_KEY="bench",
        MC_CONFIG=config(directory),
        MC_CHANNEL_PREFIX=f"mcbenchgw{os.getpid()}",
    )
    migrate(env)
    gateway = subprocess.Popen(
        [sys.executable, "manage.py", "run_gateway"],
        cwd=ROOT,
        env=env,
        stdout=(directory / "gateway.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        return with_server(env, directory / "split-web.log", over_http)
    finally:
        gateway.terminate()
        gateway.wait(30)


def main() -> None:
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="mc-bench-gw-") as tmp:
        directory = Path(tmp)
        embedded = clean_env(MC_DATA_DIR=str(directory / "data"), MC_CONFIG=config(directory))
        migrate(embedded)
        rows["direct (SDK client -> stdio server)"] = asyncio.run(direct())
        rows["/mcp, embedded default (one process)"] = with_server(embedded, directory / "web.log", over_http)
        rows["/mcp, handshake-era client, embedded"] = with_server(
            embedded, directory / "web2.log", lambda url, token: over_http(url, token, "legacy")
        )
        rows["/mcp, web + run_gateway (PostgreSQL, Redis)"] = split_deployment(directory)
        rows["mcp_proxy (stdio)"] = asyncio.run(proxy(embedded))
        rows["direct, again (drift check)"] = asyncio.run(direct())

    base = rows["direct (SDK client -> stdio server)"]
    b50, b99 = pct(base, 0.5), pct(base, 0.99)
    results = []
    print(f"-- gateway: get_current_time, {CALLS} calls after {WARMUP} warm-up, sequential")
    for name, values in rows.items():
        p50, p99 = pct(values, 0.5), pct(values, 0.99)
        results.append(
            {
                "path": name,
                "p50_ms": round(p50, 2),
                "p99_ms": round(p99, 2),
                "added_p50_ms": round(p50 - b50, 2),
                "added_p99_ms": round(p99 - b99, 2),
            }
        )
        print(
            f"{name:48s} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  added p50 {p50 - b50:+6.2f} ms  "
            f"p99 {p99 - b99:+6.2f} ms",
            flush=True,
        )
    print("targets: /mcp added p50 <= 2.5 ms and p99 <= 10 ms; mcp_proxy added p50 <= 1 ms")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "gateway.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
