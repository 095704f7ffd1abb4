"""Resumable live streams: a client that reconnects receives exactly what it missed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.layers import channel_layers

from missioncontrol import history
from tests.conftest import Socket, event, post_batch
from tests.faults import PrivateRedis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_memory_history() -> Iterator[None]:
    history.memory.reset()
    yield
    history.memory.reset()


async def push(key: str, *events: dict[str, Any]) -> None:
    response = await post_batch({"events": list(events)}, key)
    assert response.status_code == 200, response.content


async def subscribed_at(ws: Socket, channel: str) -> dict[str, Any]:
    """Subscribe afresh; the snapshot frame's position."""
    await ws.send(type="subscribe", channel=channel, payload={"history": 0}, request_id="s")
    assert (await ws.recv())["payload"] == {"subscribed": True}
    snapshot = await ws.recv()
    assert snapshot["type"] == "event" and "seq" in snapshot and "epoch" in snapshot, snapshot
    return {"epoch": snapshot["epoch"], "seq": snapshot["seq"]}


async def resume(ws: Socket, channel: str, at: dict[str, Any]) -> dict[str, Any]:
    await ws.send(type="subscribe", channel=channel, payload={"resume": at, "history": 0}, request_id="r")
    return await ws.recv()


async def test_live_event_frames_carry_consecutive_sequence_numbers(ingest_key: str) -> None:
    async with Socket() as ws:
        start = await subscribed_at(ws, "logs:*")
        for i in range(3):
            await push(ingest_key, event("log", message=f"m{i}"))
        frames = [await ws.recv() for _ in range(3)]
    assert [f["seq"] for f in frames] == [start["seq"] + 1, start["seq"] + 2, start["seq"] + 3]
    assert {f["epoch"] for f in frames} == {start["epoch"]}


async def test_a_resumed_subscription_receives_exactly_the_missed_events_in_order(ingest_key: str) -> None:
    async with Socket() as ws:
        at = await subscribed_at(ws, "logs:*")
        await push(ingest_key, event("log", id="seen"))
        seen = await ws.recv()
        assert [e["id"] for e in seen["payload"]["events"]] == ["seen"]
        at = {"epoch": seen["epoch"], "seq": seen["seq"]}
    missed = [f"missed-{i}" for i in range(12)]
    for i in range(0, 12, 2):  # six batches, while nobody listens
        await push(ingest_key, event("log", id=missed[i]), event("log", id=missed[i + 1]))
    async with Socket() as ws:
        ack = await resume(ws, "logs:*", at)
        assert ack["payload"] == {"subscribed": True, "resumed": True}
        frames = [await ws.recv() for _ in range(6)]
        assert await ws.nothing()
        assert [f["seq"] for f in frames] == list(range(at["seq"] + 1, at["seq"] + 7))
        assert [e["id"] for f in frames for e in f["payload"]["events"]] == missed
        await push(ingest_key, event("log", id="after"))
        (live,) = (await ws.recv())["payload"]["events"]
        assert live["id"] == "after"
        assert await ws.nothing()


async def test_resuming_on_several_channels_restores_each(ingest_key: str) -> None:
    async with Socket() as ws:
        at_logs = await subscribed_at(ws, "logs:*")
        at_thread = await subscribed_at(ws, "logs:T-7")
    await push(ingest_key, event("log", id="a", thread_id="T-7"), event("log", id="b"))
    async with Socket() as ws:
        assert (await resume(ws, "logs:*", at_logs))["payload"]["resumed"] is True
        assert [e["id"] for e in (await ws.recv())["payload"]["events"]] == ["a", "b"]
        assert (await resume(ws, "logs:T-7", at_thread))["payload"]["resumed"] is True
        assert [e["id"] for e in (await ws.recv())["payload"]["events"]] == ["a"]
        assert await ws.nothing()


