"""manage.py run_gateway: the MCP gateway process (one per deployment).

Holds a session to every enabled managed server and serves the web processes'
requests over the Redis channel layer. On the embedded default the gateway runs inside
the web process instead, and this command is not needed.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mcps.gateway.service import Gateway
from missioncontrol.runtime import tune_for_latency


class Command(BaseCommand):
    help = "Run the MCP gateway: persistent sessions to every managed MCP server."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError(
                "run_gateway needs REDIS_URL: web processes reach the gateway over the Redis channel "
                "layer. Without Redis the gateway runs inside the web process (`make run`)."
            )
        tune_for_latency()
        asyncio.run(self.serve())

    async def serve(self) -> None:
        gateway = Gateway()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await gateway.start()
        self.stdout.write(f"gateway holding {len(gateway.connections)} server(s)")
        self.stdout.flush()
        await stop.wait()
        await gateway.stop()
