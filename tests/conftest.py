"""Shared fixtures: users and roles, ingest keys, event builders, a WebSocket helper, server processes.

Access: `client`, `async_client`, `Socket` and the /mcp helpers sign in as a
superuser by default (see `client`); the access tests use `anonymous_client`,
`Socket(anonymous=True)`, and the persona fixtures `viewer`, `operator`, `admin`
(members of team `alpha`) and `outsider` (a viewer in team `beta`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.test import AsyncClient, Client

from mcps.models import IngestKey, MCPServer
from missioncontrol.models import APIToken, Team

# Real MCP servers (repo, gateway); two_teams; the notification receivers (hook, inbox).
pytest_plugins = ["tests.mcp_servers", "tests.teams", "tests.receivers"]

BASE_TIME = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
_ids = itertools.count(1)


def at(seconds: float) -> str:
    """An ISO timestamp `seconds` after a fixed base, so order is explicit in tests."""
    return (BASE_TIME + timedelta(seconds=seconds)).isoformat()


def ago(seconds: float) -> str:
    """An ISO timestamp `seconds` before now: for data that a window ending now must hold
    (the last 24 hours of the escalation banner, the last 7 days of a report)."""
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def event(type_: str, seconds: float = 0, **fields: Any) -> dict[str, Any]:
    """A valid event of `type_` with sensible defaults; fields override them."""
    defaults: dict[str, dict[str, Any]] = {
        "thread.started": {"thread_id": "T-1", "user_input": "summarise the repo"},
        "thread.step": {
            "thread_id": "T-1",
            "sequence": 1,
            "step_type": "tool_call",
            "description": "git log",
        },
        "thread.message": {"thread_id": "T-1", "role": "user", "content": "hello"},
        "thread.ended": {"thread_id": "T-1", "status": "complete"},
        "log": {"level": "INFO", "service": "executor", "message": "tool finished"},
        "permission.check": {
            "thread_id": "T-1",
            "user_id": "alice",
            "resource": "git/commit",
            "action": "execute",
            "granted": True,
        },
        "session.ended": {"session_id": "S-1"},
    }
    body: dict[str, Any] = {"id": f"ev-{next(_ids)}", "type": type_, "timestamp": at(seconds)}
    body.update(defaults[type_])
    body.update(fields)
    return body


def store(*events: dict[str, Any], mcp_id: str | None = None) -> None:
    """Store `events` through the ingest pipeline, as pushed by an unbound ingest key."""
    from missioncontrol.ingest.events import Source
    from missioncontrol.ingest.pipeline import ingest

    result = ingest(list(events), Source(mcp_id=mcp_id))
    assert all(v.status == "accepted" for v in result.verdicts), result.verdicts


def result_ids(response: Any) -> list[str]:
    """The ids of a successful list response's `results`, in order."""
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# Modules whose outcomes depend on the date: windows that end now (reports, banners,
# retention, escalation and anomaly windows, schedules, sweeps) and data at fixed dates.
# `make test-clock` runs them again with the clock a year ahead and a year back
# (tests/clock/sitecustomize.py), so a test that only passes near the day it was
# written fails at once. A new module of that kind joins this list.
DATED_MODULES = {
    "test_access",
    "test_archive_s3",
    "test_automation_models",
    "test_automations",
    "test_compliance",
    "test_directive_embedded",
    "test_escalation",
    "test_graph",
    "test_graphql",
    "test_graphql_automations",
    "test_health_monitor",
    "test_isolation_directives",
    "test_isolation_export",
    "test_log_partitions",
    "test_logs_api",
    "test_notifications",
    "test_overview",
    "test_pages",
    "test_pages_browser",
    "test_permissions_api",
    "test_policies",
    "test_retention",
    "test_retention_per_server",
    "test_saved_views",
    "test_search_api",
    "test_system_directives",
    "test_system_scripts",
    "test_task_runs",
    "test_threads_api",
    "test_usage",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__.rpartition(".")[2] in DATED_MODULES:
            item.add_marker(pytest.mark.clock)


@pytest.fixture(autouse=True, scope="session")
def _no_system_directives_on_migrate() -> None:
    """Test databases start with no directive; tests about the system ones load them."""
    from django.conf import settings

    settings.LOAD_SYSTEM_DIRECTIVES = False


@pytest.fixture(autouse=True)
def _no_embedded_gateway(settings: Any) -> None:
    """Tests that need a gateway (or the scheduler) start their own, on their own event loop."""
    settings.GATEWAY_EMBEDDED = False
    settings.SCHEDULE_IN_PROCESS = False
    settings.GATEWAY_MONITOR = False


@pytest.fixture(autouse=True)
def _own_spool(settings: Any, tmp_path: Any) -> None:
    """Each test spools into a directory of its own; tests drain it themselves."""
    settings.SPOOL_DIR = tmp_path / "spool"
    settings.SPOOL_DRAIN_IN_PROCESS = False


@pytest.fixture(autouse=True)
def _eager_celery(settings: Any) -> None:
    """Tasks run where they are handed over (directive runs included), Redis or not."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture(autouse=True)
def _fresh_policy_rules() -> None:
    """Each test starts from the rules in its database: a flushed database (a
    transactional test) sends no signal, so the per-process rule cache is told here."""
    from audit.policy import policies

    policies.invalidate()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Users are made in many tests; the production hasher's cost is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_server_registry() -> Iterator[None]:
    """Each test starts with no memory of servers registered by an earlier one."""
    MCPServer.objects.forget_registered()
    yield
    MCPServer.objects.forget_registered()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """Each test starts with no requests counted against the rate limits."""
    from missioncontrol.ratelimit import limiter, sockets

    limiter().reset()
    sockets().reset()
    yield
    limiter().reset()
    sockets().reset()


@pytest.fixture
def server(db: None) -> MCPServer:
    return MCPServer.objects.create(id="srv-alpha", name="alpha")


@pytest.fixture
def ingest_key(server: MCPServer) -> str:
    """A raw ingest key bound to server srv-alpha."""
    _key, raw = IngestKey.objects.issue("alpha-key", server)
    return raw


@pytest.fixture
def open_key(db: None) -> str:
    """A raw ingest key bound to no server: events must name their mcp_id."""
    _key, raw = IngestKey.objects.issue("open-key")
    return raw


# --- users, roles, teams, tokens ------------------------------------------------------

SUPERUSER = "root"
# What a request signed in by session costs before its view runs: the session, its
# user. Tests that count a view's queries add it.
AUTH_QUERIES = 2


def superuser_now() -> User:
    """The superuser the default clients sign in as (made on first use in a test)."""
    user = User.objects.filter(username=SUPERUSER).first()
    return user or User.objects.create_superuser(SUPERUSER, "root@example.com", "root-pw-1234")


def team(slug: str) -> Team:
    return Team.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0]


def make_user(name: str, role: str | None, *teams: str) -> User:
    """A user with `role` (a group made by the roles migration) in `teams`."""
    user = User.objects.create_user(name, f"{name}@example.com", f"{name}-pw-1234")
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    user.teams.set([team(slug) for slug in teams])
    return user


def api_token(user: User, team_slug: str | None = None) -> str:
    """A raw API token acting as `user` for `team_slug`."""
    _token, raw = APIToken.objects.issue(
        f"token-{user.username}-{team_slug}", user, team(team_slug) if team_slug else None
    )
    return raw


def access_token(user: User) -> str:
    """A JWT access token for `user`."""
    from rest_framework_simplejwt.tokens import AccessToken

    return str(AccessToken.for_user(user))


def signed_in(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def superuser(db: None) -> User:
    return superuser_now()


@pytest.fixture
def client(superuser: User) -> Client:
    """pytest-django's `client`, signed in as a superuser.

    Most tests are about behaviour (what a list filters, what a call returns), not about
    access, and everything but /health and ingest needs a signed-in user: signing in as
    a superuser here keeps them about what they test. Access is tested on purpose with
    `anonymous_client` and the persona fixtures (tests/test_access.py).
    """
    return signed_in(superuser)


@pytest.fixture
def async_client(superuser: User) -> AsyncClient:
    """pytest-django's `async_client`, signed in as a superuser (see `client`)."""
    c = AsyncClient()
    c.force_login(superuser)
    return c


@pytest.fixture
def anonymous_client() -> Client:
    return Client()


@pytest.fixture
def viewer(db: None) -> User:
    return make_user("victor", "viewer", "alpha")


@pytest.fixture
def operator(db: None) -> User:
    return make_user("olga", "operator", "alpha")


@pytest.fixture
def admin(db: None) -> User:
    return make_user("ada", "admin", "alpha")


@pytest.fixture
def outsider(db: None) -> User:
    """A viewer of another team, beta."""
    return make_user("bob", "viewer", "beta")


@pytest.fixture
def admin_token(superuser: User) -> str:
    """A raw API token of the superuser (what the /mcp helpers carry by default)."""
    return api_token(superuser)


_AS_SUPERUSER = object()


class _SigningCommunicator(WebsocketCommunicator):
    """Signs in (`?token=`) just before connecting, when the database is at hand."""

    def __init__(
        self, application: Any, credential: Any, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(application, "/ws/", headers=headers)
        self.credential = credential

    async def connect(self, timeout: float = 1) -> Any:
        token = await database_sync_to_async(self._token)()
        if token:
            self.scope["query_string"] = f"token={token}".encode()
        return await super().connect(timeout)

    def _token(self) -> str | None:
        credential = self.credential
        if credential is None or isinstance(credential, str):
            return credential  # nothing, or a raw token
        return access_token(superuser_now() if credential is _AS_SUPERUSER else credential)


class Socket:
    """A WebsocketCommunicator speaking the contract's JSON frames.

    Signed in as the superuser by default; `Socket(user=u)` as `u` (a JWT),
    `Socket(token=raw)` with that token, `Socket(anonymous=True)` with nothing.
    `headers` (name, value) are sent with the handshake (an Origin, say); `client` is
    the peer's (address, port).
    """

    def __init__(
        self,
        headers: list[tuple[bytes, bytes]] | None = None,
        client: tuple[str, int] | None = None,
        *,
        user: User | None = None,
        token: str | None = None,
        anonymous: bool = False,
    ) -> None:
        from missioncontrol.asgi import application

        credential: Any = None if anonymous else token or user or _AS_SUPERUSER
        self.comm = _SigningCommunicator(application, credential, headers)
        if client is not None:
            self.comm.scope["client"] = client

    async def __aenter__(self) -> Socket:
        connected, _ = await self.comm.connect()
        assert connected
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.comm.disconnect()

    async def send(self, **frame: Any) -> None:
        await self.comm.send_to(text_data=json.dumps(frame))

    async def recv(self, timeout: float = 3) -> dict[str, Any]:
        return json.loads(await self.comm.receive_from(timeout=timeout))

    async def subscribe(self, channel: str, **payload: Any) -> list[dict[str, Any]]:
        """Subscribe; return the snapshot events that follow the acknowledgement."""
        await self.send(type="subscribe", channel=channel, payload=payload, request_id=channel)
        ack = await self.recv()
        assert ack["type"] == "response" and ack["payload"] == {"subscribed": True}, ack
        snapshot = await self.recv()
        assert snapshot["type"] == "event" and snapshot["channel"] == channel, snapshot
        return snapshot["payload"]["events"]

    async def events(self, channel: str, timeout: float = 3) -> list[dict[str, Any]]:
        frame = await self.recv(timeout)
        assert frame["type"] == "event" and frame["channel"] == channel, frame
        return frame["payload"]["events"]

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.comm.receive_nothing(timeout=timeout)


@pytest.fixture
def socket() -> Iterator[type[Socket]]:
    yield Socket


async def post_batch(
    body: Any, key: str | None, *, raw: bool = False, method: str = "POST"
) -> httpx.Response:
    """Send a batch to /api/ingest/events through the ASGI application, as daphne would."""
    from missioncontrol.asgi import application

    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    content = body if raw else json.dumps(body)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, "/api/ingest/events", content=content, headers=headers)
