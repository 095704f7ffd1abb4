"""`manage.py serve` says where it is serving and, on a database with no user yet, how to
make the first one: a newcomer's `make run` ends with what to open and what to type."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import httpx

from tests.processes import Server, clean_env, free_port, manage

HINT = "No user yet: make the first one with"


def banner(server: Server, timeout: float = 120) -> str:
    """The serve log once it holds the serving line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = server.log.read_text()
        if "Mission Control is serving on" in text:
            time.sleep(0.3)  # the lines after it are written in the same call
            return server.log.read_text()
        assert server.proc.poll() is None, f"serve exited {server.proc.returncode}:\n{text[-3000:]}"
        time.sleep(0.2)
    raise TimeoutError(f"serve printed no address:\n{server.log.read_text()[-3000:]}")


def serve(env: dict[str, str], log: Path) -> Server:
    port = free_port()
    return Server([sys.executable, "manage.py", "serve", "--port", str(port)], port, env, log)


def test_serve_prints_its_address_and_the_command_that_makes_the_first_user(tmp_path: Path) -> None:
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_DEMO="0")
    manage(env, "migrate", "--noinput", "-v0")

    server = serve(env, tmp_path / "first.log")
    try:
        text = banner(server)
        assert f"Mission Control is serving on {server.url}\n" in text
        # It is printed once the server answers, so the address works when it is read.
        assert httpx.get(f"{server.url}/health/live", timeout=5).status_code == 200
        hint = text.split(HINT + "\n", 1)[1].splitlines()[0]
        assert re.fullmatch(r"  \S*python\S* \S*manage\.py createsuperuser", hint), hint
        assert text.count("Mission Control is serving on") == 1
    finally:
        server.stop()

    # The command it printed makes the first user; then the hint is gone.
    manage(
        env | {"DJANGO_SUPERUSER_PASSWORD": "a long passphrase"},
        "createsuperuser",
        "--noinput",
        "--username",
        "root",
        "--email",
        "root@example.com",
    )
    server = serve(env, tmp_path / "second.log")
    try:
        text = banner(server)
        assert f"Mission Control is serving on {server.url}\n" in text
        assert HINT not in text
    finally:
        server.stop()
