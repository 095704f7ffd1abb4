"""`manage.py serve`: the web process(es), daphne, configured from mission_control.yml.

Host and port come from `server`, keepalive pings from `websocket`. With
`server.workers` > 1 the command binds the listening socket itself and starts that
many daphne processes sharing it (the kernel spreads connections over them); they
meet through PostgreSQL and the Redis channel layer, so more than one needs REDIS_URL.

It supervises them as gunicorn's arbiter does: a worker that dies (a crash, an OOM
kill, `kill -9`) is logged and replaced while its siblings keep serving; a worker that
dies again soon after it started is replaced after a backoff that doubles (1 s up to
30 s) until one lives a minute; each replacement counts in /metrics
(`mission_control_web_worker_restarts_total`). SIGTERM or SIGINT stops them all and
waits for each to drain. When the demo is on and seeded (`seed_demo`), the demo agent
runs beside it as a child process (`run_demo_agent`).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from missioncontrol.metrics import MULTIPROCESS_ENV, REPLACEMENT_ENV

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
    manage = Path(settings.BASE_DIR) / "manage.py"
    return subprocess.Popen([sys.executable, str(manage), "run_demo_agent", "--url", browser_url(host, port)])


def browser_url(host: str, port: int) -> str:
    """The address to open in a browser (a wildcard bind is reached on the loopback)."""
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{local}]:{port}" if ":" in local else f"http://{local}:{port}"


def first_user_hint() -> str | None:
    """The command that makes the first user, when the database has none yet."""
    from django.contrib.auth import get_user_model
    from django.db import DatabaseError, connection

    try:
        if get_user_model().objects.exists():
            return None
    except DatabaseError:  # not migrated, or unreachable: /health says what is down
        return None
    finally:
        connection.close()
    manage = Path(settings.BASE_DIR) / "manage.py"
    python = Path(sys.executable)
    shown = os.path.relpath(python) if python.is_relative_to(Path.cwd()) else str(python)
    return f"  {shown} {os.path.relpath(manage)} createsuperuser"


def announce_when_serving(host: str, port: int, out: Any, timeout: float = 120.0) -> threading.Thread:
    """Once the server answers HTTP (any answer to GET /health/live), print the address to
    open and, on a database with no user yet, the command that makes the first one."""
    hint = first_user_hint()
    target = ("127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host, port)

    def wait_then_print() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = http.client.HTTPConnection(*target, timeout=2)
            try:
                probe.request("GET", "/health/live")
                probe.getresponse().read()
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
                continue
            finally:
                probe.close()
            lines = [f"Mission Control is serving on {browser_url(host, port)}"]
            if hint:
                lines += ["No user yet: make the first one with", hint]
            out.write("\n".join(lines), ending="\n")
            out.flush()
            return

    thread = threading.Thread(target=wait_then_print, name="serve-announce", daemon=True)
    thread.start()
    return thread


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
        announce_when_serving(host, port, self.stdout)
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
        arbiter = Arbiter(command, fd, metrics_environment(), workers, self.stdout)
        self.stdout.write(f"serving on {host}:{port} with {workers} daphne workers", ending="\n")
        self.stdout.flush()
        try:
            return arbiter.run()
        finally:
            listener.close()


class Arbiter:
    """Keeps `count` daphne workers alive on one inherited socket until told to stop."""

    FIRST_BACKOFF = 1.0
    MAX_BACKOFF = 30.0
    STEADY_AFTER = 60.0  # a worker that lived this long resets the backoff

    def __init__(self, command: list[str], fd: int, env: dict[str, str], count: int, out: Any) -> None:
        self.command, self.fd, self.env, self.count, self.out = command, fd, env, count, out
        self.workers: dict[int, tuple[subprocess.Popen[bytes], float]] = {}  # pid: (process, started)
        self.backoff = 0.0
        self.stopping = False
        self.wakeup = threading.Event()

    def spawn(self, replacement: bool) -> None:
        env = {**self.env, REPLACEMENT_ENV: "1"} if replacement else self.env
        process = subprocess.Popen(self.command, pass_fds=(self.fd,), env=env)
        self.workers[process.pid] = (process, time.monotonic())

    def stop(self, signum: int, frame: Any) -> None:
        self.stopping = True
        for process, _ in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        self.wakeup.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for _ in range(self.count):
            self.spawn(replacement=False)
        try:
            while not self.stopping:
                self.reap()
                self.wakeup.wait(0.2)
        finally:
            self.stop(signal.SIGTERM, None)
            for process, _ in self.workers.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        return 0

    def reap(self) -> None:
        """Replace each worker that exited (after the backoff, if it died young)."""
        for pid, (process, started) in list(self.workers.items()):
            code = process.poll()
            if code is None or self.stopping:
                continue
            del self.workers[pid]
            lived = time.monotonic() - started
            self.backoff = (
                0.0
                if lived >= self.STEADY_AFTER
                else min(self.MAX_BACKOFF, self.backoff * 2 or self.FIRST_BACKOFF)
            )
            self.out.write(
                f"worker {pid} exited with code {code} after {lived:.0f} s; "
                f"starting a replacement in {self.backoff:g} s",
                ending="\n",
            )
            self.out.flush()
            if self.backoff and self.wakeup.wait(self.backoff):
                return  # told to stop while backing off
            self.spawn(replacement=True)
