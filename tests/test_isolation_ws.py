"""The WebSocket keeps teams apart: subscriptions, queries, snapshots and live events.

Victor (alpha) and bob (beta) on `/ws/`, over `two_teams_committed` (T-a of alpha, T-b
of beta, T-none of no team): another team's `thread:`, `logs:` and `permission:`
channels answer "no thread" to a subscribe and to a query alike; snapshots and live
events on the shared channels (`global`, `mcp:*`, `logs:*`) hold only what each may see.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import Socket, event
from tests.teams import send, team_keys

pytestmark = pytest.mark.django_db(transaction=True)

THEIRS = ("thread:T-b", "logs:T-b", "permission:T-b", "thread:T-none", "logs:T-none")


async def victor() -> User:
    return await User.objects.aget(username="victor")


async def test_a_team_can_neither_subscribe_to_nor_query_another_teams_thread(
    two_teams_committed: None,
) -> None:
    async with Socket(user=await victor()) as ws:
        for kind in ("subscribe", "query"):
            for channel in THEIRS:
                await ws.send(type=kind, channel=channel, request_id="r")
                refused = await ws.recv()
                reason = f"no thread {channel.partition(':')[2]!r}"
                assert refused["type"] == "error" and refused["payload"]["reason"] == reason, refused
        state = await ws.subscribe("thread:T-a")
        assert state[0]["thread"]["id"] == "T-a"
        await ws.send(type="query", channel="permission:T-a", request_id="q")
        checks = (await ws.recv())["payload"]["events"]
        assert [c["id"] for c in checks] == ["check-T-a"]


async def test_snapshots_of_shared_channels_hold_only_the_teams_rows(two_teams_committed: None) -> None:
    async with Socket(user=await victor()) as mine, Socket() as root:
        assert [t["id"] for t in (await mine.subscribe("global"))[0]["threads"]] == ["T-a"]
        assert {e["id"] for e in await mine.subscribe("logs:*")} == {"log-T-a", "free-a"}
        assert {t["id"] for t in (await mine.subscribe("mcp:srv-alpha"))[0]["active_threads"]} == {"T-a"}
        everyone = {e["id"] for e in await root.subscribe("logs:*")}
        assert {"log-T-a", "log-T-b", "log-T-none", "free-b"} <= everyone


async def test_live_events_reach_only_the_teams_that_may_see_them(two_teams_committed: None) -> None:
    alpha_key, beta_key = await sync_to_async(team_keys)()
    outsider = await sync_to_async(lambda: _bob())()
    async with Socket(user=await victor()) as mine, Socket(user=outsider) as theirs, Socket() as root:
        await mine.subscribe("logs:*")
        await root.subscribe("logs:*")
        await theirs.subscribe("logs:*")
        await send(beta_key, event("log", id="b-live", message="banana live"))
        await send(alpha_key, event("log", id="a-live", message="apple live"))
        assert [e["id"] for e in await root.events("logs:*")] == ["b-live"]
        assert [e["id"] for e in await root.events("logs:*")] == ["a-live"]
        assert [e["id"] for e in await mine.events("logs:*")] == ["a-live"]
        assert [e["id"] for e in await theirs.events("logs:*")] == ["b-live"]
        await mine.subscribe("global")
        await send(beta_key, event("thread.started", thread_id="T-b2"))
        await send(alpha_key, event("thread.started", thread_id="T-a2"))
        assert [e["thread_id"] for e in await mine.events("global")] == ["T-a2"]
        assert await mine.nothing()


async def test_a_thread_channel_hears_nothing_another_team_tried_to_write(
    two_teams_committed: None,
) -> None:
    _alpha_key, beta_key = await sync_to_async(team_keys)()
    async with Socket(user=await victor()) as ws:
        await ws.subscribe("thread:T-a")
        await ws.subscribe("logs:T-a")
        answer = await _post(beta_key, event("thread.step", thread_id="T-a", sequence=9, mcp_id="srv-alpha"))
        assert answer["rejected"] == 1
        assert await ws.nothing()
        # A server's own log line about T-a (tailed by Mission Control) is alpha's to read.
        await sync_to_async(_tailed)()
        assert [e["id"] for e in await ws.events("logs:T-a")] == ["tailed"]


def _bob() -> User:
    from tests.conftest import make_user

    return make_user("bob", "viewer", "beta")


def _tailed() -> None:
    from asgiref.sync import async_to_sync

    result = ingest([event("log", id="tailed", thread_id="T-a")], Source(mcp_id="srv-alpha", system=True))
    async_to_sync(result.outbox.send)()


async def _post(key: str, *events: dict[str, object]) -> dict[str, object]:
    from tests.conftest import post_batch

    return (await post_batch({"events": list(events)}, key)).json()  # type: ignore[no-any-return]
