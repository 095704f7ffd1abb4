"""Gateway benchmark (`make bench`): the latency Mission Control adds to an agent's tool call.

`get_current_time` of mcp-server-time, 500 sequential calls per path after 50 warm-up
calls, by an `mcp` SDK client, every path open at once and measured in alternated blocks
(10 rounds of 50 calls each), so the machine's drift falls on all alike. A path waits
a couple of seconds between its blocks (the other paths' turns): the first call of each
block, after that idle time, is measured apart (it finds every process of the path, the
client's included, with cold caches; an agent that thinks between its calls sees that
latency), and the 500 are the calls that follow it:
- direct: the client spawns mcp-server-time itself (stdio), the baseline;
- /mcp on the embedded default (`make run`: one process, SQLite, the gateway inside);
- /mcp with the gateway in its own process (`run_gateway`), web on PostgreSQL + Redis;
- mcp_proxy: the host spawns `manage.py mcp_proxy` (stdio), which holds the server;
- the floor of each: a bare forwarder on the SDK (bench/forwarder.py) on the same
  transport, which forwards and does nothing else (over stdio; under daphne).
Every routed call is also recorded (thread steps, permission check), as in production.
Reports p50 and p99 of each, the added latency against direct, what Mission Control's
own work adds over its floor, and the first calls after idle time (p50 and the slowest).
Environment: BENCH_CALLS (default 500), BENCH_PG, BENCH_REDIS_URL, BENCH_GATEWAY_PATHS (some of
floor-http,embedded,legacy,split,floor-stdio,proxy; direct is always measured).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass
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
# Which paths to measure (direct, the baseline, always is): all by default.
PATHS = os.environ.get("BENCH_GATEWAY_PATHS", "floor-http,embedded,legacy,split,floor-stdio,proxy").split(",")
TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone=UTC"]
ARGUMENTS = {"timezone": "UTC"}
ROUNDS = 10  # blocks of CALLS / ROUNDS calls per path, alternated
PAUSE = 0.2  # seconds between blocks: the previous path's recording settles
ROUTED = "time__get_current_time"
DIRECT = "direct (SDK client -> stdio server)"
FLOOR_HTTP = "floor: bare SDK forwarder under daphne (HTTP)"
FLOOR_STDIO = "floor: bare SDK forwarder (stdio)"
EMBEDDED = "/mcp, embedded default (one process)"
LEGACY = "/mcp, handshake-era client, embedded"
SPLIT = "/mcp, web + run_gateway (PostgreSQL, Redis)"
PROXY = "mcp_proxy (stdio)"
FLOORS = {EMBEDDED: FLOOR_HTTP, LEGACY: FLOOR_HTTP, SPLIT: FLOOR_HTTP, PROXY: FLOOR_STDIO}


Opener = Callable[[AsyncExitStack], Awaitable[Client]]


@dataclass
class Measured:
    latencies: dict[str, list[float]]  # the CALLS measured calls of each path, sorted
    resumed: dict[str, list[float]]  # the first call of each block, after idle time, sorted


async def measure(openers: dict[str, tuple[Opener, str]]) -> Measured:
    """Every path's client open at once; blocks of calls alternate between the paths.

    This shared 2-core machine drifts by a millisecond over a minute: each path takes
    its turn in every one of ROUNDS rounds, so a drift falls on all of them alike. A
    path's own background work (storing its calls) stays in its own block: each block
    ends with a pause for it to finish. Each block's first call, after its path sat idle
    through the other paths' blocks, is kept apart.
    """
    latencies: dict[str, list[float]] = {name: [] for name in openers}
    resumed: dict[str, list[float]] = {name: [] for name in openers}

    async def timed(client: Client, tool: str) -> float:
        start = time.perf_counter()
        result = await client.call_tool(tool, ARGUMENTS)
        assert not result.is_error, result
        return (time.perf_counter() - start) * 1000

    async with AsyncExitStack() as stack:
        clients = {name: (await opener(stack), tool) for name, (opener, tool) in openers.items()}
        for client, tool in clients.values():
            for _ in range(WARMUP):
                await client.call_tool(tool, ARGUMENTS)
        for _ in range(ROUNDS):
            for name, (client, tool) in clients.items():
                await asyncio.sleep(PAUSE)
                resumed[name].append(await timed(client, tool))
                for _ in range(CALLS // ROUNDS):
                    latencies[name].append(await timed(client, tool))
    return Measured(
        {name: sorted(values) for name, values in latencies.items()},
        {name: sorted(values) for name, values in resumed.items()},
    )


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def stdio(command: list[str], env: dict[str, str] | None = None) -> Opener:
    params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=str(ROOT))

    async def opener(stack: AsyncExitStack) -> Client:
        return await stack.enter_async_context(Client(stdio_client(params)))

    return opener


def http(url: str, token: str | None = None, mode: str = "auto") -> Opener:
    async def opener(stack: AsyncExitStack) -> Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300))
        await stack.enter_async_context(client)
        transport = streamable_http_client(f"{url}/mcp", http_client=client)  # type: ignore[arg-type]
        return await stack.enter_async_context(Client(transport, mode=mode))

    return opener


@contextmanager
def bare_daphne(directory: Path) -> Iterator[str]:
    """The bare forwarder under daphne; its URL."""
    port = free_port()
    env = clean_env(FORWARD_TO=json.dumps(TIME_SERVER), PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "bench.forwarder:app"]
    log = directory / "forwarder.log"
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:  # listening: any HTTP answer
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"the forwarder did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)


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


@contextmanager
def web(env: dict[str, str], log: Path) -> Iterator[str]:
    """A daphne web process of `env`, its gateway connected; its URL."""
    server = daphne(free_port(), env, log)
    try:
        server.wait_healthy()
        wait_connected(server.url, env["MC_TOKEN"])
        yield server.url
    finally:
        server.stop()


@contextmanager
def split_deployment(directory: Path) -> Iterator[tuple[str, str]]:
    """A web process and `run_gateway` on PostgreSQL and Redis; the web's URL and a token."""
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
        with web(env, directory / "split-web.log") as url:
            yield url, env["MC_TOKEN"]
    finally:
        gateway.terminate()
        gateway.wait(30)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mc-bench-gw-") as tmp, ExitStack() as servers:
        directory = Path(tmp)
        embedded = clean_env(MC_DATA_DIR=str(directory / "data"), MC_CONFIG=config(directory))
        migrate(embedded)
        token = embedded["MC_TOKEN"]
        openers: dict[str, tuple[Opener, str]] = {DIRECT: (stdio(TIME_SERVER), "get_current_time")}
        if "floor-http" in PATHS:
            url = servers.enter_context(bare_daphne(directory))
            openers[FLOOR_HTTP] = (http(url), "get_current_time")
        if "embedded" in PATHS or "legacy" in PATHS:
            url = servers.enter_context(web(embedded, directory / "web.log"))
            if "embedded" in PATHS:
                openers[EMBEDDED] = (http(url, token), ROUTED)
            if "legacy" in PATHS:
                openers[LEGACY] = (http(url, token, "legacy"), ROUTED)
        if "split" in PATHS:
            url, split_token = servers.enter_context(split_deployment(directory))
            openers[SPLIT] = (http(url, split_token), ROUTED)
        if "floor-stdio" in PATHS:
            forwarder = [sys.executable, "bench/forwarder.py", "stdio", "--", *TIME_SERVER]
            openers[FLOOR_STDIO] = (stdio(forwarder), "get_current_time")
        if "proxy" in PATHS:
            openers[PROXY] = (stdio([sys.executable, "manage.py", "mcp_proxy"], embedded), ROUTED)
        measured = asyncio.run(measure(openers))

    rows, resumed = measured.latencies, measured.resumed
    base = rows[DIRECT]
    b50, b99 = pct(base, 0.5), pct(base, 0.99)
    results = []
    print(
        f"-- gateway: get_current_time, {CALLS} sequential calls per path after {WARMUP} warm-up, "
        f"in {ROUNDS} alternated rounds"
    )
    for name, values in rows.items():
        p50, p99 = pct(values, 0.5), pct(values, 0.99)
        row = {
            "path": name,
            "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2),
            "added_p50_ms": round(p50 - b50, 2),
            "added_p99_ms": round(p99 - b99, 2),
        }
        line = (
            f"{name:48s} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  added p50 {p50 - b50:+6.2f} ms  "
            f"p99 {p99 - b99:+6.2f} ms"
        )
        if FLOORS.get(name) in rows:
            floor = rows[FLOORS[name]]
            own50, own99 = p50 - pct(floor, 0.5), p99 - pct(floor, 0.99)
            row.update(over_floor_p50_ms=round(own50, 2), over_floor_p99_ms=round(own99, 2))
            line += f"  over its floor p50 {own50:+6.2f} ms  p99 {own99:+6.2f} ms"
        results.append(row)
        print(line, flush=True)
    print("targets: /mcp added p50 <= 2.5 ms and p99 <= 10 ms; mcp_proxy added p50 <= 1 ms")
    print(f"-- the first call of each block, after the path sat idle ({ROUNDS} per path)")
    first_base = pct(resumed[DIRECT], 0.5)
    for row in results:
        first = resumed[row["path"]]
        p50, slowest = pct(first, 0.5), first[-1]
        row.update(after_idle_p50_ms=round(p50, 2), after_idle_max_ms=round(slowest, 2))
        added = p50 - first_base
        print(f"{row['path']:48s} p50 {p50:6.2f} ms  slowest {slowest:6.2f} ms  added p50 {added:+6.2f} ms")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "gateway.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
