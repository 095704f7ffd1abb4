"""Notification channels over REST, on the pages and in the admin: who sees and does what,
masked targets, the test button's answer in words, and the team-scoped delivery history."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from notifications import dispatch
from notifications.models import Channel
from tests.conftest import signed_in, team
from tests.receivers import Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha_channel(hook: Webhook) -> Channel:
    return Channel.objects.create(name="alpha-ops", team=team("alpha"), targets=[hook.url("/secret-path")])


def api(user: User) -> Any:
    return signed_in(user)


# ---------------------------------------------------------------- REST


def test_an_admin_makes_a_channel_and_reads_its_targets_whole(admin: User, hook: Webhook) -> None:
    team("alpha")
    body = {
        "name": "alpha-ops",
        "team": "alpha",
        "targets": [hook.url(), "mailto://user:pw@smtp.example.com?to=ops@example.com"],
        "kinds": ["mcp.status", "thread.stalled"],
        "min_severity": "warn",
        "quiet_start": "22:00",
        "quiet_end": "07:00",
        "time_zone": "Europe/Paris",
    }
    made = api(admin).post("/api/notifications/channels", body, "application/json")
    assert made.status_code == 201, made.content
    data = made.json()
    assert data["targets"] == body["targets"] and data["team"] == "alpha" and data["quiet_start"] == "22:00"
    assert Channel.objects.get().targets == body["targets"]


def test_everyone_but_admins_reads_targets_masked(
    alpha_channel: Channel, viewer: User, operator: User, admin: User
) -> None:
    for user in (viewer, operator):
        (row,) = api(user).get("/api/notifications/channels").json()
        assert row["targets"] == ["json://***"], user
        assert api(user).get(f"/api/notifications/channels/{alpha_channel.pk}").json()["targets"] == [
            "json://***"
        ]
    assert "secret-path" in api(admin).get("/api/notifications/channels").json()[0]["targets"][0]


def test_channels_are_team_scoped_and_global_ones_are_admins_only(
    alpha_channel: Channel, hook: Webhook, viewer: User, outsider: User, admin: User
) -> None:
    Channel.objects.create(name="everything", targets=[hook.url()])
    assert [c["name"] for c in api(viewer).get("/api/notifications/channels").json()] == ["alpha-ops"]
    assert api(outsider).get("/api/notifications/channels").json() == []
    assert api(outsider).get(f"/api/notifications/channels/{alpha_channel.pk}").status_code == 404
    assert api(outsider).get(f"/api/notifications/channels/{alpha_channel.pk}/deliveries").status_code == 404
    assert [c["name"] for c in api(admin).get("/api/notifications/channels").json()] == [
        "alpha-ops",
        "everything",
    ]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("targets", ["nonsense://x"], "target 1: Apprise does not recognise nonsense://***"),
        ("targets", "json://x", "Expected a list of items"),
        ("kinds", ["thread.ended"], '"thread.ended" is not a valid choice.'),
        ("time_zone", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("quiet_start", "25:00", "Time has wrong format"),
        ("min_severity", "loud", '"loud" is not a valid choice.'),
        ("team", "nope", "Object with slug=nope does not exist."),
    ],
)
def test_a_bad_channel_is_refused_naming_the_field(admin: User, field: str, value: Any, reason: str) -> None:
    body = {"name": "ops", "targets": ["json://127.0.0.1/x"], field: value}
    answer = api(admin).post("/api/notifications/channels", body, "application/json")
    assert answer.status_code == 400, answer.content
    assert reason in " ".join(str(m) for m in _flatten(answer.json()[field])), answer.json()


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [m for v in value.values() for m in _flatten(v)]
    if isinstance(value, list):
        return [m for v in value for m in _flatten(v)]
    return [value]


def test_quiet_hours_need_both_ends(admin: User) -> None:
    body = {"name": "ops", "targets": ["json://127.0.0.1/x"], "quiet_start": "22:00"}
    answer = api(admin).post("/api/notifications/channels", body, "application/json")
    assert answer.status_code == 400 and answer.json() == {
        "quiet_end": ["quiet hours need both a start and an end"]
    }


def test_only_admins_change_channels(
    alpha_channel: Channel, viewer: User, operator: User, admin: User
) -> None:
    url = f"/api/notifications/channels/{alpha_channel.pk}"
    for user in (viewer, operator):
        assert api(user).patch(url, {"enabled": False}, "application/json").status_code == 403
        assert api(user).delete(url).status_code == 403
        assert (
            api(user).post("/api/notifications/channels", {"name": "x"}, "application/json").status_code
            == 403
        )
    assert (
        api(admin).patch(url, {"min_severity": "critical"}, "application/json").json()["min_severity"]
        == "critical"
    )
    assert api(admin).delete(url).status_code == 204


def test_an_operator_sends_a_test_and_reads_the_outcome_in_words(
    alpha_channel: Channel, hook: Webhook, operator: User, viewer: User
) -> None:
    url = f"/api/notifications/channels/{alpha_channel.pk}/test"
    assert api(viewer).post(url).status_code == 403
    answer = api(operator).post(url)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["ok"] is True and body["outcome"] == "Sent to 1 of 1 target."
    assert body["delivery"]["purpose"] == "test" and body["delivery"]["attempts"][0]["ok"] is True
    assert hook.titles() == ["Mission Control test message"]

    hook.fail(1)
    failed = api(operator).post(url).json()
    assert failed["ok"] is False
    assert failed["outcome"].startswith("Failed after 1 attempt: target 1 (JSON): Failed to send JSON POST")


def test_testing_a_channel_without_targets_is_a_400(operator: User) -> None:
    empty = Channel.objects.create(name="empty", team=team("alpha"))
    answer = api(operator).post(f"/api/notifications/channels/{empty.pk}/test")
    assert answer.status_code == 400 and answer.json() == {"targets": ["the channel has no targets to test"]}


def test_the_delivery_history_lists_each_attempt(alpha_channel: Channel, hook: Webhook, viewer: User) -> None:
    hook.fail(1)
    dispatch.send_test(alpha_channel)
    dispatch.send_test(alpha_channel)
    answer = api(viewer).get(f"/api/notifications/channels/{alpha_channel.pk}/deliveries")
    assert answer.status_code == 200, answer.content
    rows = answer.json()["results"]
    assert [r["status"] for r in rows] == ["sent", "failed"]  # newest first
    assert rows[1]["attempts"][0]["error"].startswith("target 1 (JSON): Failed to send JSON POST")
    assert rows[1]["outcome"].startswith("Failed after 1 attempt")
    only_failed = api(viewer).get(f"/api/notifications/channels/{alpha_channel.pk}/deliveries?status=failed")
    assert [r["status"] for r in only_failed.json()["results"]] == ["failed"]
    assert (
        api(viewer).get(f"/api/notifications/channels/{alpha_channel.pk}/deliveries?status=lost").status_code
        == 400
    )


# ---------------------------------------------------------------- pages


def test_the_page_shows_masked_targets_to_a_viewer_and_no_test_button(
    alpha_channel: Channel, viewer: User
) -> None:
    listing = api(viewer).get("/notifications")
    assert listing.status_code == 200 and b"alpha-ops" in listing.content and b"json://***" in listing.content
    page = api(viewer).get(f"/notifications/{alpha_channel.pk}").content.decode()
    assert "json://***" in page and "secret-path" not in page and 'id="send-test"' not in page


def test_the_page_shows_an_admin_the_targets_to_edit(alpha_channel: Channel, admin: User) -> None:
    page = api(admin).get(f"/notifications/{alpha_channel.pk}").content.decode()
    assert "secret-path" in page and 'name="targets"' in page


def test_the_send_test_button_says_how_it_went_and_the_history_shows_it(
    alpha_channel: Channel, hook: Webhook, operator: User
) -> None:
    page = api(operator).post(f"/notifications/{alpha_channel.pk}/test")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Test message: Sent to 1 of 1 target." in text and "secret-path" not in text
    assert 'data-status="sent"' in text and hook.titles() == ["Mission Control test message"]
    htmx = api(operator).post(f"/notifications/{alpha_channel.pk}/test", HTTP_HX_REQUEST="true")
    assert b'id="test-outcome"' in htmx.content and b'hx-swap-oob="true"' in htmx.content


def test_an_admin_saves_a_channel_from_its_page_and_a_bad_target_is_named(admin: User, hook: Webhook) -> None:
    form = {
        "name": "ops",
        "team": "",
        "targets": f"{hook.url()}\nnonsense://x",
        "time_zone": "UTC",
        "enabled": "on",
    }
    refused = api(admin).post("/notifications/new", form)
    assert refused.status_code == 400
    assert "target 2: Apprise does not recognise nonsense://***" in refused.content.decode()
    form["targets"] = hook.url()
    made = api(admin).post("/notifications/new", form)
    assert made.status_code == 302
    assert Channel.objects.get(name="ops").targets == [hook.url()]


def test_a_viewer_may_not_save_or_test_from_the_pages(alpha_channel: Channel, viewer: User) -> None:
    assert api(viewer).post(f"/notifications/{alpha_channel.pk}", {"name": "x"}).status_code == 403
    assert api(viewer).post(f"/notifications/{alpha_channel.pk}/test").status_code == 403
    assert api(viewer).get("/notifications/new").status_code == 403


# ---------------------------------------------------------------- admin


def test_the_admin_masks_targets_for_staff_who_are_not_admins(
    alpha_channel: Channel, viewer: User, admin: User
) -> None:
    for user in (viewer, admin):
        user.is_staff = True
        user.save()
    url = f"/admin/notifications/channel/{alpha_channel.pk}/change/"
    as_viewer = api(viewer).get(url)
    assert (
        as_viewer.status_code == 200
        and b"json://***" in as_viewer.content
        and b"secret-path" not in as_viewer.content
    )
    assert b"secret-path" in api(admin).get(url).content


def test_the_admin_lists_only_the_staff_members_channels(alpha_channel: Channel, outsider: User) -> None:
    outsider.is_staff = True
    outsider.save()
    assert api(outsider).get(f"/admin/notifications/channel/{alpha_channel.pk}/change/").status_code == 302
    assert b"alpha-ops" not in api(outsider).get("/admin/notifications/channel/").content
