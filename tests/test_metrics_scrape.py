"""/metrics for Prometheus: a bearer credential scrapes it, a metrics-only token reads it
and nothing else, and a request without credentials gets 401, not the sign-in page."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from missioncontrol.models import APIToken
from tests.conftest import Socket, access_token, api_token, make_user
from tests.processes import Server, clean_env, free_port, manage

pytestmark = pytest.mark.django_db(transaction=True)


def metrics_token(user: User) -> str:
    _token, raw = APIToken.objects.issue("prometheus", user, scope=APIToken.Scope.METRICS)
    return raw


def get(path: str, credential: str | None = None, **extra: Any) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {credential}"} if credential else {}
    return Client().get(path, **headers, **extra)


def family_names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def test_a_metrics_only_token_reads_metrics(viewer: User) -> None:
    response = get("/metrics", metrics_token(viewer))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    assert "mission_control_database_up" in family_names(response.content.decode())


def test_a_metrics_only_token_of_a_user_without_a_role_still_reads_metrics(db: None) -> None:
    scraper = make_user("scraper", None)
    assert get("/metrics", metrics_token(scraper)).status_code == 200


@pytest.mark.parametrize("path", ["/api/threads", "/api/mcps", "/api/tokens", "/api/auth/me"])
def test_a_metrics_only_token_is_forbidden_on_the_rest_api(superuser: User, path: str) -> None:
    response = get(path, metrics_token(superuser))
    assert response.status_code == 403, (path, response.content)
    assert "/metrics only" in response.json()["detail"]


def test_a_metrics_only_token_is_forbidden_on_graphql(superuser: User) -> None:
    response = Client().post(
        "/graphql",
        data=json.dumps({"query": "{ __typename }"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {metrics_token(superuser)}",
    )
    assert response.status_code == 403
    assert "/metrics only" in response.json()["detail"]


def test_pages_ignore_a_metrics_only_token(superuser: User) -> None:
    raw = metrics_token(superuser)
    # Pages ignore bearer credentials: still the sign-in page.
    assert get("/", raw).status_code == 302


async def test_a_metrics_only_token_may_not_open_the_websocket(superuser: User) -> None:
    raw = await sync_to_async(metrics_token)(superuser)
    socket = Socket(token=raw)
    connected, _ = await socket.comm.connect()
    assert connected
    refusal = json.loads(await socket.comm.receive_from())
    assert refusal["type"] == "error" and "/metrics only" in refusal["payload"]["reason"]
    closed = await socket.comm.receive_output()
    assert closed == {"type": "websocket.close", "code": 4403}


async def test_a_metrics_only_token_is_refused_on_mcp_and_by_mcp_proxy(superuser: User) -> None:
    from missioncontrol.asgi import application

    raw = await sync_to_async(metrics_token)(superuser)
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.post(
            "/mcp",
            json=initialize,
            headers={"Authorization": f"Bearer {raw}", "Accept": "application/json, text/event-stream"},
        )
    assert answer.status_code == 403
    assert "/metrics only" in answer.json()["error"]["message"]
    with pytest.raises(CommandError, match="/metrics only"):
        await sync_to_async(call_command)("mcp_proxy", "--token", raw)


def test_a_readers_token_and_jwt_read_metrics_too(viewer: User) -> None:
    assert get("/metrics", api_token(viewer)).status_code == 200
    assert get("/metrics", access_token(viewer)).status_code == 200


def test_a_user_without_a_role_may_not_read_metrics_with_a_full_token(db: None) -> None:
    nobody = make_user("nobody", None)
    response = get("/metrics", api_token(nobody))
    assert response.status_code == 403


def test_metrics_answers_401_without_credentials_or_with_a_bad_one(db: None) -> None:
    for credential in (None, "mct_not-a-token", "not-a-jwt"):
        response = get("/metrics", credential)
        assert response.status_code == 401, (credential, response.status_code)
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_metrics_token_reads_nothing(viewer: User) -> None:
    raw = metrics_token(viewer)
    APIToken.objects.get(scope=APIToken.Scope.METRICS).revoke()
    assert get("/metrics", raw).status_code == 401


def test_a_signed_in_reader_still_reads_metrics(client: Client) -> None:
    assert client.get("/metrics").status_code == 200


def test_an_admin_issues_a_metrics_only_token_on_the_tokens_page(client: Client) -> None:
    page = client.post("/settings/tokens", {"name": "prometheus", "scope": "metrics"})
    assert page.status_code == 200
    token = APIToken.objects.get(name="prometheus")
    assert token.scope == "metrics"
    raw = page.context["issued"].raw
    assert get("/metrics", raw).status_code == 200
    assert get("/api/threads", raw).status_code == 403
    assert "reads /metrics only" in client.get("/settings/tokens").content.decode()


def test_the_api_issues_a_metrics_only_token(client: Client) -> None:
    answer = client.post("/api/tokens", {"name": "prom", "scope": "metrics"}, content_type="application/json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["scope"] == "metrics"
    assert get("/metrics", answer.json()["token"]).status_code == 200
    refused = client.post(
        "/api/tokens", {"name": "x", "scope": "everything"}, content_type="application/json"
    )
    assert refused.status_code == 400 and "scope" in refused.json()


def test_the_admin_issues_a_metrics_only_token(client: Client, superuser: User) -> None:
    answer = client.post(
        "/admin/missioncontrol/apitoken/add/", {"name": "scraper", "owner": superuser.pk, "scope": "metrics"}
    )
    assert answer.status_code == 302, answer.content
    assert APIToken.objects.get(name="scraper").metrics_only


@pytest.mark.slow
def test_prometheus_scrapes_a_served_process_with_a_metrics_only_token(tmp_path: Path) -> None:
    """`manage.py serve` scraped as Prometheus does (`authorization: credentials:`): the
    token made by `create_api_token --metrics-only` reads /metrics and nothing else."""
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_DEMO="0")
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "create_user", "prometheus", "--role", "viewer")
    raw = manage(env, "create_api_token", "scraper", "--user", "prometheus", "--metrics-only")
    raw = raw.strip().splitlines()[-1]
    port = free_port()
    server = Server(
        [sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp_path / "serve.log"
    )
    try:
        server.wait_healthy()
        scrape = httpx.get(
            f"{server.url}/metrics",
            headers={"Authorization": f"Bearer {raw}", "Accept": "text/plain;version=0.0.4"},
            timeout=10,
        )
        assert scrape.status_code == 200, scrape.text
        names = family_names(scrape.text)
        assert {"mission_control_database_up", "mission_control_websocket_connections"} <= names
        anonymous = httpx.get(f"{server.url}/metrics", timeout=10)
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        elsewhere = httpx.get(
            f"{server.url}/api/threads", headers={"Authorization": f"Bearer {raw}"}, timeout=10
        )
        assert elsewhere.status_code == 403
    finally:
        server.stop()
