"""Real MCP servers for the tests: registered, held by a gateway, and the REST API over it.

PyPI mcp-server-time and mcp-server-git (stdio, the 2026-07-28 stateless protocol),
npm @modelcontextprotocol/server-everything (stdio, and its Streamable HTTP mode; the
2025-11-25 handshake protocol).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from asgiref.sync import sync_to_async
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcps.gateway.connection import Backoff
from mcps.gateway.service import Gateway
from mcps.models import MCPServer
from tests.processes import ROOT

EVERYTHING = ROOT / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


async def everything_over_http(port: int) -> subprocess.Popen[bytes]:
    """server-everything in its Streamable HTTP mode on `port` (/mcp), once it listens."""
    proc = subprocess.Popen(
        ["node", str(EVERYTHING), "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=0.5)
            break
        except httpx.HTTPError:
            await asyncio.sleep(0.1)
    return proc


def register(server_id: str, **fields: Any) -> None:
    MCPServer.objects.update_or_create(id=server_id, defaults={"name": server_id, "source": "api", **fields})


async def until(predicate: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await sync_to_async(predicate)():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def status(server_id: str) -> str:
    return MCPServer.objects.get(id=server_id).status


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@e"
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README").write_text("hello\n")
    subprocess.run(["git", "-C", str(path), "add", "README"], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "first"], check=True, env=env)
    return path


@pytest.fixture
async def gateway(repo: Path) -> AsyncIterator[Gateway]:
    await sync_to_async(register)(
        "time",
        transport="stdio",
        command=sys.executable,
        args=["-m", "mcp_server_time", "--local-timezone=UTC"],
    )
    await sync_to_async(register)(
        "git",
        transport="stdio",
        command=sys.executable,
        args=["-m", "mcp_server_git", "--repository", str(repo)],
    )
    await sync_to_async(register)(
        "everything", transport="stdio", command="node", args=[str(EVERYTHING), "stdio"]
    )
    gw = Gateway(Backoff(0.1, 0.5))
    await gw.start()
    try:
        for server_id in ("time", "git", "everything"):
            await until(lambda s=server_id: status(s) == "connected", what=f"{server_id} to connect")
        yield gw
    finally:
        await gw.stop()
        # Calls made through REST, the WebSocket or /mcp are stored by the endpoint's
        # batcher a moment later: let them land before the test's database is flushed.
        from mcps.endpoint.http import mcp_endpoint

        await mcp_endpoint.batcher.flush()


def superuser_token() -> str:
    """An API token of the superuser: what `api()` carries unless told otherwise."""
    from tests.conftest import api_token, superuser_now

    return api_token(superuser_now())


async def api(method: str, path: str, body: Any = None, *, token: str | None = None) -> httpx.Response:
    """A request through the ASGI application with `Authorization: Bearer <token>`
    (a superuser's API token by default; "" for none)."""
    from missioncontrol.asgi import application

    if token is None:
        token = await sync_to_async(superuser_token)()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
        return await client.request(method, path, json=body, headers=headers)


@asynccontextmanager
async def mcp_client(
    token: str | None = None, mode: str = "auto", url: str | None = None
) -> AsyncIterator[Client]:
    """An `mcp` SDK client of /mcp with `Authorization: Bearer <token>` (a superuser's
    API token by default; "" for none): in this process through the ASGI application,
    or at `url` (a server started by the test).

    In process, it waits at the end for the endpoint's recording (and ends the process
    that stores it), which would otherwise land after the test's database is gone.
    """
    from mcps.endpoint.http import mcp_endpoint
    from missioncontrol.asgi import application

    if token is None:
        token = await sync_to_async(superuser_token)()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx2.Timeout(30, read=300)
    if url is None:
        transport = httpx2.ASGITransport(app=application)
        http = httpx2.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers, timeout=timeout
        )
    else:
        http = httpx2.AsyncClient(headers=headers, timeout=timeout)
    async with http:
        try:
            async with Client(
                streamable_http_client(f"{url or 'http://testserver'}/mcp", http_client=http), mode=mode
            ) as client:  # type: ignore[arg-type]
                yield client
        finally:
            if url is None:
                # Store what it recorded and end its store process while this loop runs.
                await mcp_endpoint.batcher.close()


KIWI_DEFAULTS = {"*": {"project_path": "/srv/project"}, "execute": {"parameters": {"dry_run": True}}}


@pytest.fixture
async def kiwi_gateway() -> AsyncIterator[Gateway]:
    """A gateway holding the Kiwi-shaped server (tests/servers/kiwi_echo.py) with default arguments:
    `project_path` for every tool, and `parameters` for execute."""
    await sync_to_async(register)(
        "kiwi",
        transport="stdio",
        command=sys.executable,
        args=["-m", "tests.servers.kiwi_echo"],
        cwd=str(ROOT),
        default_arguments=KIWI_DEFAULTS,
    )
    gw = Gateway(Backoff(0.1, 0.5))
    await gw.start()
    try:
        await until(lambda: status("kiwi") == "connected", what="kiwi to connect")
        yield gw
    finally:
        await gw.stop()
        from mcps.endpoint.http import mcp_endpoint

        await mcp_endpoint.batcher.flush()
