"""Where the notification tests' messages land: a webhook and an SMTP server on loopback.

Both run in the test process on a free port, so Apprise sends to them for real
(`json://127.0.0.1:PORT/...`, `mailto://127.0.0.1:PORT?...`) and nothing leaves the machine.
The fixtures `hook` and `inbox` (a pytest plugin of tests/conftest.py) start one each.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.processes import free_port


class Webhook:
    """An HTTP server recording each JSON POST; `fail(n)` answers the next n with a 500."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failures = 0
        self.delay = 0.0
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(hook.delay)
                with hook._lock:
                    failing = hook.failures > 0
                    hook.failures -= 1 if failing else 0
                    if not failing:
                        hook.received.append({"path": self.path, **json.loads(body or b"{}")})
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def fail(self, times: int) -> None:
        with self._lock:
            self.failures = times

    def titles(self, path: str | None = None) -> list[str]:
        return [m["title"] for m in self.received if path is None or m["path"] == path]

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} messages arrived: {self.received}")
            time.sleep(0.05)
        return self.received


@contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


class Mailbox:
    """An SMTP server (aiosmtpd) keeping every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.port = free_port()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def url(self, to: str = "ops@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=mc@example.com&to={to}&mode=insecure"


@contextmanager
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def hook() -> Iterator[Webhook]:
    """A webhook receiver; also forgets whether a channel was enabled (the test makes its own)."""
    from notifications import dispatch

    dispatch.forget()
    with webhook() as receiver:
        yield receiver
    dispatch.forget()


@pytest.fixture
def inbox() -> Iterator[Mailbox]:
    with mailbox() as box:
        yield box
