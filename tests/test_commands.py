"""Management commands of the contract."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from mcps.models import IngestKey, MCPServer

pytestmark = pytest.mark.django_db


def test_it_prints_the_new_ingest_key_alone_on_the_last_line() -> None:
    out, err = StringIO(), StringIO()
    call_command("create_ingest_key", "laptop", "--mcp", "srv-laptop", stdout=out, stderr=err)
    raw = out.getvalue().strip().splitlines()[-1]
    assert raw.startswith("mc_") and " " not in raw
    key = IngestKey.objects.authenticate(raw)
    assert key is not None and key.name == "laptop" and key.mcp_id == "srv-laptop"
    assert MCPServer.objects.filter(id="srv-laptop").exists()
    assert raw not in key.key_hash  # stored hashed


def test_it_refuses_a_second_key_with_the_same_name() -> None:
    call_command("create_ingest_key", "laptop", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="exists"):
        call_command("create_ingest_key", "laptop", stdout=StringIO(), stderr=StringIO())


@override_settings(REDIS_URL=None)
def test_serve_refuses_several_workers_without_redis() -> None:
    with pytest.raises(CommandError, match="server.workers: 2 needs REDIS_URL"):
        call_command("serve", "--workers", "2")


def test_serve_refuses_zero_workers() -> None:
    with pytest.raises(CommandError, match="workers: expected an integer >= 1"):
        call_command("serve", "--workers", "0")
