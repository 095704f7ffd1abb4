"""/health reports the database and the channel layer, and 503 when one is down."""

from __future__ import annotations

import pytest
from django.test import AsyncClient, override_settings

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_reports_ok_with_database_and_channel_layer_state() -> None:
    response = await AsyncClient().get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True and body["database"]["vendor"] in ("postgresql", "sqlite")
    assert body["channel_layer"]["ok"] is True


@override_settings(
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
        }
    }
)
async def test_it_answers_503_with_retry_after_when_the_channel_layer_is_down() -> None:
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)
    try:
        response = await AsyncClient().get("/health")
    finally:
        channel_layers.backends.pop("default", None)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["status"] == "degraded" and body["channel_layer"]["ok"] is False
    assert body["channel_layer"]["error"]
