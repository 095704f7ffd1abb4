"""Secrets are masked before storage on every ingest path, with configurable patterns."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from audit.models import PermissionEvent
from logs.models import LogEntry
from mcps.endpoint.recorder import Call, CallRecorder
from mcps.gateway.connection import Backoff
from mcps.gateway.service import Gateway
from missioncontrol.config import ConfigError, RedactionConfig, parse_config
from missioncontrol.ingest.batcher import EventBatcher
from missioncontrol.redaction import build
from tests.conftest import event, post_batch, store
from tests.mcp_servers import register, status, until
from threads.models import ExecutionStep, LLMMessage, Thread

OPENAI = "sk-proj-Tq8mZ2vLx9Rk4Wn7Yb3Hc6Jd1Fg5Sa0P"
ANTHROPIC = "sk-ant-api03-Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1Gg0Ff9Dd"
GITHUB = "ghp_0123456789abcdefghijABCDEFGHIJklmnop"
GITHUB_PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstu"
AWS = "AKIAIOSFODNN7EXAMPLE"
SLACK = "xoxb-1234567890-0987654321-AbCdEfGhIjKl"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
BEARER = "mF_9.B5f-4.1JqM"
PASSWORD = "hunter2-correct-horse"
SECRETS = (OPENAI, ANTHROPIC, GITHUB, GITHUB_PAT, AWS, SLACK, JWT, BEARER, PASSWORD)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {BEARER}", "Authorization: Bearer ***"),
        (f"retrying with bearer {BEARER} now", "retrying with bearer *** now"),
        (f"OPENAI_API_KEY {OPENAI} set", "OPENAI_API_KEY sk-*** set"),
        (f"using {ANTHROPIC}", "using sk-ant-***"),
        (f"push {GITHUB} and {GITHUB_PAT}", "push ghp_*** and github_pat_***"),
        (f"aws id {AWS} ok", "aws id *** ok"),
        (f"slack {SLACK}", "slack xoxb-***"),
        (f"session {JWT}", "session ***"),
        ("api_key=abc123def&x=1", "api_key=***&x=1"),
        (f'{{"password": "{PASSWORD}"}}', '{"password": "***"}'),
        (
            f"db postgres://admin:{PASSWORD}@db.internal:5432/mc",
            "db postgres://admin:***@db.internal:5432/mc",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----***",
        ),
    ],
)
def test_it_masks_each_default_secret_format(text: str, expected: str) -> None:
    redactor = build(RedactionConfig())
    assert redactor is not None
    assert redactor.text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "tool finished in 3 ms",
        "the bearer of bad news",
        "max_tokens: 300, prompt_tokens: 12",
        "see https://example.com/docs?page=2",
        "asked for a password reset",
    ],
)
def test_it_leaves_ordinary_text_alone(text: str) -> None:
    redactor = build(RedactionConfig())
    assert redactor is not None and redactor.text(text) is text


def test_it_masks_json_values_under_secret_keys_and_copies_only_what_changed() -> None:
    redactor = build(RedactionConfig())
    assert redactor is not None
    untouched = {"items": [1, 2], "name": "x"}
    value = {
        "headers": {"Authorization": "Basic dXNlcjpwYXNz", "X-Api-Key": "k-1"},
        "db_password": "pw",
        "accessToken": "t",
        "max_tokens": 300,
        "nested": [{"client_secret": "s"}, f"key {OPENAI}"],
        "untouched": untouched,
    }
    masked = redactor.value(value)
    assert masked == {
        "headers": {"Authorization": "***", "X-Api-Key": "***"},
        "db_password": "***",
        "accessToken": "***",
        "max_tokens": 300,
        "nested": [{"client_secret": "***"}, "key sk-***"],
        "untouched": untouched,
    }
    assert masked["untouched"] is untouched
    assert value["headers"]["Authorization"] == "Basic dXNlcjpwYXNz"  # the input is not changed


def test_configured_patterns_keys_and_replacement_add_to_the_defaults() -> None:
    config = parse_config(
        {"redaction": {"replacement": "[gone]", "patterns": ["(acct-)[0-9]{6}"], "keys": ["pin"]}}
    ).redaction
    redactor = build(config)
    assert redactor is not None
    assert redactor.text(f"acct-123456 and {OPENAI}") == "acct-[gone] and sk-[gone]"
    assert redactor.value({"card_pin": "1234", "pinned": "yes"}) == {"card_pin": "[gone]", "pinned": "yes"}
    assert build(parse_config({"redaction": {"enabled": False}}).redaction) is None


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"redaction": {"patterns": ["(unclosed"]}}, "redaction.patterns[0]"),
        ({"redaction": {"patterns": ["(?i)global"]}}, "redaction.patterns[0]"),
        ({"redaction": {"enabled": "yes"}}, "redaction.enabled"),
        ({"redaction": {"pattern": []}}, "redaction.pattern"),
    ],
)
def test_a_malformed_redaction_setting_names_its_key(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_config(raw)


def _leaks(*texts: Any) -> list[str]:
    joined = " ".join(str(t) for t in texts)
    return [s for s in SECRETS if s in joined]


@pytest.mark.django_db(transaction=True)
async def test_pushed_events_are_stored_and_sent_live_without_their_secrets(
    open_key: str, socket: Any
) -> None:
    events = [
        event(
            "thread.started",
            mcp_id="srv",
            user_input=f"deploy with {OPENAI}",
            execution_context={"env": {"GITHUB_TOKEN": GITHUB}, "note": f"aws {AWS}"},
        ),
        event(
            "thread.step",
            description=f"curl -H 'Authorization: Bearer {BEARER}'",
            details={"arguments": {"password": PASSWORD, "url": f"https://u:{PASSWORD}@h/x"}, "n": 3},
        ),
        event(
            "thread.message",
            content=f"here is my key {ANTHROPIC}",
            metadata={"headers": {"authorization": f"Bearer {JWT}"}},
        ),
        event(
            "log",
            mcp_id="srv",
            thread_id="T-1",
            message=f"slack {SLACK}",
            context={"token": GITHUB_PAT},
            exception=f"Traceback: connect(password={PASSWORD})",
        ),
        event("permission.check", reason=f"key {OPENAI} is on the allow list"),
    ]
    async with socket() as ws:
        await ws.subscribe("logs:*")
        response = await post_batch({"events": events}, open_key)
        assert response.json()["accepted"] == 5
        live = await ws.events("logs:*")
    assert _leaks(live) == []
    assert live[0]["message"] == "slack xoxb-***"

    def stored() -> list[Any]:
        thread = Thread.objects.get(id="T-1")
        step = ExecutionStep.objects.get(thread_id="T-1")
        message = LLMMessage.objects.get(thread_id="T-1")
        log = LogEntry.objects.get()
        check = PermissionEvent.objects.get()
        return [
            thread.user_input,
            thread.execution_context,
            step.description,
            step.details,
            message.content,
            message.metadata,
            log.message,
            log.context,
            log.exception,
            check.reason,
        ]

    rows = await sync_to_async(stored)()
    assert _leaks(*rows) == []
    assert rows[3] == {"arguments": {"password": "***", "url": "https://u:***@h/x"}, "n": 3}
    assert rows[4] == "here is my key sk-ant-***"


@pytest.mark.django_db
def test_redaction_can_be_turned_off(settings: Any) -> None:
    settings.REDACTION = RedactionConfig(enabled=False)
    store(event("log", mcp_id="srv", message=f"key {OPENAI}"))
    assert LogEntry.objects.get().message == f"key {OPENAI}"


@pytest.mark.django_db(transaction=True)
async def test_calls_routed_through_mission_control_are_recorded_without_their_secrets() -> None:
    batcher = EventBatcher("test calls", linger=0, isolated=True)  # stored by a child process
    recorder = CallRecorder(batcher)
    session = recorder.session(("stdio", "1"), via="mcp_proxy", principal="bob", client={})
    call = Call(
        "git",
        "git_clone",
        {"url": f"https://bob:{PASSWORD}@git.example/repo.git", "api_key": GITHUB},
        datetime.now(UTC),
        2.0,
        result={"content": [{"type": "text", "text": f"cloned with token={GITHUB_PAT}"}]},
    )
    thread_id = recorder.record(session, call)
    await batcher.close()
    steps = [s async for s in ExecutionStep.objects.filter(thread_id=thread_id).order_by("sequence")]
    assert [s.step_type for s in steps] == ["tool_call", "tool_result"]
    assert steps[0].details["arguments"] == {"url": "https://bob:***@git.example/repo.git", "api_key": "***"}
    assert steps[1].details["summary"] == "cloned with token=***"
    assert _leaks(steps[0].details, steps[1].details) == []


# A stdio server that says a secret on stderr before serving: mcp-server-time behind a
# shell line that echoes the env var it was given.
LEAKY_SERVER = (
    'echo "starting with Authorization: Bearer $LEAKY_TOKEN for $LEAKY_USER" >&2; '
    f"exec {sys.executable} -m mcp_server_time --local-timezone=UTC"
)


@pytest.mark.django_db(transaction=True)
async def test_a_stdio_servers_stderr_is_stored_without_its_secrets() -> None:
    await sync_to_async(register)(
        "leaky",
        transport="stdio",
        command="sh",
        args=["-c", LEAKY_SERVER],
        env={"LEAKY_TOKEN": BEARER, "LEAKY_USER": "probe-user-42"},
    )
    gateway = Gateway(Backoff(0.1, 0.5))
    await gateway.start()
    try:
        await until(lambda: status("leaky") == "connected", what="leaky to connect")
        await until(
            lambda: LogEntry.objects.filter(service="leaky", message__contains="starting").exists(),
            what="the stderr line",
        )
    finally:
        await gateway.stop()
    line = await LogEntry.objects.filter(service="leaky", message__contains="starting").aget()
    # Every env value of a server is one of its secrets, the user's name included.
    assert line.message == "starting with Authorization: Bearer *** for ***"
