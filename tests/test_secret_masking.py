"""Secrets in an MCP server's url and args are masked for everyone but admins, on every
surface (REST, GraphQL, the pages, the admin, the live snapshot), like env and headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from mcps.masking import mask_args, mask_url
from mcps.models import MCPServer
from tests.conftest import Socket, signed_in

pytestmark = pytest.mark.django_db

SECRETS = (
    "url-pw-111",
    "query-tok-222",
    "flag-tok-333",
    "key-444",
    "pass-555",
    "glued-666",
    "env-pw-777",
    "abcdefabcdef",
)
ARGS = [
    "--token",
    "flag-tok-333",
    "--api-key=key-444",
    "-p",
    "pass-555",
    "-pglued-666",
    "DB_PASSWORD=env-pw-777",
    "ghp_abcdefabcdefabcdefabcdefabcdef123456",
    "--verbose",
    "--port",
    "8080",
]


@pytest.fixture
def servers(db: None) -> None:
    MCPServer.objects.create(
        id="remote",
        name="remote",
        transport=MCPServer.Transport.STREAMABLE_HTTP,
        url="https://agent:url-pw-111@mcp.example/mcp?token=query-tok-222&region=eu",
        headers={"Authorization": "Bearer hdr-888"},
    )
    MCPServer.objects.create(
        id="local",
        name="local",
        transport=MCPServer.Transport.STDIO,
        command="uvx",
        args=ARGS,
        env={"K": "e-999"},
    )


def shows_no_secret(text: str) -> bool:
    return not any(secret in text for secret in (*SECRETS, "hdr-888", "e-999"))


def test_urls_lose_their_userinfo_and_query_values() -> None:
    assert (
        mask_url("https://a:b@h.example/mcp?token=x&n=1#top")
        == "https://***@h.example/mcp?token=***&n=***#top"
    )
    assert mask_url("https://h.example/mcp") == "https://h.example/mcp"


def test_args_lose_the_values_of_secret_named_flags_and_assignments() -> None:
    assert mask_args(ARGS) == [
        "--token",
        "***",
        "--api-key=***",
        "-p",
        "***",
        "-p***",
        "DB_PASSWORD=***",
        "ghp_***",
        "--verbose",
        "--port",
        "8080",
    ]
    assert mask_args(["--db", "postgres://u:pw@db/x", "-password", "s", "--client-secret=s"]) == [
        "--db",
        "postgres://***@db/x",
        "-password",
        "***",
        "--client-secret=***",
    ]


def test_rest_masks_url_and_args_for_a_viewer_and_shows_them_to_an_admin(
    servers: None, viewer: User, admin: User
) -> None:
    for server in ("remote", "local"):
        answer = signed_in(viewer).get(f"/api/mcps/{server}")
        assert answer.status_code == 200
        assert shows_no_secret(answer.content.decode()), answer.json()["connection"]
    seen = signed_in(viewer).get("/api/mcps/remote").json()["connection"]
    assert seen["url"] == "https://***@mcp.example/mcp?token=***&region=***"

    by_admin = signed_in(admin).get("/api/mcps/local").json()["connection"]
    assert by_admin["args"] == ARGS and by_admin["env"] == {"K": "***"}
    remote = signed_in(admin).get("/api/mcps/remote").json()["connection"]
    assert "url-pw-111" in remote["url"] and remote["headers"] == {"Authorization": "***"}


def test_graphql_masks_the_connection_like_rest(servers: None, viewer: User, admin: User) -> None:
    query = {"query": '{ mcpServer(id: "local") { connection } }'}
    answer = signed_in(viewer).post("/graphql", query, "application/json")
    assert answer.status_code == 200, answer.content
    assert shows_no_secret(answer.content.decode())
    assert answer.json()["data"]["mcpServer"]["connection"]["args"][:2] == ["--token", "***"]
    by_admin = signed_in(admin).post("/graphql", query, "application/json").json()
    assert by_admin["data"]["mcpServer"]["connection"]["args"] == ARGS


def test_the_server_page_masks_the_command_line_for_a_viewer(
    servers: None, viewer: User, admin: User
) -> None:
    for server in ("remote", "local"):
        page = signed_in(viewer).get(f"/servers/{server}")
        assert page.status_code == 200 and shows_no_secret(page.content.decode())
    assert "--token ***" in signed_in(viewer).get("/servers/local").content.decode()
    assert "flag-tok-333" in signed_in(admin).get("/servers/local").content.decode()


def test_the_admin_masks_everything_for_staff_who_do_not_manage_servers(servers: None, viewer: User) -> None:
    viewer.is_staff = True
    viewer.save()
    page = signed_in(viewer)
    for server in ("remote", "local"):
        change = page.get(f"/admin/mcps/mcpserver/{server}/change/")
        assert change.status_code == 200
        assert shows_no_secret(change.content.decode())
    assert "--token ***" in page.get("/admin/mcps/mcpserver/local/change/").content.decode()
    # Searching by url or command line would be an oracle for the secret.
    found = page.get("/admin/mcps/mcpserver/", {"q": "url-pw-111"})
    assert found.status_code == 200 and "0 results" in found.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_the_live_snapshot_of_a_server_holds_no_secret(servers: None, viewer: User) -> None:
    async with Socket(user=viewer) as ws:
        snapshot = await ws.subscribe("mcp:local")
    assert snapshot[0]["mcp"]["id"] == "local"
    assert shows_no_secret(json.dumps(snapshot))


def test_an_admin_still_edits_the_real_url_in_the_admin(servers: None, admin: User, client: Client) -> Any:
    admin.is_staff = True
    admin.save()
    change = signed_in(admin).get("/admin/mcps/mcpserver/remote/change/")
    assert "url-pw-111" in change.content.decode()  # admins manage the server: the real url
    assert "hdr-888" not in change.content.decode()  # headers stay masked for everyone
