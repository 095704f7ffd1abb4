"""`manage.py run_demo_agent`: the live demo agent, a round every MC_DEMO_INTERVAL seconds.

`serve` starts it when the demo is on and seeded. It calls mcp-server-time through
Mission Control's /mcp and reports through the SDK to the ingest endpoint, like any
agent would; SIGTERM ends it after flushing what it has to report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from missioncontrol.demo.agent import AGENT_ID, run_round, tools_via_endpoint
from missioncontrol.demo.seed import demo_credential, is_seeded, rotate_demo_key

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the demo agent against a served Mission Control (started by `serve`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default=None, help="default: http://server.host:server.port")
        parser.add_argument("--interval", type=float, default=None, help="seconds between rounds")
        parser.add_argument(
            "--rounds", type=int, default=0, help="stop after this many (0: run until stopped)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from missioncontrol_sdk import MissionControl, MissionControlHandler

        if not is_seeded():
            raise CommandError("the demo is not seeded; run `manage.py seed_demo` first")
        url = options["url"] or f"http://{settings.SERVER_HOST}:{settings.SERVER_PORT}"
        interval = options["interval"] if options["interval"] is not None else settings.DEMO_INTERVAL
        raw_key = rotate_demo_key()
        headers = demo_credential()  # read here: the loop below has no database access
        close_old_connections()
        self._wait_healthy(url)
        mc = MissionControl(url, raw_key, mcp_id=AGENT_ID)
        agent_logger = logging.getLogger("missioncontrol.demo.agent")
        agent_logger.addHandler(MissionControlHandler(mc, service=AGENT_ID))
        agent_logger.setLevel(logging.INFO)
        try:
            asyncio.run(self._run(url, mc, interval, options["rounds"], headers))
        finally:
            mc.close(timeout=15)

    @staticmethod
    def _wait_healthy(url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise CommandError(f"no healthy Mission Control at {url}")

    async def _run(self, url: str, mc: Any, interval: float, rounds: int, headers: dict[str, str]) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        number = 0
        while not stop.is_set() and (rounds == 0 or number < rounds):
            try:
                async with tools_via_endpoint(url, headers) as tools:
                    while not stop.is_set() and (rounds == 0 or number < rounds):
                        await run_round(tools, mc, number)
                        number += 1
                        await _sleep_unless(stop, interval)
            except Exception:  # the server restarting, say: try again next interval
                logger.warning("demo agent: round %d failed; retrying", number, exc_info=True)
                number += 1
                await _sleep_unless(stop, interval)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
