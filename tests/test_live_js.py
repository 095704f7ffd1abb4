"""static/mc/live.js against a real server: the network drops, the page resumes without a gap."""

from __future__ import annotations

import asyncio
import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import event
from tests.processes import ROOT, clean_env, create_key, create_token, daphne, free_port, post_events

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
]


class Proxy:
    """A TCP proxy whose connections can be cut (and new ones refused) while the server runs."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port()
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:  # the server is down (restarting): so is this connection
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _open(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    def open(self) -> None:
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result(5)

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self.loop).result(5)


class Page:
    """static/mc/live.js running in Node; its output lines, as parsed JSON, in a queue."""

    def __init__(self, port: int, token: str) -> None:
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.proc = subprocess.Popen(
            [
                "node",
                "--experimental-websocket",
                "--no-warnings",
                str(ROOT / "tests" / "live_js_harness.mjs"),
                str(ROOT / "static" / "mc" / "live.js"),
                f"127.0.0.1:{port}",
                token,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, timeout: float = 15) -> dict[str, Any]:
        return self.lines.get(timeout=timeout)

    def until(self, key: str, value: Any = None, timeout: float = 20) -> dict[str, Any]:
        """The next line with `key` (equal to `value`, if given)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next(max(0.1, deadline - time.monotonic()))
            if key in line and (value is None or line[key] == value):
                return line

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_the_page_resumes_after_a_dropped_connection_and_resyncs_after_a_restart(tmp_path: Path) -> None:
    # Every frame is counted: Mission Control's own directives (their log lines may land
    # at any minute) stay unloaded.
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_LOAD_SYSTEM_DIRECTIVES="0")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, timeout=120
    )
    key = create_key(env, "page", "srv-page")
    token = create_token(env)
    port = free_port()
    server = daphne(port, env, tmp_path / "daphne.log")
    proxy = Proxy(port)
    page: Page | None = None
    try:
        server.wait_healthy()
        proxy.open()
        page = Page(proxy.port, token)
        page.until("state", "live")
        snapshot = page.until("ids")
        assert snapshot["ids"] == [] and snapshot["seq"] is not None

        post_events(server.url, key, [event("log", id="one")])
        first = page.until("ids")
        assert first["ids"] == ["one"]

        proxy.cut()
        page.until("state", "down")
        for i in range(5):
            post_events(server.url, key, [event("log", id=f"missed-{i}")])
        proxy.open()
        page.until("state", "live")
        frames = [page.until("ids") for _ in range(5)]
        assert [f["ids"] for f in frames] == [[f"missed-{i}"] for i in range(5)]
        assert [f["seq"] for f in frames] == list(range(first["seq"] + 1, first["seq"] + 6))
        post_events(server.url, key, [event("log", id="live")])
        assert page.until("ids")["ids"] == ["live"]  # no repeats came in between

        # A restarted web process on the in-memory layer has lost the history: resync.
        server.stop()
        server = daphne(port, env, tmp_path / "daphne-2.log")
        server.wait_healthy()
        assert page.until("resync")["resync"].startswith("the channel's history was reset")
        assert page.until("ids")["ids"] == []  # the fresh snapshot (history: 0)
    finally:
        if page is not None:
            page.stop()
        proxy.loop.call_soon_threadsafe(proxy.loop.stop)
        server.stop()
