"""`manage.py serve`: the web process(es), daphne, configured from mission_control.yml.

Host and port come from `server`, keepalive pings from `websocket`. With
`server.workers` > 1 the command binds the listening socket itself and starts that
many daphne processes sharing it (the kernel spreads connections over them); they
meet through PostgreSQL and the Redis channel layer, so more than one needs REDIS_URL.
If one worker exits, the others are stopped and the command exits with its code, for
the process manager to restart. When the demo is on and seeded (`seed_demo`), the
demo agent runs beside it as a child process (`run_demo_agent`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from missioncontrol.metrics import MULTIPROCESS_ENV

APPLICATION = "missioncontrol.asgi:application"


def daphne_options() -> list[str]:
    return [
        "--ping-interval",
        str(settings.WS_PING_INTERVAL),
        "--ping-timeout",
        str(settings.WS_PING_TIMEOUT),
    ]


def start_demo_agent(host: str, port: int) -> subprocess.Popen[bytes] | None:
    """The demo agent (`run_demo_agent`) beside the web process, if the demo is on and seeded."""
    from django.db import DatabaseError

    from missioncontrol.demo.seed import is_seeded

    if not settings.DEMO:
        return None
    try:
        if not is_seeded():
            return None
    except DatabaseError:  # serve anyway: /health says what is down
        return None
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://[{local}]:{port}" if ":" in local else f"http://{local}:{port}"
    manage = Path(settings.BASE_DIR) / "manage.py"
    return subprocess.Popen([sys.executable, str(manage), "run_demo_agent", "--url", url])


def metrics_environment() -> dict[str, str]:
    """The workers' environment: one PROMETHEUS_MULTIPROC_DIR, emptied, so /metrics sums them all."""
    env = dict(os.environ)
    if not env.get(MULTIPROCESS_ENV):
        directory = settings.DATA_DIR / "prometheus"
        shutil.rmtree(directory, ignore_errors=True)  # values of earlier runs' processes
        directory.mkdir(parents=True)
        env[MULTIPROCESS_ENV] = str(directory)
    return env


class Command(BaseCommand):
    help = "Serve Mission Control (HTTP and WebSocket) with daphne; see server.workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="default: server.host")
        parser.add_argument("--port", type=int, default=None, help="default: server.port")
        parser.add_argument("--workers", type=int, default=None, help="default: server.workers")

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"] or settings.SERVER_HOST
        port = options["port"] if options["port"] is not None else settings.SERVER_PORT
        workers = options["workers"] if options["workers"] is not None else settings.SERVER_WORKERS
        if workers < 1:
            raise CommandError(f"workers: expected an integer >= 1, got {workers}")
        if workers > 1 and not settings.REDIS_URL:
            raise CommandError(
                f"server.workers: {workers} needs REDIS_URL; without it the channel layer is "
                "in-memory and cannot span processes (use 1 worker)"
            )
        demo = start_demo_agent(host, port)
        try:
            if workers == 1:
                from daphne.cli import CommandLineInterface

                CommandLineInterface().run(["-b", host, "-p", str(port), *daphne_options(), APPLICATION])
                return
            sys.exit(self.run_workers(host, port, workers))
        finally:
            if demo is not None and demo.poll() is None:
                demo.terminate()
                try:
                    demo.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    demo.kill()

    def run_workers(self, host: str, port: int, workers: int) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1024)
        listener.set_inheritable(True)
        fd = listener.fileno()
        command = [sys.executable, "-m", "daphne", "--fd", str(fd), *daphne_options(), APPLICATION]
        env = metrics_environment()
        children = [subprocess.Popen(command, pass_fds=(fd,), env=env) for _ in range(workers)]
        self.stdout.write(f"serving on {host}:{port} with {workers} daphne workers", ending="\n")
        self.stdout.flush()

        def stop(signum: int, frame: Any) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            code = self.wait_first(children)
        finally:
            stop(signal.SIGTERM, None)
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
            listener.close()
        return code

    @staticmethod
    def wait_first(children: list[subprocess.Popen[bytes]]) -> int:
        """Block until one worker exits; its exit code."""
        while True:
            pid, status = os.wait()
            for child in children:
                if child.pid == pid:
                    child.returncode = os.waitstatus_to_exitcode(status)
                    return child.returncode
