"""mDNS discovery (`mcps.discovery.mdns`): a Streamable HTTP server advertised as
`_mcp._tcp.local.` is registered (source mdns) and connected; when it stops advertising
it is disabled and dropped. Multicast on the loopback interface: each side's zeroconf is
bound to 127.0.0.1, so nothing is sent to or heard from the real network.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from zeroconf import ServiceInfo, Zeroconf
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from mcps import mdns
from mcps.gateway.connection import Backoff
from mcps.gateway.service import Gateway
from mcps.models import MCPServer
from missioncontrol.config import ConfigError, DiscoveryConfig, parse_config
from tests.mcp_servers import everything_over_http, until
from tests.processes import ROOT, Server, clean_env, create_token, free_port

LOOPBACK = "127.0.0.1"


def advertisement(name: str, port: int, **txt: str) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        mdns.SERVICE_TYPE,
        f"{name}.{mdns.SERVICE_TYPE}",
        addresses=[socket.inet_aton(LOOPBACK)],
        port=port,
        properties=txt,
        server=f"{name}.local.",
    )


@pytest.fixture
async def http_server() -> AsyncIterator[int]:
    """server-everything over Streamable HTTP on a free port (/mcp)."""
    port = free_port()
    proc = await everything_over_http(port)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def mdns_on(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    mcps = replace(settings.MC.mcps, discovery=DiscoveryConfig(mdns=True, mdns_interfaces=(LOOPBACK,)))
    settings.MC = replace(settings.MC, mcps=mcps)
    monkeypatch.setattr(mdns, "SETTLE_SECONDS", 0.5)


def server(server_id: str) -> MCPServer | None:
    return MCPServer.objects.filter(id=server_id).first()


def state(server_id: str) -> tuple[bool, str] | None:
    """(enabled, status) of the server, None while it is not registered."""
    found = server(server_id)
    return None if found is None else (found.enabled, found.status)


@pytest.mark.django_db(transaction=True)
async def test_an_advertised_server_is_registered_connected_and_disabled_when_it_leaves(
    mdns_on: None, http_server: int
) -> None:
    name = f"mc-test-{uuid.uuid4().hex[:8]}"
    advertiser = AsyncZeroconf(interfaces=[LOOPBACK])
    info = advertisement(name, http_server, path="/mcp", transport="streamable-http")
    await advertiser.async_register_service(info)
    gateway = Gateway(Backoff(0.1, 0.5))
    await gateway.start()
    try:
        await until(
            lambda: state(name) == (True, "connected"), timeout=30, what="the advertised server to connect"
        )
        found = await sync_to_async(server)(name)
        assert found is not None
        assert (found.source, found.transport, found.url) == (
            "mdns",
            "streamable_http",
            f"http://{LOOPBACK}:{http_server}/mcp",
        )
        assert await sync_to_async(found.tools.count)() > 0  # its catalog, read over the session

        await advertiser.async_unregister_service(info)
        await until(
            lambda: state(name) == (False, "disconnected"), timeout=30, what="it to be disabled and dropped"
        )
        assert name not in gateway.connections
    finally:
        await gateway.stop()
        await advertiser.async_close()


@pytest.mark.django_db(transaction=True)
async def test_an_interface_mdns_cannot_use_is_logged_and_the_gateway_serves_on(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mcps = replace(settings.MC.mcps, discovery=DiscoveryConfig(mdns=True, mdns_interfaces=("10.9.9.9",)))
    settings.MC = replace(settings.MC, mcps=mcps)
    await sync_to_async(MCPServer.objects.create)(
        id="time", name="time", transport="stdio", command=sys.executable, args=["-m", "mcp_server_time"]
    )
    gateway = Gateway(Backoff(0.1, 0.5))
    await gateway.start()
    try:
        await until(lambda: state("time") == (True, "connected"), timeout=30, what="time to connect")
        assert "mdns: cannot browse on ['10.9.9.9']" in caplog.text
    finally:
        await gateway.stop()


def entry(port: int = 8080) -> dict[str, Any]:
    return {"url": f"http://{LOOPBACK}:{port}/mcp", "type": "http"}


@pytest.mark.django_db
def test_a_name_another_source_owns_is_not_overwritten() -> None:
    MCPServer.objects.create(id="git", name="git", source="config", transport="stdio", command="uvx")
    result = mdns.sync({"git": entry()}, settled=True)
    assert result.errors == {"git": "the id 'git' belongs to a server from config; not replaced"}
    assert MCPServer.objects.get(id="git").transport == "stdio"


@pytest.mark.django_db
def test_a_server_no_longer_advertised_is_disabled_only_once_the_browser_has_settled() -> None:
    mdns.sync({"old-box": entry(), "build-box": entry(9000)}, settled=True)
    mdns.sync({"build-box": entry(9000)}, settled=False)  # just started: old-box may not have answered yet
    assert MCPServer.objects.get(id="old-box").enabled
    mdns.sync({"build-box": entry(9000)}, settled=True)
    assert not MCPServer.objects.get(id="old-box").enabled
    assert MCPServer.objects.get(id="build-box").enabled
    mdns.sync({"old-box": {**entry(), "enabled": True}}, settled=True)  # back on the network
    assert MCPServer.objects.get(id="old-box").enabled


@pytest.mark.parametrize(
    ("txt", "expected"),
    [
        ({}, {"url": f"http://{LOOPBACK}:7000/mcp", "type": "http"}),
        ({"path": "rpc", "transport": "sse"}, {"url": f"http://{LOOPBACK}:7000/rpc", "type": "sse"}),
    ],
)
def test_the_txt_record_says_the_path_and_transport(txt: dict[str, str], expected: dict[str, str]) -> None:
    assert mdns.entry_for(advertisement("box", 7000, **txt)) == expected


def test_an_unknown_transport_is_skipped_with_the_reason() -> None:
    with pytest.raises(mdns.Unusable, match="TXT transport 'websocket': expected streamable-http or sse"):
        mdns.entry_for(advertisement("box", 7000, transport="websocket"))


@pytest.mark.parametrize(
    ("discovery", "message"),
    [
        ({"mdns": "yes"}, "mcps.discovery.mdns: expected true or false, got 'yes'"),
        (
            {"mdns": True, "mdns_interfaces": ["eth0"]},
            "mcps.discovery.mdns_interfaces: 'eth0' is not an IP address",
        ),
        ({"bonjour": True}, "mcps.discovery.bonjour: unknown key; expected mdns, mdns_interfaces"),
        ("on", "mcps.discovery: expected a mapping, e.g. {mdns: true}"),
    ],
)
def test_a_bad_discovery_setting_stops_start_up_naming_the_key(discovery: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"mcps": {"discovery": discovery}})


def test_mdns_is_off_unless_configured() -> None:
    assert parse_config({}).mcps.discovery == DiscoveryConfig(mdns=False, mdns_interfaces=())
    on = parse_config({"mcps": {"discovery": {"mdns": True, "mdns_interfaces": ["127.0.0.1"]}}})
    assert on.mcps.discovery == DiscoveryConfig(mdns=True, mdns_interfaces=("127.0.0.1",))


@pytest.mark.slow
def test_the_served_process_registers_an_advertised_server_and_disables_it_when_it_leaves(
    tmp_path: Path,
) -> None:
    """`manage.py serve` (the embedded gateway) with mcps.discovery.mdns on in mission_control.yml."""
    config = tmp_path / "mission_control.yml"
    config.write_text("demo: false\nmcps:\n  discovery: {mdns: true, mdns_interfaces: [127.0.0.1]}\n")
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_CONFIG=str(config), MC_DEMO="0")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    auth = {"Authorization": f"Bearer {create_token(env)}"}
    port, mcp_port = free_port(), free_port()
    web = Server(
        [sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp_path / "serve.log"
    )
    everything = subprocess.Popen(
        [
            "node",
            str(ROOT / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
            "streamableHttp",
        ],
        env={**clean_env(), "PORT": str(mcp_port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    name = f"mc-served-{uuid.uuid4().hex[:8]}"
    advertiser = Zeroconf(interfaces=[LOOPBACK])
    info = ServiceInfo(
        mdns.SERVICE_TYPE,
        f"{name}.{mdns.SERVICE_TYPE}",
        addresses=[socket.inet_aton(LOOPBACK)],
        port=mcp_port,
        properties={"path": "/mcp", "transport": "streamable-http"},
        server=f"{name}.local.",
    )
    try:
        web.wait_healthy()
        advertiser.register_service(info)
        api = httpx.Client(base_url=web.url, headers=auth, timeout=10)

        def shown() -> dict[str, Any]:
            answer = api.get(f"/api/mcps/{name}")
            return answer.json() if answer.status_code == 200 else {}

        _wait(lambda: shown().get("status") == "connected", 45, "the advertised server to connect")
        row = shown()
        assert (row["source"], row["enabled"], row["transport"]) == ("mdns", True, "streamable_http")
        assert row["connection"]["url"] == f"http://{LOOPBACK}:{mcp_port}/mcp" and row["tools"] > 0

        advertiser.unregister_service(info)
        _wait(lambda: shown().get("enabled") is False, 30, "the server to be disabled")
        _wait(lambda: shown().get("status") == "disconnected", 30, "the gateway to drop it")
    finally:
        advertiser.close()
        everything.terminate()
        everything.wait(timeout=10)
        web.stop()


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
