"""Alerts leave Mission Control: channels of Apprise targets, their rules, dedupe and resolve,
retries, and the delivery history; sent for real to a webhook and an SMTP server on loopback.

Alerts are published the way Mission Control publishes them (the gateway's status hook,
automations.events, the ingest pipeline); Celery is eager and no event loop is handed
work here, so each message is sent before the publishing call returns.
"""

from __future__ import annotations

import asyncio
import io
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from automations import events
from automations.models import Automation, Directive, DirectiveExecution, KnowledgeEntry
from mcps.gateway.service import Gateway
from mcps.models import IngestKey, MCPServer
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from missioncontrol.live import Outbox, encode
from notifications import dispatch
from notifications.kinds import Raised
from notifications.models import Alert, Channel, Delivery
from notifications.tasks import deliver
from tests.conftest import ago, event, team
from tests.processes import free_port
from tests.receivers import Mailbox, Webhook, webhook

pytestmark = pytest.mark.django_db(transaction=True)


def channel(name: str, *targets: str, **fields: Any) -> Channel:
    return Channel.objects.create(name=name, targets=list(targets), **fields)


def server_status(server_id: str, status: str, error: str = "") -> None:
    """What the gateway does when a connection's status changes: store it, publish mcp.status."""
    async_to_sync(Gateway().status)(server_id, status, error)


def publish(*batch: dict[str, Any], team_id: int | None = None) -> None:
    """Ingest `batch` (as a key of `team_id` would push it) and publish what it stored."""
    result = ingest(list(batch), Source(mcp_id="srv-alpha", team_id=team_id))
    assert all(v.status == "accepted" for v in result.verdicts), result.verdicts
    async_to_sync(result.outbox.send)()


def down_server(server_id: str = "git") -> MCPServer:
    return MCPServer.objects.create(id=server_id, name=server_id, transport="stdio", command="true")


# ---------------------------------------------------------------- one message per alert key


def test_a_server_going_down_sends_one_message_until_it_is_back_then_says_it_cleared(hook: Webhook) -> None:
    down_server()
    ops = channel("ops", hook.url())

    server_status("git", "degraded", "the server process exited")
    server_status("git", "degraded", "connection refused")  # the same alert, still open
    server_status("git", "disconnected", "connection refused")  # worse, still the same key
    assert hook.titles() == ["[warn] Server git is degraded"]
    assert hook.received[0]["type"] == "warning"
    assert "the server process exited" in hook.received[0]["message"]

    server_status("git", "connected")
    # The resolution names the alert as it ended up (the worst it got).
    assert hook.titles() == ["[warn] Server git is degraded", "[resolved] Server git is disconnected"]
    assert hook.received[1]["type"] == "success"
    assert "server git is connected again" in hook.received[1]["message"]

    alert = Alert.objects.get()
    assert (alert.key, alert.severity, alert.repeats) == ("mcp.status:git", "critical", 2)
    assert alert.resolved_at is not None and alert.resolution == "server git is connected again"
    history = Delivery.objects.filter(channel=ops).order_by("created_at")
    assert [(d.purpose, d.status, d.tries) for d in history] == [
        ("alert", "sent", 1),
        ("resolved", "sent", 1),
    ]

    # Down again after clearing: a new alert, a new message.
    server_status("git", "degraded", "again")
    assert hook.titles()[-1] == "[warn] Server git is degraded"
    assert Alert.objects.count() == 2


def test_a_server_disabled_on_purpose_is_not_an_outage_and_clears_its_alert(hook: Webhook) -> None:
    down_server()
    channel("ops", hook.url())
    server_status("git", "degraded", "the server process exited")
    MCPServer.objects.filter(id="git").update(enabled=False)
    server_status("git", "disconnected", "removed or disabled")
    assert hook.titles() == ["[warn] Server git is degraded", "[resolved] Server git is degraded"]
    assert "server git was disabled" in hook.received[1]["message"]


