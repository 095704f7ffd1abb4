"""/mcp keeps teams apart: its own tools run as their caller, its sessions are their opener's.

Mission Control's own tools (`missioncontrol__search_logs`, `get_thread`, ...) read
through the caller's `visible_to`, as REST does; `run_directive` acts for the caller.
A session (`Mcp-Session-Id`) answers only the principal that opened it: anyone else's
request for it, DELETE included, is answered 404 as for an unknown session. One test
does it all against a real served process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from automations.models import Directive, KnowledgeEntry
from mcps.gateway import rpc
from tests.conftest import api_token, event, make_user
from tests.mcp_servers import mcp_client
from tests.processes import Server, clean_env, free_port, manage, post_events
from tests.teams import SUMMARY, push_two_teams, runs_and_knowledge
from tests.test_access_mcp import INITIALIZE, MCP_HEADERS

pytestmark = pytest.mark.django_db(transaction=True)

PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


@pytest.fixture(autouse=True)
def _no_gateway_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rpc, "ACK_SECONDS", 0.2)  # no gateway runs: tools/list says so quickly


def tokens() -> dict[str, str]:
    """Data of both teams, and API tokens of each persona (its team's)."""
    push_two_teams()
    runs_and_knowledge()
    KnowledgeEntry.objects.filter(slug__in=["alpha-entry", "beta-entry", "system-entry"]).update(
        category=KnowledgeEntry.Category.ALERT
    )
    for slug in ("alpha-entry", "beta-entry", "system-entry"):
        KnowledgeEntry.objects.filter(slug=slug).update(slug=f"anomaly-{slug}")
    Directive.objects.upsert_from_yaml(SUMMARY)
    people = {
        "olga": ("operator", "alpha"),
        "ada": ("admin", "alpha"),
        "bob": ("operator", "beta"),
    }
    return {name: api_token(make_user(name, role, slug), slug) for name, (role, slug) in people.items()}


def structured(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_own_tools_read_and_act_as_their_caller() -> None:
    token = await sync_to_async(tokens)()
    async with mcp_client(token["olga"]) as client:
        logs = structured(await client.call_tool("missioncontrol__search_logs", {"limit": 100}))["logs"]
        assert {log["id"] for log in logs} == {"log-T-a", "free-a"}
        assert structured(await client.call_tool("missioncontrol__get_thread", {"thread_id": "T-a"}))
        refused = await client.call_tool("missioncontrol__get_thread", {"thread_id": "T-b"})
        assert refused.is_error and refused.content[0].text == "no thread 'T-b'"
        anomalies = structured(await client.call_tool("missioncontrol__list_anomalies", {}))["anomalies"]
        assert [a["slug"] for a in anomalies] == ["anomaly-alpha-entry"]
        run = structured(
            await client.call_tool(
                "missioncontrol__run_directive", {"directive": "summary", "inputs": {"hours": 1_000_000}}
            )
        )
    assert (run["status"], run["started_by"], run["team"]) == ("completed", "olga", "alpha")
    assert run["result"]["logs"]["total"] == 2  # alpha's two: nothing of beta's
    async with mcp_client(token["ada"]) as client:
        everything = structured(await client.call_tool("missioncontrol__search_logs", {"limit": 100}))
    assert {log["id"] for log in everything["logs"]} >= {"log-T-a", "log-T-b", "log-T-none"}


async def test_a_session_answers_only_the_principal_that_opened_it() -> None:
    from missioncontrol.asgi import application

    token = await sync_to_async(tokens)()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        opened = await http.post("/mcp", json=INITIALIZE, headers=auth(token["olga"]))
        assert opened.status_code == 200, opened.text
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-06-18"}
        # Another team's operator with the id: as if there were no such session.
        for method, body in (("POST", PING), ("GET", None), ("DELETE", None)):
            theirs = await http.request(method, "/mcp", json=body, headers={**auth(token["bob"]), **session})
            assert theirs.status_code == 404, (method, theirs.status_code, theirs.text)
            assert theirs.json()["error"]["message"] == "Session not found"
        # The same user acting for another team (a token of beta) is another caller too.
        other_team = await sync_to_async(lambda: api_token(User.objects.get(username="olga"), "beta"))()
        assert (
            await http.post("/mcp", json=PING, headers={**auth(other_team), **session})
        ).status_code == 404
        mine = await http.post("/mcp", json=PING, headers={**auth(token["olga"]), **session})
        assert mine.status_code == 200 and '"result"' in mine.text
        assert (await http.delete("/mcp", headers={**auth(token["olga"]), **session})).status_code == 200
        gone = await http.post("/mcp", json=PING, headers={**auth(token["olga"]), **session})
        assert gone.status_code == 404


def auth(token: str) -> dict[str, str]:
    return {**MCP_HEADERS, "Content-Type": "application/json", "Authorization": f"Bearer {token}"}


# --- a real served process ----------------------------------------------------------------

SETUP = """
import json
from mcps.models import IngestKey
from missioncontrol.models import Team
from django.contrib.auth.models import Group, User
from missioncontrol.models import APIToken
out = {}
for slug in ("alpha", "beta"):
    team = Team.objects.create(name=slug.title(), slug=slug)
    user = User.objects.create_user(f"op-{slug}", password="x-pw-12345678")
    user.groups.add(Group.objects.get(name="operator"))
    user.teams.add(team)
    out[f"token-{slug}"] = APIToken.objects.issue(f"t-{slug}", user, team)[1]
    out[f"key-{slug}"] = IngestKey.objects.issue(f"k-{slug}", team=team)[1]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_two_teams_on_a_served_process(tmp_path: Path) -> None:
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_DEMO="0")

    manage(env, "migrate", "-v0", timeout=120)
    made = json.loads(manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
    port = free_port()
    server = Server(
        [sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp_path / "serve.log"
    )
    try:
        server.wait_healthy()
        alpha_thread = [
            event("thread.started", thread_id="T-a", mcp_id="srv", user_input="apple input"),
            event("log", thread_id="T-a", mcp_id="srv", message="apple log"),
        ]
        assert post_events(server.url, made["key-alpha"], alpha_thread)["accepted"] == 2
        beta_answer = post_events(
            server.url,
            made["key-beta"],
            [
                event("thread.step", thread_id="T-a", mcp_id="srv", sequence=5),
                event("log", thread_id="T-b", mcp_id="srv", message="banana log"),
            ],
        )
        assert [r["status"] for r in beta_answer["results"]] == ["rejected", "accepted"]
        assert beta_answer["results"][0]["reason"] == "thread 'T-a' belongs to another team"
        found = _served_mcp(server.url, made)
        assert found["alpha_logs"] == ["apple log"] and found["beta_logs"] == ["banana log"]
        assert found["beta_reads_t_a"] == "no thread 'T-a'"
        assert found["beta_deletes_alphas_session"] == 404
        assert found["alpha_still_in_its_session"] == 200
    finally:
        server.stop()


def _served_mcp(url: str, made: dict[str, str]) -> dict[str, Any]:
    import asyncio

    async def scenario() -> dict[str, Any]:
        found: dict[str, Any] = {}
        for slug in ("alpha", "beta"):
            async with mcp_client(made[f"token-{slug}"], "legacy", url) as client:
                logs = (await client.call_tool("missioncontrol__search_logs", {})).structured_content
                found[f"{slug}_logs"] = [log["message"] for log in logs["logs"]]
                if slug == "beta":
                    refused = await client.call_tool("missioncontrol__get_thread", {"thread_id": "T-a"})
                    found["beta_reads_t_a"] = refused.content[0].text
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            opened = await http.post("/mcp", json=INITIALIZE, headers=auth(made["token-alpha"]))
            session = {
                "Mcp-Session-Id": opened.headers["mcp-session-id"],
                "Mcp-Protocol-Version": "2025-06-18",
            }
            theirs = await http.delete("/mcp", headers={**auth(made["token-beta"]), **session})
            found["beta_deletes_alphas_session"] = theirs.status_code
            mine = await http.post("/mcp", json=PING, headers={**auth(made["token-alpha"]), **session})
            found["alpha_still_in_its_session"] = mine.status_code
        return found

    return asyncio.run(scenario())
