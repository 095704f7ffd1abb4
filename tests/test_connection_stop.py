"""A stopped connection sends nothing more: the gateway stops a connection when its
server is disabled or removed, and a call arriving while the session is still closing
is refused as never sent (503), not forwarded."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from mcps.gateway.connection import Backoff, Connection, Spec, Unavailable


class Hooks:
    def __init__(self) -> None:
        self.statuses: list[str] = []

    async def status(self, server_id: str, status: str, error: str) -> None:
        self.statuses.append(status)

    async def connected(self, server_id: str, info: dict[str, Any], catalog: dict[str, list[Any]]) -> None:
        self.statuses.append("opened")

    async def catalog(self, server_id: str, catalog: dict[str, list[Any]]) -> None:
        self.statuses.append("catalog")

    async def log(self, server_id: str, level: str, logger_name: str, message: str, data: Any) -> None:
        self.statuses.append(f"log {level}")


async def test_a_call_right_after_stop_is_refused_as_never_sent() -> None:
    hooks = Hooks()
    spec = Spec(id="time", transport="stdio", command=sys.executable, args=("-m", "mcp_server_time"))
    connection = Connection(spec, hooks, Backoff(0.1, 0.5))
    running = asyncio.ensure_future(connection.run())
    try:
        for _ in range(300):
            if connection.client is not None:
                break
            await asyncio.sleep(0.1)
        assert connection.client is not None, hooks.statuses
        args = {"timezone": "UTC"}
        assert await connection.call_tool("get_current_time", args, 30)
        connection.stop()  # the session closes at the run loop's next turn
        with pytest.raises(Unavailable):
            await connection.call_tool("get_current_time", args, 30)
    finally:
        connection.stop()
        await asyncio.wait_for(running, 30)
    assert connection.client is None
