"""manage.py mcp_proxy: Mission Control's aggregated MCP server over stdio.

For MCP hosts that spawn a command rather than connect to a URL, e.g. in Claude
Desktop's config: {"command": "/path/to/.venv/bin/python", "args": ["/path/to/manage.py", "mcp_proxy"]}.

Like any host, it holds its own sessions to the managed servers (no hop to another
process on a call), and it records every call exactly as /mcp does: the connection is
one thread on the `mission-control` server. Server status and health stay with the
shared gateway. stdout carries the protocol; Mission Control's own logs go to stderr.
"""

from __future__ import annotations

import os
from typing import Any

import anyio
from django.core.management.base import BaseCommand

from audit.policy import Subject
from mcps.endpoint.gate import parent_of
from mcps.endpoint.http import client_of
from mcps.endpoint.recorder import CallRecorder, Session
from mcps.endpoint.router import LocalRouter
from mcps.endpoint.server import build_server
from mcps.endpoint.stdio import loop_stdio_server
from mcps.gateway.service import Gateway
from missioncontrol.ingest.batcher import EventBatcher
from missioncontrol.runtime import tune_for_latency


class Command(BaseCommand):
    help = "Serve Mission Control's aggregated MCP server (every managed server's tools) over stdio."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--principal",
            default=os.environ.get("USER", "local"),
            help="Who the calls are recorded as and policies match as user (default: $USER).",
        )
        parser.add_argument(
            "--team",
            action="append",
            default=[],
            help="A team the principal belongs to, for team policies (repeatable).",
        )
        parser.add_argument(
            "--connect-timeout",
            type=float,
            default=15.0,
            help="Seconds to wait for the servers to connect before answering the host.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tune_for_latency()
        subject = Subject(user=options["principal"] or None, teams=tuple(options["team"]))
        anyio.run(serve, subject, options["connect_timeout"])


async def serve(subject: Subject, connect_timeout: float) -> None:
    gateway = Gateway(private=True)
    # Stored by a child process, so recording never holds the GIL the next call needs.
    batcher = EventBatcher("mcp_proxy calls", isolated=True)
    recorder = CallRecorder(batcher, idle_seconds=float("inf"))
    key = ("stdio", str(os.getpid()))

    def session_of(ctx: Any) -> Session:
        parent = parent_of(ctx.meta)
        return recorder.session(
            (*key, parent or ""), via="mcp_proxy", client=client_of(ctx), subject=subject, parent_id=parent
        )

    server = build_server(LocalRouter(gateway), recorder, session_of)
    await gateway.start()
    try:
        await gateway.settled(connect_timeout)
        async with loop_stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        # Store first: a host that closed our stdin terminates us a moment later (the
        # SDK's stdio client waits two seconds), and stopping the servers can take longer.
        recorder.end_all()
        await batcher.close()
        await gateway.stop()
