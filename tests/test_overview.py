"""The overview page shows recent threads and servers and opens the live stream."""

from __future__ import annotations

import pytest
from django.test import Client

from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import event

pytestmark = pytest.mark.django_db


def test_it_guides_a_new_user_to_push_events(admin_client: Client) -> None:
    page = admin_client.get("/").content.decode()
    assert "No thread yet" in page and "create_ingest_key" in page


def test_it_lists_recent_threads_with_status_and_server(admin_client: Client, ingest_key: str) -> None:
    ingest(
        [
            event("thread.started", thread_id="T-view", user_input="deploy the site"),
            event("thread.ended", 1, thread_id="T-view", status="error"),
        ],
        Source(mcp_id="srv-alpha"),
    )
    page = admin_client.get("/").content.decode()
    assert "T-view" in page and "deploy the site" in page and "status-error" in page and "srv-alpha" in page
    assert "/static/mc/live.js" in page
