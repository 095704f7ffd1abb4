"""Real server processes for end-to-end tests: started, polled until healthy, stopped."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
CLEARED = ("DATABASE_URL", "REDIS_URL", "MC_CONFIG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "MC_DATA_DIR")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED and not k.startswith("PYTEST")}
    env.update(extra)
    return env


class Server:
    """A process serving HTTP on `port`; `command` runs in its own process group."""

    def __init__(self, command: list[str], port: int, env: dict[str, str], log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_healthy(self, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                response = httpx.get(f"{self.url}/health", timeout=2)
            except httpx.HTTPError:
                response = None  # not listening yet
            if response is not None and response.status_code == 200:
                return response.json()
            time.sleep(0.3)
        raise TimeoutError(f"no healthy answer from {self.url}:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def shared_database_env(**extra: str) -> dict[str, str]:
    """The environment of a process that shares this test's PostgreSQL database and Redis."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    return clean_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY="scale-out",
        MC_CONN_MAX_AGE="0",
        MC_CHANNEL_PREFIX=os.environ.get("MC_CHANNEL_PREFIX", "mc"),
        **extra,
    )


def is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid == ancestor:
            return True
    return False


def descendants(ancestor: int, word: str) -> list[int]:
    """Pids of the processes under `ancestor` whose command line holds `word`."""
    found = subprocess.run(["pgrep", "-f", word], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found if is_descendant(int(pid), ancestor)]


def daphne(port: int, env: dict[str, str], log: Path) -> Server:
    return Server(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "missioncontrol.asgi:application",
        ],
        port,
        env,
        log,
    )


def create_key(env: dict[str, str], name: str, mcp: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", "create_ingest_key", name, "--mcp", mcp],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """What `manage.py <args>` prints, run in `env` (its database); it must succeed."""
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def create_token(env: dict[str, str], user: str = "mc-test", role: str = "admin") -> str:
    """An API token of a new user with `role`, made by the management commands in `env`'s database."""
    manage(env, "create_user", user, "--role", role)
    return manage(env, "create_api_token", f"{user}-token", "--user", user).strip().splitlines()[-1]


def superuser_server(data: Path, username: str, password: str, **extra: str) -> tuple[Server, dict[str, str]]:
    """A daphne (started, not yet healthy) over a fresh data directory, migrated, with a
    superuser; and its environment, for more manage.py commands."""
    env = clean_env(
        MC_DATA_DIR=str(data),
        MC_DEMO="0",
        DJANGO_SUPERUSER_USERNAME=username,
        DJANGO_SUPERUSER_PASSWORD=password,
        DJANGO_SUPERUSER_EMAIL=f"{username}@example.com",
        **extra,
    )
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "createsuperuser", "--noinput")
    return daphne(free_port(), env, data / "daphne.log"), env


def jwt_for(env: dict[str, str], username: str) -> str:
    """A JWT access token of `username`, signed with the installation's key."""
    show = (
        "from django.contrib.auth.models import User; "
        "from rest_framework_simplejwt.tokens import AccessToken; "
        f"print(AccessToken.for_user(User.objects.get(username={username!r})))"
    )
    return manage(env, "shell", "-c", show).split()[-1]


def post_events(url: str, key: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/api/ingest/events",
        headers={"Authorization": f"Bearer {key}"},
        content=json.dumps({"events": events}),
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def receive_after_push(
    port: int, channel: str, push_to: str, key: str, events: list[dict[str, Any]], token: str
) -> list[Any]:
    """Subscribe to `channel` on the server at `port` (signed in with `token`), push
    `events` to `push_to`, and return the snapshot's events and those of the first live
    frame with any (after the ack). Mission Control's own log lines (its scheduled
    directives', which may land at any minute) are left out of both."""

    def others(frame: dict[str, Any]) -> list[Any]:
        return [e for e in frame["payload"]["events"] if e.get("service") != "mission-control"]

    async def scenario() -> list[Any]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/?token={token}") as ws:
            await ws.send(json.dumps({"type": "subscribe", "channel": channel}))
            assert json.loads(await ws.recv())["type"] == "response"
            snapshot = json.loads(await ws.recv())
            assert snapshot["type"] == "event", snapshot
            answer = await asyncio.to_thread(post_events, push_to, key, events)
            assert answer["accepted"] == len(events), answer
            live: list[Any] = []
            while not live:  # frames holding only Mission Control's own lines are skipped
                live = others(json.loads(await asyncio.wait_for(ws.recv(), timeout=10)))
            return others(snapshot), live

    return asyncio.run(scenario())


def register(url: str, token: str, spec: dict[str, Any], timeout: float = 60) -> None:
    """Register the server `spec` through the API of the server at `url` (as an admin's
    `token`) and wait for the gateway to connect it."""
    auth = {"Authorization": f"Bearer {token}"}
    response = httpx.post(f"{url}/api/mcps", json=spec, headers=auth, timeout=10)
    assert response.status_code == 201, response.text
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/api/mcps/{spec['id']}", headers=auth, timeout=5).json()["status"] != "connected":
        assert time.monotonic() < deadline, f"the gateway did not connect {spec['id']}"
        time.sleep(0.2)


def register_and_call_time(url: str, token: str, timeout: float = 60) -> dict[str, Any]:
    """Register mcp-server-time through the API of the server at `url` (as an admin's
    `token`), wait for the gateway to connect it, and return the answer to one
    get_current_time call."""
    auth = {"Authorization": f"Bearer {token}"}
    spec = {"id": "time", "command": sys.executable, "args": ["-m", "mcp_server_time"]}
    response = httpx.post(f"{url}/api/mcps", json=spec, headers=auth, timeout=10)
    assert response.status_code == 201, response.text
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/api/mcps/time", headers=auth, timeout=5).json()["status"] != "connected":
        assert time.monotonic() < deadline, "the gateway did not connect mcp-server-time"
        time.sleep(0.2)
    call = httpx.post(
        f"{url}/api/mcps/time/tools/get_current_time/call",
        json={"arguments": {"timezone": "UTC"}},
        headers=auth,
        timeout=30,
    )
    assert call.status_code == 200, call.text
    return call.json()


def signed_in(url: str, username: str, password: str) -> httpx.Client:
    """A client of the server at `url` signed in through its login form, as a browser is."""
    client = httpx.Client(base_url=url, timeout=10)
    client.get("/accounts/login/")
    answer = client.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        headers={"Referer": f"{url}/accounts/login/"},
    )
    assert answer.status_code == 302, answer.text[:500]
    return client
