"""A browser page of another site cannot open /ws/; the server's own pages and allowed origins can."""

from __future__ import annotations

from typing import Any

import pytest

from missioncontrol.origins import CLOSE_FORBIDDEN_ORIGIN
from tests.conftest import Socket

# The consumer closes stale database connections on the way out.
pytestmark = pytest.mark.django_db(transaction=True)


def handshake(origin: str, host: str = "127.0.0.1:8000") -> list[tuple[bytes, bytes]]:
    return [(b"host", host.encode()), (b"origin", origin.encode())]


async def test_a_handshake_from_another_sites_page_is_refused() -> None:
    socket = Socket(headers=handshake("https://evil.example"))
    assert await socket.comm.connect() == (False, CLOSE_FORBIDDEN_ORIGIN)


async def test_the_servers_own_pages_may_connect() -> None:
    async with Socket(headers=handshake("http://127.0.0.1:8000")) as ws:
        await ws.send(type="ping")
        assert (await ws.recv())["payload"] == {"pong": True}


async def test_same_host_on_another_port_is_another_origin() -> None:
    socket = Socket(headers=handshake("http://127.0.0.1:3000"))
    assert await socket.comm.connect() == (False, CLOSE_FORBIDDEN_ORIGIN)


async def test_a_host_outside_allowed_hosts_is_refused_even_as_its_own_origin(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["mc.example.com"]  # a rebinding attacker's page names its own host
    socket = Socket(headers=handshake("http://attacker.test:8000", host="attacker.test:8000"))
    assert await socket.comm.connect() == (False, CLOSE_FORBIDDEN_ORIGIN)
    async with Socket(headers=handshake("https://mc.example.com", host="mc.example.com")):
        pass


async def test_configured_origins_may_connect(settings: Any) -> None:
    settings.WS_ALLOWED_ORIGINS = ["https://dashboard.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.corp.example"]
    async with Socket(headers=handshake("https://dashboard.example.com")):
        pass
    async with Socket(headers=handshake("https://ops.corp.example")):
        pass
    refused = Socket(headers=handshake("https://dashboard.example.com.evil.example"))
    assert await refused.comm.connect() == (False, CLOSE_FORBIDDEN_ORIGIN)


async def test_a_client_that_sends_no_origin_is_not_a_browser_and_may_connect() -> None:
    async with Socket() as ws:
        await ws.send(type="ping")
        assert (await ws.recv())["payload"] == {"pong": True}
