"""Fault injection on the real services: the database made unreachable, then back.

PostgreSQL: the test database refuses new connections (`ALTER DATABASE ... ALLOW_CONNECTIONS
false`, run from the maintenance database) and its open backends are terminated, as if
the server had gone away. SQLite: the database path points into a directory that does
not exist, so every connection attempt fails. Either way Django's own driver raises,
exactly as in an outage.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from django.db import connection, connections

from tests.processes import free_port


def _admin() -> object:
    import psycopg

    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def take_down() -> object:
    """Make the database unreachable; returns what `bring_back` needs."""
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        name = settings_dict["NAME"]
        with _admin() as admin:  # type: ignore[attr-defined]
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
        connections.close_all()
        return name
    name = settings_dict["NAME"]
    connections.close_all()
    settings_dict["NAME"] = "/nonexistent-mission-control/unreachable.sqlite3"
    return name


def bring_back(token: object) -> None:
    if connection.vendor == "postgresql":
        with _admin() as admin:  # type: ignore[attr-defined]
            admin.execute(f'ALTER DATABASE "{token}" ALLOW_CONNECTIONS true')
    else:
        connection.settings_dict["NAME"] = token
    connections.close_all()


@contextmanager
def database_down() -> Iterator[None]:
    token = take_down()
    try:
        yield
    finally:
        bring_back(token)


class PrivateRedis:
    """A redis-server of this test's own, which can be killed and started again."""

    def __init__(self, directory: Path, persistent: bool) -> None:
        self.port, self.directory, self.persistent = free_port(), directory, persistent
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        durability = (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        )
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--save",
                "",
                *durability,
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown save
        self.proc.wait()