async def test_a_gap_older_than_the_history_gets_a_resync_then_the_snapshot(
    ingest_key: str, settings: Any
) -> None:
    settings.WS_RESUME_HISTORY = 3
    async with Socket() as ws:
        at = await subscribed_at(ws, "logs:*")
    for i in range(5):
        await push(ingest_key, event("log", id=f"g{i}"))
    async with Socket() as ws:
        ack = await resume(ws, "logs:*", at)
        assert ack["payload"] == {"subscribed": True, "resumed": False}
        resync = await ws.recv()
        assert resync["type"] == "resync" and resync["channel"] == "logs:*"
        assert resync["payload"]["reason"] == "5 message(s) missed, more than the history keeps"
        assert resync["payload"]["seq"] == at["seq"] + 5
        snapshot = await ws.recv()
        assert snapshot["type"] == "event" and snapshot["seq"] == at["seq"] + 5


async def test_a_lost_history_gets_a_resync(ingest_key: str) -> None:
    async with Socket() as ws:
        at = await subscribed_at(ws, "logs:*")
        ack = await resume(ws, "logs:*", {"epoch": "not-" + at["epoch"], "seq": at["seq"]})
        assert ack["payload"]["resumed"] is False
        resync = await ws.recv()
        assert resync["type"] == "resync"
        assert resync["payload"]["epoch"] == at["epoch"]


async def test_a_malformed_resume_is_an_error_naming_the_field() -> None:
    async with Socket() as ws:
        await ws.send(type="subscribe", channel="global", payload={"resume": {"epoch": "e", "seq": -1}})
        error = await ws.recv()
    assert error["type"] == "error" and error["payload"]["field"] == "resume"
    assert error["payload"]["reason"].startswith("resume.seq:")


# --- Redis restarted under the live stream -------------------------------------------


@pytest.fixture(params=[True, False], ids=["persistent", "volatile"])
def private_redis(request: Any, tmp_path: Path, settings: Any) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path, persistent=request.param)
    server.start()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "missioncontrol.layers.PubSubChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{server.port}/0"], "prefix": "restart"},
        }
    }
    channel_layers.backends.clear()
    try:
        yield server
    finally:
        channel_layers.backends.clear()
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


async def test_clients_resume_across_a_redis_restart(ingest_key: str, private_redis: PrivateRedis) -> None:
    async with Socket() as ws:
        await subscribed_at(ws, "logs:*")
        await push(ingest_key, event("log", id="before"))
        seen = await ws.recv()
        at = {"epoch": seen["epoch"], "seq": seen["seq"]}
    private_redis.kill()
    private_redis.start()
    await push(ingest_key, event("log", id="after-1"))
    await push(ingest_key, event("log", id="after-2"))
    async with Socket() as ws:
        ack = await resume(ws, "logs:*", at)
        if private_redis.persistent:
            assert ack["payload"]["resumed"] is True
            frames = [await ws.recv(), await ws.recv()]
            assert [f["seq"] for f in frames] == [at["seq"] + 1, at["seq"] + 2]  # no gap
            assert [f["payload"]["events"][0]["id"] for f in frames] == ["after-1", "after-2"]
            await push(ingest_key, event("log", id="live-again"))
            live = await ws.recv()
            assert (live["seq"], live["payload"]["events"][0]["id"]) == (at["seq"] + 3, "live-again")
        else:
            assert ack["payload"]["resumed"] is False
            resync = await ws.recv()
            assert resync["type"] == "resync" and resync["payload"]["epoch"] != at["epoch"]


async def test_the_first_resume_after_a_redis_restart_is_answered_not_closed(
    ingest_key: str, private_redis: PrivateRedis
) -> None:
    async with Socket() as ws:
        at = await subscribed_at(ws, "logs:*")
    private_redis.kill()
    private_redis.start()
    # Nothing has used the layer's pooled connection since: the resume is the first command.
    async with Socket() as ws:
        ack = await resume(ws, "logs:*", at)
        assert ack["type"] == "response", ack
        if private_redis.persistent:
            assert ack["payload"] == {"subscribed": True, "resumed": True}
        else:
            assert ack["payload"] == {"subscribed": True, "resumed": False}
            assert (await ws.recv())["type"] == "resync"
