"""manage.py mcp_proxy: Mission Control's aggregated MCP server over stdio.

For MCP hosts that spawn a command rather than connect to a URL, e.g. in Claude
Desktop's config: {"command": "/path/to/.venv/bin/python", "args": ["/path/to/manage.py", "mcp_proxy"]}.

Like any host, it holds its own sessions to the managed servers (no hop to another
process on a call), and it records every call exactly as /mcp does: the connection is
one session, each call a thread of its own on the server it called. Server status and health stay with the
shared gateway. stdout carries the protocol; Mission Control's own logs go to stderr.

It authenticates once, at start, with an API token (or a JWT access token) from
`--token` or the environment variable MC_TOKEN: the calls are recorded under the
token's owner and team, and a viewer's token may list tools but not call them.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import anyio
from django.core.management.base import BaseCommand, CommandError

from mcps.endpoint.http import audit_called, audit_denied, client_of
from mcps.endpoint.recorder import CallRecorder, Session
from mcps.endpoint.router import LocalRouter
from mcps.endpoint.server import build_server
from mcps.endpoint.stdio import loop_stdio_server
from mcps.gateway.service import Gateway
from missioncontrol.authentication import Principal, principal_for_bearer
from missioncontrol.ingest.batcher import EventBatcher
from missioncontrol.runtime import tune_for_latency


class Command(BaseCommand):
    help = "Serve Mission Control's aggregated MCP server (every managed server's tools) over stdio."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--token",
            default=os.environ.get("MC_TOKEN", ""),
            help="An API token (manage.py create_api_token) or JWT access token (default: $MC_TOKEN).",
        )
        parser.add_argument(
            "--connect-timeout",
            type=float,
            default=15.0,
            help="Seconds to wait for the servers to connect before answering the host.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["token"]:
            raise CommandError("give an API token with --token or the MC_TOKEN environment variable")
        principal = principal_for_bearer(options["token"], via="mcp_proxy")
        if principal is None:
            raise CommandError("the token is not valid: unknown, revoked or expired")
        refusal = principal.refusal()
        if refusal is not None:
            raise CommandError(refusal)
        tune_for_latency()
        anyio.run(serve, principal, options["connect_timeout"])


async def serve(principal: Principal, connect_timeout: float) -> None:
    gateway = Gateway(private=True)
    # Stored by a child process, so recording never holds the GIL the next call needs.
    batcher = EventBatcher("mcp_proxy calls", isolated=True)
    recorder = CallRecorder(batcher, idle_seconds=float("inf"))
    key = ("stdio", str(os.getpid()))
    subject = principal.subject()  # one caller for the whole connection

    def session_of(ctx: Any) -> Session:
        return recorder.session(
            key,
            via="mcp_proxy",
            principal=principal.name,
            client=client_of(ctx),
            subject=subject,
            team_id=principal.team_id,
            may_call_tools=principal.may_call_tools,
            user_id=principal.user_id,
        )

    server = build_server(
        LocalRouter(gateway),
        recorder,
        session_of,
        on_denied=partial(audit_denied, batcher),
        on_called=partial(audit_called, batcher),
    )
    await gateway.start()
    try:
        await batcher.warm()  # while the servers connect
        await gateway.settled(connect_timeout)
        async with loop_stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        # Store first: a host that closed our stdin terminates us a moment later (the
        # SDK's stdio client waits two seconds), and stopping the servers can take longer.
        recorder.end_all()
        await batcher.close()
        await gateway.stop()
