"""Two web processes on one PostgreSQL and Redis: ingest on one, receive on the other."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import event
from tests.processes import clean_env, daphne, free_port, receive_after_push

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.mark.skipif(
    connection.vendor != "postgresql" or not settings.REDIS_URL, reason="needs PostgreSQL and Redis"
)
def test_it_delivers_an_event_ingested_on_one_process_to_a_socket_on_another(
    tmp_path: Path, ingest_key: str
) -> None:
    db = connection.settings_dict
    env = clean_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY="scale-out",
        MC_CONN_MAX_AGE="0",
        MC_CHANNEL_PREFIX=os.environ.get("MC_CHANNEL_PREFIX", "mc"),
    )
    a = daphne(free_port(), env, tmp_path / "a.log")
    b = daphne(free_port(), env, tmp_path / "b.log")
    try:
        assert a.wait_healthy()["database"]["vendor"] == "postgresql"
        assert b.wait_healthy()["channel_layer"]["backend"] == "PubSubChannelLayer"

        _state, (started,) = receive_after_push(
            b.port,
            "thread:T-x",
            a.url,
            ingest_key,
            [event("thread.started", thread_id="T-x", user_input="scale")],
        )
        assert started["type"] == "thread.started" and started["user_input"] == "scale"
    finally:
        a.stop()
        b.stop()
