"""/mcp: the aggregated server over Streamable HTTP, for both protocol eras.

The SDK's session manager serves it. Its task group must be running (`run()`), and
daphne sends no lifespan events, so it starts on the first request, on the web
process's loop. Handshake-era clients get stateful sessions (`Mcp-Session-Id`);
2026-07-28 clients are served one exchange per request, as that protocol wants.

Until users and tokens exist (the authentication issue) /mcp is as open as the REST
API; bind the server to loopback (the default) or put it behind your proxy's auth.
"""

from __future__ import annotations

import asyncio
from typing import Any

import mcp_types as types
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from audit.policy import subject_of_scope
from mcps.endpoint.gate import parent_of
from mcps.endpoint.recorder import CallRecorder, Session
from mcps.endpoint.router import WebRouter
from mcps.endpoint.server import build_server
from missioncontrol.ingest.batcher import EventBatcher


def client_of(ctx: Any) -> dict[str, Any]:
    """The calling client's name and version: from its handshake, or the request's `_meta`."""
    params = ctx.session.client_params
    info: Any = params.client_info if params is not None else None
    if info is None and ctx.meta:
        info = ctx.meta.get(types.CLIENT_INFO_META_KEY)
    if info is None:
        return {}
    if not isinstance(info, dict):
        info = info.model_dump(mode="json", exclude_none=True)
    return {k: info[k] for k in ("name", "version") if k in info}


class MCPEndpoint:
    def __init__(self) -> None:
        # Stored by a child process: the web process's GIL stays with the calls.
        self.batcher = EventBatcher("mcp endpoint calls", isolated=True)
        self.recorder = CallRecorder(self.batcher)
        self.server = build_server(WebRouter(), self.recorder, self.session_of)
        self._manager: StreamableHTTPSessionManager | None = None
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def session_of(self, ctx: Any) -> Session:
        """The call's session: its subject from the authentication layer (the ASGI scope's
        `mc.subject`), its parent thread from the request's `_meta`."""
        request = ctx.request
        headers = request.headers if request is not None else {}
        client = client_of(ctx)
        subject = subject_of_scope(request.scope if request is not None else None)
        parent = parent_of(ctx.meta)
        session_id = headers.get("mcp-session-id")
        if session_id:
            key: tuple[str, ...] = ("http", session_id, parent or "")
        else:
            host = request.client.host if request is not None and request.client else ""
            who = subject.label
            key = ("http", who, client.get("name", ""), client.get("version", ""), host, parent or "")
        return self.recorder.session(key, via="/mcp", client=client, subject=subject, parent_id=parent)

    async def _run(self) -> None:
        manager = StreamableHTTPSessionManager(app=self.server)
        async with manager.run():  # entered and left in this one task, as anyio requires
            self._manager = manager
            assert self._ready is not None
            self._ready.set()
            await asyncio.Event().wait()

    async def _started(self) -> StreamableHTTPSessionManager:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first request, or a new loop (tests run one per test)
            self._loop, self._ready, self._manager = loop, None, None
        if self._ready is None:
            self._ready = asyncio.Event()
            self._task = loop.create_task(self._run())
        await self._ready.wait()
        assert self._manager is not None
        return self._manager

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        manager = await self._started()
        if scope["method"] == "DELETE":
            session_id = dict(scope["headers"]).get(b"mcp-session-id")
            if session_id:
                self.recorder.end_under(("http", session_id.decode("latin-1")))
        await manager.handle_request(scope, receive, send)

    async def shutdown(self) -> None:
        self.recorder.end_all()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.batcher.close()


mcp_endpoint = MCPEndpoint()
