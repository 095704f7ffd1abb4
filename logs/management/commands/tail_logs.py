"""manage.py tail_logs: read the servers' log files into log entries (logs/tailing.py).

The gateway (run_gateway, or the embedded one in the web process) already tails every
configured file every `mcps.log_poll_interval` seconds; this command is for a
deployment without a gateway, or a one-shot catch-up (`--once`). It resumes where the
last reader stopped, whoever that was: lines are stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from logs.tailing import Tailer, follow


class Command(BaseCommand):
    help = "Tail the servers' configured log files into log entries."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="read what is there now, then exit")
        parser.add_argument("--server", help="only this server's files")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between polls (default: mcps.log_poll_interval)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tailer = Tailer(only=options["server"])
        if options["once"]:
            outcome = tailer.poll()
            tailer.close()
            for outbox in outcome.outboxes:
                async_to_sync(outbox.send)()
            self.stdout.write(f"{outcome.read} line(s) read, {outcome.stored} new log entr(ies) stored")
            return
        interval = options["interval"] or settings.MC.mcps.log_poll_interval or 0.5
        asyncio.run(self._follow(tailer, interval))

    async def _follow(self, tailer: Tailer, interval: float) -> None:
        task = asyncio.get_running_loop().create_task(follow(tailer, interval))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        self.stdout.write(f"tailing log files every {interval:g} s")
        self.stdout.flush()
        with contextlib.suppress(asyncio.CancelledError):
            await task
