"""One crash is not an outage: `serve` replaces a dead worker while its siblings answer, and
a web process whose database is down stays alive (liveness) while it reports itself not
ready (readiness) and keeps taking ingest into its spool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import event
from tests.faults import database_down
from tests.processes import ROOT, Server, daphne, free_port, post_events, shared_database_env, signed_in
from tests.test_scale_out import _children, needs_pg_and_redis

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PASSWORD = "a long enough password for ops"


class Prober(threading.Thread):
    """GETs /health/live back to back, noting when each request started and if it failed."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.done = url, threading.Event()
        self.answers: list[tuple[float, bool]] = []

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.done.is_set():
                started = time.monotonic()
                try:
                    ok = client.get(f"{self.url}/health/live").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.answers.append((started, ok))


def serving(url: str) -> set[int]:
    """The worker pids that answer a few fresh connections (the kernel spreads them)."""
    pids = set()
    for _ in range(20):
        with httpx.Client(timeout=5) as client:
            pids.add(client.get(f"{url}/health/live").json()["pid"])
    return pids


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s")


@needs_pg_and_redis
def test_a_killed_worker_is_replaced_while_its_sibling_keeps_serving(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", "2"]
    env = shared_database_env(MC_DEMO="0", MC_DATA_DIR=str(tmp_path / "data"), OPS_PASSWORD=PASSWORD)
    make_user = [sys.executable, "manage.py", "create_user", "ops", "--role", "admin"]
    subprocess.run([*make_user, "--password-from-env", "OPS_PASSWORD"], cwd=ROOT, env=env, check=True)
    server = Server(command, port, env, tmp_path / "serve.log")
    prober = Prober(server.url)
    try:
        server.wait_healthy()
        first = _children(server.proc.pid)
        assert len(first) == 2, first
        prober.start()
        time.sleep(0.5)
        os.kill(first[0], signal.SIGKILL)
        killed_at = time.monotonic()
        now = until(
            lambda: (c := _children(server.proc.pid)) and len(c) == 2 and first[0] not in c and c,
            timeout=15,
            what="replacement worker",
        )
        assert first[1] in now  # the sibling was left alone
        replacement = next(pid for pid in now if pid != first[1])
        until(lambda: replacement in serving(server.url), 60, "answer from the replacement")
        time.sleep(1)
        prober.done.set()
        prober.join(10)
        # Requests made after the kill (the killed worker's own in-flight ones aside) all answered.
        after = [ok for started, ok in prober.answers if started > killed_at + 0.2]
        assert after and all(after), f"{after.count(False)} of {len(after)} failed"
        metrics = signed_in(server.url, "ops", PASSWORD).get("/metrics").text
        assert "mission_control_web_worker_restarts_total 1.0" in metrics
    finally:
        prober.done.set()
        server.proc.send_signal(signal.SIGTERM)  # serve alone: it stops its workers itself
        code = server.proc.wait(timeout=30)
    assert code == 0
    assert not [pid for pid in first + now if Path(f"/proc/{pid}").exists()]
    log = (tmp_path / "serve.log").read_text()
    assert f"worker {first[0]} exited with code -9" in log and "starting a replacement" in log


@needs_pg_and_redis
def test_while_the_database_is_down_it_is_alive_not_ready_and_still_takes_ingest(
    tmp_path: Path, ingest_key: str
) -> None:
    web = daphne(free_port(), shared_database_env(MC_DATA_DIR=str(tmp_path / "data")), tmp_path / "web.log")
    try:
        web.wait_healthy()
        post_events(web.url, ingest_key, [event("log", message="before")])  # the key is known now
        with database_down():
            live = httpx.get(f"{web.url}/health/live", timeout=10)
            ready = httpx.get(f"{web.url}/health/ready", timeout=10)
            spooled = httpx.post(
                f"{web.url}/api/ingest/events",
                headers={"Authorization": f"Bearer {ingest_key}"},
                json={"events": [event("log", message="during the outage")]},
                timeout=10,
            )
        assert live.status_code == 200 and live.json()["status"] == "alive"
        assert ready.status_code == 503 and ready.headers["Retry-After"]
        assert ready.json()["database"]["ok"] is False and ready.json()["channel_layer"]["ok"] is True
        assert spooled.status_code == 202, spooled.text
    finally:
        web.stop()