def test_only_events_that_may_alert_are_handed_over_from_the_publishing_path(
    hook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[list[str]] = []
    monkeypatch.setattr(dispatch, "hand_off", lambda task, args: handed.append(args[0]))
    status = encode({"type": "mcp.status", "mcp_id": "git", "status": "degraded", "error": ""})
    running = encode({"type": "directive.execution", "execution_id": 1, "status": "running"})
    ended = encode({"type": "directive.execution", "execution_id": 1, "status": "failed"})
    log = encode({"type": "log", "message": "mcp.status is fine"})
    async_to_sync(dispatch.on_published)([status, running, ended, log])
    assert handed == []  # no channel: nothing to decide at all
    channel("ops", hook.url())
    async_to_sync(dispatch.on_published)([status, running, ended, log])
    assert handed == [[status, ended]]


def test_nothing_is_recorded_or_sent_while_no_channel_is_enabled(hook: Webhook) -> None:
    down_server()
    channel("off", hook.url(), enabled=False)
    server_status("git", "degraded", "boom")
    assert Alert.objects.count() == 0 and hook.received == []


# ---------------------------------------------------------------- teams


def test_a_teams_channel_gets_its_teams_alerts_and_the_global_one_gets_every_alert(hook: Webhook) -> None:
    alpha, beta = team("alpha"), team("beta")
    channel("alpha", hook.url("/alpha"), team=alpha)
    channel("beta", hook.url("/beta"), team=beta)
    channel("everything", hook.url("/global"))
    publish(event("thread.started", thread_id="T-alpha"), team_id=alpha.pk)

    events.alert("thread.stalled", "thread T-alpha has had no step for 300 s", thread_id="T-alpha")
    events.alert("thread.stalled", "thread T-free has had no step for 300 s", thread_id="T-free")

    assert hook.titles("/alpha") == ["[warn] thread T-alpha has had no step for 300 s"]
    assert hook.titles("/beta") == []
    assert sorted(hook.titles("/global")) == [
        "[warn] thread T-alpha has had no step for 300 s",
        "[warn] thread T-free has had no step for 300 s",
    ]
    assert Alert.objects.get(subject="T-alpha").team == alpha


def test_a_servers_team_is_the_one_team_of_its_ingest_keys(hook: Webhook) -> None:
    alpha = team("alpha")
    server = down_server()
    IngestKey.objects.issue("git-key", server, team=alpha)
    channel("alpha", hook.url("/alpha"), team=alpha)
    server_status("git", "degraded", "boom")
    assert hook.titles("/alpha") == ["[warn] Server git is degraded"]


# ---------------------------------------------------------------- rules


def test_a_channel_sends_only_the_kinds_and_severities_it_asks_for(hook: Webhook) -> None:
    down_server()
    channel("pager", hook.url("/pager"), kinds=["mcp.status"], min_severity="critical")
    channel("escalations", hook.url("/escalations"), kinds=["permission.escalation"])

    server_status("git", "degraded", "boom")  # warn: below the pager's bar
    events.alert("thread.stalled", "stalled", thread_id="T-1", severity="critical")  # not its kind
    assert hook.received == []
    server_status("git", "disconnected", "boom")  # the open alert, now critical: the pager's first
    assert hook.titles("/pager") == ["[critical] Server git is disconnected"]
    assert hook.received[0]["type"] == "failure"

    publish(
        event("thread.started", thread_id="T-esc"),
        event(
            "permission.check",
            thread_id="T-esc",
            user_id="mallory",
            resource="db/drop",
            escalation_detected=True,
        ),
    )
    assert hook.titles("/escalations") == [
        "[critical] Permission escalation: mallory granted db/drop in thread T-esc"
    ]


@pytest.mark.parametrize(
    ("local_time", "quiet_critical", "sent"),
    [
        ("23:30", True, ["[critical] Server git is disconnected"]),  # quiet: only critical
        ("23:30", False, []),  # quiet, and configured to hold critical too
        ("06:59", True, ["[critical] Server git is disconnected"]),
        ("07:00", True, ["[warn] Server other is degraded", "[critical] Server git is disconnected"]),
    ],
)
def test_quiet_hours_hold_back_all_but_critical_alerts_in_the_channels_time_zone(
    hook: Webhook, time_machine: Any, local_time: str, quiet_critical: bool, sent: list[str]
) -> None:
    # 22:00-07:00 in Paris, which is UTC+1 in January.
    hour, minute = map(int, local_time.split(":"))
    time_machine.move_to(datetime(2027, 1, 15, (hour - 1) % 24, minute, tzinfo=UTC), tick=False)
    down_server("other")
    down_server("git")
    channel(
        "night",
        hook.url(),
        quiet_start=clock(22, 0),
        quiet_end=clock(7, 0),
        time_zone="Europe/Paris",
        quiet_critical=quiet_critical,
    )
    server_status("other", "degraded", "boom")
    server_status("git", "disconnected", "boom")
    assert hook.titles() == sent


def test_a_resolution_goes_only_to_the_channels_that_were_told_of_the_alert(hook: Webhook) -> None:
    down_server()
    channel("told", hook.url("/told"))
    channel("critical-only", hook.url("/critical"), min_severity="critical")
    channel("quiet-about-clearing", hook.url("/no-resolve"), send_resolved=False)
    server_status("git", "degraded", "boom")
    server_status("git", "connected")
    assert hook.titles("/told") == ["[warn] Server git is degraded", "[resolved] Server git is degraded"]
    assert hook.titles("/critical") == []
    assert hook.titles("/no-resolve") == ["[warn] Server git is degraded"]


# ---------------------------------------------------------------- what clears each kind


def test_a_stalled_thread_clears_when_it_steps_again_seen_by_the_sweep(hook: Webhook) -> None:
    channel("ops", hook.url())
    publish(event("thread.started", thread_id="T-slow", timestamp=ago(600)))
    from automations.scripts.health import mark_thread_stalled

    mark_thread_stalled("T-slow", 600)
    assert hook.titles() == ["[warn] thread T-slow has had no step for 600 s"]
    assert dispatch.sweep()["resolved"] == 0  # still stalled
    publish(event("thread.step", thread_id="T-slow", sequence=1, timestamp=ago(1)))
    assert dispatch.sweep()["resolved"] == 1
    assert hook.titles()[-1] == "[resolved] thread T-slow has had no step for 600 s"
    assert "thread T-slow is stepping again" in hook.received[-1]["message"]


def test_a_timed_out_thread_is_a_one_off_with_no_resolution(hook: Webhook) -> None:
    channel("ops", hook.url())
    publish(event("thread.started", thread_id="T-old", timestamp=ago(90000)))
    from automations.scripts.health import cleanup_stale_sessions

    cleanup_stale_sessions(timeout_hours=24)
    dispatch.sweep()
    assert len(hook.titles()) == 1 and hook.titles()[0].startswith("[warn] thread T-old ended as error after")


DIRECTIVE = """
name: find-things
steps:
  - name: noop
    script: anomaly_summary
    inputs: {slow: 0, spikes: 0}
permissions: [write:logs]
"""


def completed_run(directive: Directive, automation: Automation | None = None) -> DirectiveExecution:
    return DirectiveExecution.objects.create(
        directive=directive,
        directive_name=directive.name,
        automation=automation,
        status=DirectiveExecution.Status.COMPLETED,
        started_at=datetime.now(UTC),
    )


def run_event(run: DirectiveExecution, status: str, error: str = "") -> None:
    """The directive.execution event the engine publishes when a run ends."""
    outbox = Outbox()
    outbox.add(
        "global",
        encode(
            {
                "type": "directive.execution",
                "execution_id": run.pk,
                "directive": run.directive_name,
                "status": status,
                "error": error,
            }
        ),
    )
    async_to_sync(outbox.send)()


def test_an_anomaly_clears_when_a_later_run_of_its_directive_does_not_find_it_again(hook: Webhook) -> None:
    channel("ops", hook.url())
    directive = Directive.objects.upsert_from_yaml(DIRECTIVE)
    KnowledgeEntry.objects.record(
        "anomaly-log-error-rate-spike",
        title="Log error rate spike",
        category="alert",
        content="40% of logs were errors",
        confidence=0.9,
        source_directive=directive.name,
    )
    events.alert("anomaly.detected", "Log error rate spike", knowledge="anomaly-log-error-rate-spike")
    assert hook.titles() == ["[warn] Log error rate spike"]
    run_event(completed_run(directive), DirectiveExecution.Status.COMPLETED)
    assert hook.titles()[-1] == "[resolved] Log error rate spike"
    assert "not found again by find-things" in hook.received[-1]["message"]


def test_a_failed_automation_run_alerts_and_clears_when_the_automation_next_completes(hook: Webhook) -> None:
    channel("ops", hook.url())
    directive = Directive.objects.upsert_from_yaml(DIRECTIVE)
    automation = Automation.objects.create(name="nightly", directive=directive, schedule="0 3 * * *")
    failed = DirectiveExecution.objects.create(
        directive=directive,
        directive_name=directive.name,
        automation=automation,
        status="failed",
        error="boom",
    )
    run_event(failed, "failed", "boom")
    manual = DirectiveExecution.objects.create(
        directive=directive, directive_name=directive.name, status="failed"
    )
    run_event(manual, "failed", "a person's own run")  # not an automation run: not an alert
    assert hook.titles() == ["[warn] Automation nightly failed (directive find-things)"]
    assert "boom" in hook.received[0]["message"]
    run_event(completed_run(directive, automation), "completed")
    assert hook.titles()[-1] == "[resolved] Automation nightly failed (directive find-things)"


# ---------------------------------------------------------------- delivery: retries, idempotence


def test_a_failed_send_is_retried_and_recorded_attempt_by_attempt(hook: Webhook) -> None:
    down_server()
    ops = channel("ops", hook.url())
    hook.fail(2)
    server_status("git", "degraded", "boom")
    delivery = Delivery.objects.get(channel=ops)
    assert (delivery.status, delivery.tries) == ("sent", 3)
    attempts = list(delivery.attempts.order_by("number"))
    assert [a.ok for a in attempts] == [False, False, True]
    assert "500" in attempts[0].error or "Internal Server Error" in attempts[0].error
    assert len(hook.received) == 1
    # Celery's exponential backoff: 5 s after the first failure, 10 s after the second...
    assert [dispatch.backoff(n).total_seconds() for n in range(7)] == [5, 10, 20, 40, 80, 160, 300]
    assert deliver.autoretry_for == (dispatch.DeliveryFailed,) and deliver.max_retries == dispatch.MAX_RETRIES


def test_a_retry_goes_only_to_the_targets_that_did_not_take_the_message(hook: Webhook) -> None:
    down_server()
    with webhook() as flaky:
        ops = channel("ops", hook.url("/steady"), flaky.url("/flaky"))
        flaky.fail(1)
        server_status("git", "degraded", "boom")
        assert hook.titles("/steady") == ["[warn] Server git is degraded"]  # once, not once per attempt
        assert flaky.titles("/flaky") == ["[warn] Server git is degraded"]
    delivery = Delivery.objects.get(channel=ops)
    assert [(a.ok, a.sent_to) for a in delivery.attempts.order_by("number")] == [(False, 1), (True, 1)]
    assert delivery.outcome_text() == "Sent to 2 of 2 targets."


def test_a_target_that_never_answers_fails_after_the_last_retry_with_the_reason(hook: Webhook) -> None:
    down_server()
    closed = hook.url().replace(str(hook.port), str(_closed_port()))
    ops = channel("ops", closed)
    server_status("git", "degraded", "boom")
    delivery = Delivery.objects.get(channel=ops)
    assert (delivery.status, delivery.tries) == ("failed", dispatch.MAX_RETRIES + 1)
    assert "target 1 (JSON): A Connection error occurred sending JSON notification" in delivery.error
    assert delivery.outcome_text().startswith(f"Failed after {dispatch.MAX_RETRIES + 1} attempts: target 1")


def _closed_port() -> int:
    return free_port()


def test_a_delivery_handed_over_twice_is_sent_once(hook: Webhook) -> None:
    """A worker restarted mid-task gets the message again: the claim makes the repeat a no-op."""
    ops = channel("ops", hook.url())
    delivery = Delivery.objects.queue(ops, None, Delivery.Purpose.TEST)
    assert delivery is not None
    assert deliver.apply(args=[str(delivery.pk)]).get() == "sent"
    assert deliver.apply(args=[str(delivery.pk)]).get() is None
    assert len(hook.received) == 1


def test_the_sweep_fails_a_send_its_process_died_in_and_hands_lost_ones_over(
    hook: Webhook, time_machine: Any
) -> None:
    ops = channel("ops", hook.url())
    interrupted = Delivery.objects.queue(ops, None, Delivery.Purpose.TEST)
    lost = Delivery.objects.queue(ops, None, Delivery.Purpose.TEST)
    assert interrupted is not None and lost is not None
    Delivery.objects.claim(interrupted.pk)  # claimed, then the process died before recording
    time_machine.move_to(datetime.now(UTC) + dispatch.INTERRUPTED_AFTER + timedelta(seconds=1))
    assert dispatch.sweep() == {"resolved": 0, "interrupted": 1, "handed_over": 1}
    interrupted.refresh_from_db()
    lost.refresh_from_db()
    assert interrupted.status == "failed" and "not sent again" in interrupted.error
    assert lost.status == "sent" and len(hook.received) == 1


def test_a_resolution_drops_an_alert_message_still_waiting_for_its_retry(hook: Webhook) -> None:
    down_server()
    ops = channel("ops", hook.url())
    alert, _ = Alert.objects.raise_alert(Raised("mcp.status", "git", "warn", "Server git is degraded"))
    waiting = Delivery.objects.queue(ops, alert, Delivery.Purpose.ALERT)
    assert waiting is not None
    MCPServer.objects.filter(id="git").update(status="connected")
    dispatch.sweep()
    waiting.refresh_from_db()
    assert waiting.status == "failed" and waiting.error.startswith("superseded")
    assert hook.received == []  # neither the stale alert nor a resolution of it


# ---------------------------------------------------------------- the test button, email, secrets at rest


def test_send_test_mails_through_an_smtp_server(inbox: Mailbox) -> None:
    mail = channel("mail", inbox.url())
    delivery = dispatch.send_test(mail)
    assert delivery.status == "sent" and delivery.outcome_text() == "Sent to 1 of 1 target."
    (message,) = inbox.messages
    assert message["Subject"] == "Mission Control test message" and message["To"] == "ops@example.com"


def test_targets_are_encrypted_at_rest(hook: Webhook) -> None:
    secret = hook.url("/services/T000/B000/very-secret-token")
    saved = channel("ops", secret)
    with connection.cursor() as cursor:
        cursor.execute("SELECT targets FROM notifications_channel WHERE id = %s", [saved.pk])
        (raw,) = cursor.fetchone()
    assert raw.startswith("gAAAAA") and "very-secret-token" not in raw
    assert Channel.objects.get(pk=saved.pk).targets == [secret]


def test_rotating_the_key_re_encrypts_the_targets(settings: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FERNET_KEYS = [old]
    saved = channel("ops", "json://hooks.example.com/token-123")
    settings.FERNET_KEYS = [new, old]
    call_command("rotate_secrets", stdout=io.StringIO())
    settings.FERNET_KEYS = [new]
    settings.SECRET_KEY = "another-secret-key-" * 3  # the derived key is no help either
    assert Channel.objects.get(pk=saved.pk).targets == ["json://hooks.example.com/token-123"]


async def test_publishing_an_alert_does_not_wait_for_its_message(hook: Webhook, monkeypatch: Any) -> None:
    """On the embedded default the send runs on a worker thread of the web process's loop."""
    from asgiref.sync import sync_to_async

    from mcps.gateway import embedded

    await sync_to_async(down_server)()
    ops = await sync_to_async(channel)("ops", hook.url())
    monkeypatch.setattr(embedded, "_loop", asyncio.get_running_loop())
    hook.delay = 1.5
    started = time.monotonic()
    await Gateway().status("git", "degraded", "boom")
    assert time.monotonic() - started < 1.0  # published; the webhook still has 1.5 s to answer
    deadline = time.monotonic() + 15
    while not await sync_to_async(Delivery.objects.filter(channel=ops, status="sent").exists)():
        assert time.monotonic() < deadline, "the message was never sent"
        await asyncio.sleep(0.1)
    assert hook.titles() == ["[warn] Server git is degraded"]
