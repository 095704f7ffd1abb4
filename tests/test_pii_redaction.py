"""Personal data (e-mails, card numbers passing Luhn, US SSNs) is masked at ingest when
configured, like secrets; off by default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from logs.models import LogEntry
from missioncontrol.config import PII_KINDS, ConfigError, RedactionConfig, parse_config
from missioncontrol.redaction import build, luhn
from tests.conftest import event, store
from threads.models import ExecutionStep

ROOT = Path(__file__).resolve().parent.parent
TEXT = "mail alice.smith@example.com, card 4111 1111 1111 1111, ssn 123-45-6789, order 4111111111111112"


def test_luhn_accepts_card_numbers_and_refuses_their_neighbours() -> None:
    assert luhn("4111 1111 1111 1111") and luhn("5500-0000-0000-0004") and luhn("378282246310005")
    assert not luhn("4111 1111 1111 1112") and not luhn("1234") and not luhn("4" * 20)


def test_each_kind_is_masked_only_when_listed() -> None:
    everything = build(RedactionConfig(pii=PII_KINDS))
    assert everything is not None
    assert everything.text(TEXT) == "mail ***, card ***, ssn ***, order 4111111111111112"
    emails = build(RedactionConfig(pii=("email",)))
    assert emails is not None
    assert emails.text(TEXT) == TEXT.replace("alice.smith@example.com", "***")
    off = build(RedactionConfig())
    assert off is not None and off.text(TEXT) == TEXT


@pytest.mark.parametrize(
    "kept",
    [
        "ssn-like 000-12-3456 or 666-12-3456 or 900-12-3456",
        "phone 555-123-4567 and date 2026-12-07",
        "timestamp 20261207100000",
        "not an address: @mention and a@b",
    ],
)
def test_look_alikes_are_kept(kept: str) -> None:
    redactor = build(RedactionConfig(pii=PII_KINDS))
    assert redactor is not None and redactor.text(kept) == kept


def test_the_config_names_a_bad_pii_value() -> None:
    assert parse_config({"redaction": {"pii": True}}).redaction.pii == PII_KINDS
    assert parse_config({"redaction": {"pii": ["card"]}}).redaction.pii == ("card",)
    assert parse_config({}).redaction.pii == ()
    with pytest.raises(ConfigError, match="redaction.pii: unknown kind 'phone'"):
        parse_config({"redaction": {"pii": ["phone"]}})


@pytest.mark.django_db
def test_ingest_masks_personal_data_when_configured(settings: Any) -> None:
    settings.REDACTION = RedactionConfig(pii=PII_KINDS)
    store(
        event("log", id="l1", mcp_id="m", message=TEXT, context={"customer": {"email": "bob@example.org"}}),
        event("thread.started", thread_id="T-9", mcp_id="m"),
        event("thread.step", thread_id="T-9", details={"arguments": {"card": "5500 0000 0000 0004"}}),
    )
    log = LogEntry.objects.get(id="l1")
    assert log.message == "mail ***, card ***, ssn ***, order 4111111111111112"
    assert log.context == {"customer": {"email": "***"}}
    assert ExecutionStep.objects.get(thread_id="T-9").details == {"arguments": {"card": "***"}}


@pytest.mark.django_db
def test_ingest_keeps_personal_data_by_default() -> None:
    store(event("log", id="l2", mcp_id="m", message=TEXT))
    assert LogEntry.objects.get(id="l2").message == TEXT


def test_mc_redact_pii_turns_it_on_from_the_environment(tmp_path: Path) -> None:
    def pii(value: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ["PATH"], "MC_DATA_DIR": str(tmp_path), "MC_REDACT_PII": value}
        show = "from django.conf import settings; print(settings.REDACTION.pii)"
        return subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", show],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert pii("all").stdout.strip().endswith("('email', 'card', 'us_ssn')")
    assert pii("email,us_ssn").stdout.strip().endswith("('email', 'us_ssn')")
    refused = pii("passport")
    assert refused.returncode != 0 and "MC_REDACT_PII: unknown kind 'passport'" in refused.stderr
