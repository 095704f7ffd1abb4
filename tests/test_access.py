"""Who may see and do what: authentication, roles and team visibility on every surface.

Personas (tests/conftest.py): victor (viewer), olga (operator) and ada (admin) in team
alpha; bob (viewer) in team beta; the superuser root. Rows of team alpha come from an
alpha ingest key, rows of beta from a beta key, and one thread has no team at all.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from audit.models import AccessEvent
from mcps.models import IngestKey
from missioncontrol import roles
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from missioncontrol.models import APIToken, Team
from tests.conftest import (
    Socket,
    access_token,
    api_token,
    event,
    make_user,
    post_batch,
    signed_in,
)
from tests.teams import ids
from threads.models import Thread

pytestmark = pytest.mark.django_db


# --- anonymous -------------------------------------------------------------------------

ANONYMOUS_REFUSED = [
    ("get", "/api/threads"),
    ("get", "/api/threads/T-a"),
    ("get", "/api/logs"),
    ("get", "/api/logs/export"),
    ("get", "/api/permissions/audit"),
    ("get", "/api/permissions/compliance"),
    ("get", "/api/permissions/compliance?format=csv"),
    ("get", "/api/mcps"),
    ("post", "/api/mcps"),
    ("post", "/api/mcps/srv-alpha/reconnect"),
    ("post", "/api/mcps/srv-alpha/tools/t/call"),
    ("get", "/api/search?q=apple"),
    ("get", "/api/graph/entities"),
    ("get", "/api/views"),
    ("get", "/api/tokens"),
    ("get", "/api/audit/access"),
    ("get", "/api/schema/"),
    ("post", "/graphql"),
]


@pytest.mark.parametrize(("method", "url"), ANONYMOUS_REFUSED)
def test_anonymous_callers_get_401_with_a_json_reason(
    anonymous_client: Client, method: str, url: str
) -> None:
    response = getattr(anonymous_client, method)(url)
    assert response.status_code == 401, (url, response.status_code)
    assert response["WWW-Authenticate"].startswith("Bearer")
    if response["Content-Type"] == "application/json":  # the schema answers in its own type
        assert response.json()["detail"]


def test_anonymous_browsers_are_sent_to_the_login_page(anonymous_client: Client) -> None:
    response = anonymous_client.get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/"
    assert anonymous_client.get("/accounts/login/").status_code == 200


def test_health_needs_no_one(anonymous_client: Client) -> None:
    assert anonymous_client.get("/health").status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_ingest_takes_its_key_and_nothing_else(ingest_key: str) -> None:
    assert (await post_batch({"events": [event("log")]}, ingest_key)).status_code == 200
    jwt = await sync_to_async(lambda: access_token(make_user("eve", "admin")))()
    assert (await post_batch({"events": [event("log")]}, jwt)).status_code == 401


# --- roles ------------------------------------------------------------------------------


def test_the_roles_migration_made_the_groups_the_code_describes() -> None:
    for role, permissions in roles.ROLES.items():
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert held == set(permissions), role


@pytest.mark.parametrize(
    ("persona", "read", "call", "reconnect", "register"),
    [
        ("viewer", 200, 403, 403, 403),
        ("operator", 200, 404, 404, 403),  # 404: allowed, and the server is unknown
        ("admin", 200, 404, 404, 400),  # 400: allowed, and the entry is empty
    ],
)
def test_each_role_may_do_what_it_is_for(
    request: pytest.FixtureRequest, persona: str, read: int, call: int, reconnect: int, register: int
) -> None:
    browser = signed_in(request.getfixturevalue(persona))
    assert browser.get("/api/threads").status_code == read
    assert browser.get("/api/mcps").status_code == read
    assert browser.post("/api/mcps/nope/tools/t/call", {}, "application/json").status_code == call
    assert browser.post("/api/mcps/nope/reconnect").status_code == reconnect
    assert browser.post("/api/mcps", {}, "application/json").status_code == register


def test_a_user_without_a_role_reads_nothing() -> None:
    browser = signed_in(make_user("nobody", None, "alpha"))
    assert browser.get("/api/threads").status_code == 403
    assert browser.get("/api/logs/export").status_code == 403


PAGES = ["/", "/threads", "/threads/T-a", "/logs", "/permissions", "/permissions/compliance", "/servers"]
EXPORTS = [
    "/api/logs/export?format=csv",
    "/api/permissions/compliance?format=csv",
    "/api/permissions/compliance",
]


@pytest.mark.parametrize(("role", "read"), [(None, 403), ("viewer", 200), ("operator", 200), ("admin", 200)])
def test_each_role_on_the_pages_graphql_and_the_exports(two_teams: None, role: str | None, read: int) -> None:
    # A user without a role is refused everywhere (its teams' rows would show otherwise);
    # every role reads. What each role may *do* is asked of REST above, of /mcp and the
    # WebSocket in test_access_mcp.
    browser = signed_in(make_user("someone", role, "alpha"))
    for url in PAGES + EXPORTS:
        response = browser.get(url)
        assert response.status_code == read, (url, response.status_code)
    if role is None:
        assert b"no role" in browser.get("/threads").content
    graphql = browser.post("/graphql", {"query": "{ threads { totalCount } }"}, "application/json")
    assert graphql.status_code == read
    if read == 200:
        expected = 3 if role == "admin" else 1  # an admin sees every team's, and T-none
        assert graphql.json()["data"]["threads"]["totalCount"] == expected


def test_only_admins_issue_tokens_and_read_the_access_audit(viewer: User, admin: User) -> None:
    assert signed_in(viewer).get("/api/tokens").status_code == 403
    assert signed_in(viewer).get("/api/audit/access").status_code == 403
    assert signed_in(admin).get("/api/tokens").status_code == 200
    assert signed_in(admin).get("/api/audit/access").status_code == 200


def test_a_viewer_may_query_graphql_but_sees_no_other_teams_rows(two_teams: None, viewer: User) -> None:
    body = {"query": '{ threads { results { id } } thread(id: "T-b") { id } logs { totalCount } }'}
    response = signed_in(viewer).post("/graphql", body, "application/json")
    data = response.json()["data"]
    assert {t["id"] for t in data["threads"]["results"]} == {"T-a"}
    assert data["thread"] is None
    assert data["logs"]["totalCount"] == 2  # its thread's log and its team's own


# --- teams ------------------------------------------------------------------------------


def test_a_team_sees_its_own_rows_on_every_list(two_teams: None, viewer: User) -> None:
    browser = signed_in(viewer)
    assert ids(browser.get("/api/threads")) == {"T-a"}
    assert ids(browser.get("/api/logs")) == {"log-T-a", "free-a"}
    assert ids(browser.get("/api/permissions/audit")) == {"check-T-a"}


def test_another_teams_thread_is_not_found(two_teams: None, viewer: User) -> None:
    browser = signed_in(viewer)
    for url in (
        "/api/threads/T-b",
        "/api/threads/T-b/timeline",
        "/api/threads/T-b/transcript",
        "/api/threads/T-b/children",
        "/api/logs/log-T-b",
        "/api/permissions/audit/T-b",
    ):
        assert browser.get(url).status_code == 404, url
    assert browser.get("/api/threads/T-a").status_code == 200


def test_rows_of_no_team_are_for_admins_only(two_teams: None, viewer: User, admin: User) -> None:
    assert signed_in(viewer).get("/api/threads/T-none").status_code == 404
    assert ids(signed_in(admin).get("/api/threads")) == {"T-a", "T-b", "T-none"}


def test_search_finds_nothing_of_another_team(two_teams: None, viewer: User, outsider: User) -> None:
    found = signed_in(viewer).get("/api/search?q=banana").json()
    assert found["results"] == [] and not any(found["counts"].values())
    theirs = signed_in(outsider).get("/api/search?q=banana").json()
    assert {hit["kind"] for hit in theirs["results"]} == {"thread", "log", "message", "step", "permission"}


def test_the_graph_shows_only_visible_threads(two_teams: None, viewer: User) -> None:
    browser = signed_in(viewer)
    entities = browser.get("/api/graph/entities?kind=thread").json()
    assert {e["id"] for e in entities["results"]} == {"thread:T-a"}
    assert browser.get("/api/graph/relationships?entity=thread:T-b").status_code == 404


# --- WebSocket --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_socket_without_credentials_is_told_and_closed_with_4401() -> None:
    for socket in (Socket(anonymous=True), Socket(token="not-a-token")):
        connected, _ = await socket.comm.connect()
        assert connected
        refusal = await socket.recv()
        assert refusal["type"] == "error" and refusal["payload"]["field"] == "token"
        assert (await socket.comm.receive_output(timeout=3))["code"] == 4401


@pytest.mark.django_db(transaction=True)
async def test_a_socket_of_a_user_with_no_role_is_closed_with_4403() -> None:
    nobody = await sync_to_async(make_user)("nobody", None)
    socket = Socket(user=nobody)
    await socket.comm.connect()
    assert (await socket.recv())["type"] == "error"
    assert (await socket.comm.receive_output(timeout=3))["code"] == 4403


@pytest.mark.django_db(transaction=True)
async def test_a_viewer_may_not_send_commands_on_the_socket(two_teams_committed: None) -> None:
    viewer = await sync_to_async(User.objects.get)(username="victor")
    async with Socket(user=viewer) as ws:
        for command in ("call_tool", "reconnect"):
            await ws.send(type="command", channel="mcp:srv-alpha", payload={"command": command, "tool": "t"})
            refused = await ws.recv()
            assert refused["type"] == "error" and refused["payload"]["status"] == 403, refused
    denied = await sync_to_async(list)(AccessEvent.objects.filter(actor_name="victor", outcome="denied"))
    assert {e.action for e in denied} == {"tool.call", "server.reconnect"}


# --- JWT and API tokens -----------------------------------------------------------------


def test_a_jwt_pair_is_obtained_refreshed_and_accepted(anonymous_client: Client, viewer: User) -> None:
    pair = anonymous_client.post(
        "/api/auth/token/", {"username": "victor", "password": "victor-pw-1234"}, "application/json"
    ).json()
    bearer = Client(headers={"Authorization": f"Bearer {pair['access']}"})
    assert bearer.get("/api/threads").status_code == 200
    assert bearer.get("/api/auth/me").json() == {
        "username": "victor",
        "role": "viewer",
        "teams": ["alpha"],
        "sees_all_teams": False,
    }
    fresh = anonymous_client.post(
        "/api/auth/token/refresh/", {"refresh": pair["refresh"]}, "application/json"
    )
    assert (
        Client(headers={"Authorization": f"Bearer {fresh.json()['access']}"}).get("/api/logs").status_code
        == 200
    )
    actions = list(AccessEvent.objects.filter(actor=viewer).values_list("action", flat=True))
    assert sorted(actions) == ["token.issued", "token.refreshed"]


def test_a_wrong_password_gets_no_token_and_is_recorded(anonymous_client: Client, viewer: User) -> None:
    response = anonymous_client.post(
        "/api/auth/token/", {"username": "victor", "password": "guess"}, "application/json"
    )
    assert response.status_code == 401
    failed = AccessEvent.objects.get(action="login.failed")
    assert (failed.actor_name, failed.outcome) == ("victor", "failure")


def test_an_expired_or_forged_jwt_is_refused(viewer: User) -> None:
    expired = AccessToken.for_user(viewer)
    expired.set_exp(lifetime=-timedelta(seconds=1))
    forged = access_token(viewer)[:-4] + "AAAA"
    for token in (str(expired), forged):
        response = Client(headers={"Authorization": f"Bearer {token}"}).get("/api/threads")
        assert response.status_code == 401


def test_an_api_token_is_shown_once_works_until_revoked(admin: User, operator: User) -> None:
    browser = signed_in(admin)
    issued = browser.post("/api/tokens", {"name": "ci", "owner": "olga", "team": "alpha"}, "application/json")
    assert issued.status_code == 201, issued.content
    raw = issued.json()["token"]
    assert (
        raw.startswith("mct_") and browser.get(f"/api/tokens/{issued.json()['id']}").json()["token"] is None
    )
    agent = Client(headers={"Authorization": f"Bearer {raw}"})
    assert agent.get("/api/threads").status_code == 200
    assert agent.get("/api/auth/me").json()["username"] == "olga"
    assert browser.post(f"/api/tokens/{issued.json()['id']}/revoke").status_code == 200
    assert agent.get("/api/threads").status_code == 401


def test_an_api_tokens_use_is_recorded_once_a_minute(viewer: User) -> None:
    agent = Client(headers={"Authorization": f"Bearer {api_token(viewer, 'alpha')}"})
    for _ in range(3):
        assert agent.get("/api/threads").status_code == 200
    used = AccessEvent.objects.filter(action="token.used")
    assert used.count() == 1 and used.get().actor == viewer
    assert APIToken.objects.get(owner=viewer).last_used_at is not None


@pytest.mark.parametrize("kind", ["api token", "ingest key"])
def test_of_two_requests_holding_a_secret_unused_for_a_minute_only_one_writes_its_use(
    viewer: User, kind: str
) -> None:
    secret: APIToken | IngestKey
    secret, _ = APIToken.objects.issue("ci", viewer) if kind == "api token" else IngestKey.objects.issue("ci")
    model = type(secret)
    first, second = model.objects.get(pk=secret.pk), model.objects.get(pk=secret.pk)
    assert first.touch() is True
    assert second.touch() is False  # its copy still says unused; the row says used just now
    assert first.touch() is False
    model.objects.filter(pk=secret.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    assert model.objects.get(pk=secret.pk).touch() is True


# --- the access audit -------------------------------------------------------------------


def test_logins_and_failed_logins_are_recorded(anonymous_client: Client, viewer: User, admin: User) -> None:
    anonymous_client.post("/accounts/login/", {"username": "victor", "password": "wrong"})
    anonymous_client.post("/accounts/login/", {"username": "victor", "password": "victor-pw-1234"})
    audit = signed_in(admin).get("/api/audit/access?actor=victor").json()["results"]
    assert [(e["action"], e["outcome"]) for e in audit] == [("login", "success"), ("login.failed", "failure")]
    assert audit[0]["ip"] == "127.0.0.1"
    only_failures = signed_in(admin).get("/api/audit/access?action=login.failed").json()["results"]
    assert [e["actor"] for e in only_failures] == ["victor"]


# --- commands ---------------------------------------------------------------------------


def test_create_user_makes_a_user_with_a_role_and_teams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAROL_PW", "a-long-enough-secret-42")
    call_command(
        "create_user", "carol", "--role", "operator", "--team", "gamma", "--password-from-env", "CAROL_PW"
    )
    carol = User.objects.get(username="carol")
    assert roles.role_of(carol) == roles.Role.OPERATOR and carol.check_password("a-long-enough-secret-42")
    assert [t.slug for t in carol.teams.all()] == ["gamma"]
    call_command("create_user", "carol", "--role", "viewer")
    assert roles.role_of(User.objects.get(username="carol")) == roles.Role.VIEWER


def test_create_api_token_prints_the_token_alone_on_its_last_line(
    viewer: User, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("create_api_token", "laptop", "--user", "victor")
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    token = APIToken.objects.authenticate(raw)
    assert token is not None and token.owner == viewer and token.team.slug == "alpha"


def test_json_errors_say_why(anonymous_client: Client) -> None:
    body = json.loads(anonymous_client.get("/api/threads").content)
    assert body == {"detail": "Authentication credentials were not provided."}


def test_the_schema_documents_how_to_sign_in(admin: User) -> None:
    schema = signed_in(admin).get("/api/schema/?format=json").json()
    assert {"apiToken", "jwtAuth", "cookieAuth", "ingestKey"} <= set(schema["components"]["securitySchemes"])
    for path, method in (("/api/threads", "get"), ("/api/mcps/{mcp_id}/tools/{tool}/call", "post")):
        operation = schema["paths"][path][method]
        assert {"apiToken": []} in operation["security"] and {"401", "403"} <= set(operation["responses"])
    assert "403" not in schema["paths"]["/api/ingest/events"]["post"]["responses"]


@pytest.mark.django_db
def test_events_of_a_team_deleted_on_their_way_are_stored_without_a_team() -> None:
    gone = Team.objects.create(name="Gone", slug="gone")
    team_id = gone.pk
    gone.delete()
    result = ingest([event("thread.started", thread_id="T-late")], Source(mcp_id="srv-x", team_id=team_id))
    assert [v.status for v in result.verdicts] == ["accepted"]
    assert Thread.objects.get(id="T-late").team_id is None
