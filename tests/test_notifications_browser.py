"""The notification channel page in a real browser (Playwright on Debian's Chromium, a real
web process on the test database): make a channel, press Send test, read the outcome and
the history row; a failing target says why."""

from __future__ import annotations

from typing import Any

import pytest

from notifications.models import Channel
from tests import test_pages_browser as pages
from tests.receivers import Webhook
from tests.test_pages_browser import Visit

# The pages' browser, web process and signed-in tab (the web process's SECRET_KEY too).
browser, web, operator, visit = pages.browser, pages.web, pages.operator, pages.visit

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _web_process_keys(settings: Any) -> None:
    """Targets are encrypted with a key derived from SECRET_KEY: the web process's."""
    settings.SECRET_KEY = pages.WEB_SECRET_KEY


def test_an_admin_makes_a_channel_and_its_send_test_button_says_how_it_went(
    visit: Visit, hook: Webhook
) -> None:
    page = visit.open("/notifications")
    page.click("text=New channel")
    page.fill("input[name=name]", "ops-webhook")
    page.fill("textarea[name=targets]", hook.url("/ops"))
    page.check("input[name=kinds][value='mcp.status']")
    page.select_option("select[name=min_severity]", "warn")
    page.click("#save-channel")
    page.wait_for_selector("#send-test")
    channel = Channel.objects.get(name="ops-webhook")
    assert channel.targets == [hook.url("/ops")] and channel.kinds == ["mcp.status"]

    page.click("#send-test")
    outcome = page.wait_for_selector('#test-outcome[data-status="sent"]')
    assert outcome.inner_text() == "Test message: Sent to 1 of 1 target."
    assert hook.titles("/ops") == ["Mission Control test message"]
    row = page.wait_for_selector('#delivery-history tr[data-status="sent"]')
    assert "test" in row.inner_text() and "#1" in row.inner_text()
    visit.shot("notification-channel")

    hook.fail(1)
    page.click("#send-test")
    failed = page.wait_for_selector('#test-outcome[data-status="failed"]')
    assert failed.inner_text().startswith("Test message: Failed after 1 attempt: target 1 (JSON):")
    assert page.locator("#delivery-history tr[data-delivery]").count() == 2

    listing = visit.open("/notifications")
    assert "ops-webhook" in listing.inner_text("#channels") and "mcp.status" in listing.inner_text(
        "#channels"
    )


def test_the_channel_list_shows_open_alerts(visit: Visit, hook: Webhook) -> None:
    from notifications.kinds import Raised
    from notifications.models import Alert

    Channel.objects.create(name="everything", targets=[hook.url()])
    Alert.objects.raise_alert(Raised("mcp.status", "git", "critical", "Server git is disconnected"))
    page = visit.open("/notifications")
    row = page.wait_for_selector('#open-alerts tr[data-alert="mcp.status:git"]')
    assert "Server git is disconnected" in row.inner_text() and "critical" in row.inner_text()
