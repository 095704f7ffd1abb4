"""The usage page in a real browser: Chromium (Playwright) against a web process whose
mission_control.yml prices two models, reading the tokens and costs of known calls.

Screenshots land in var/screenshots/pages/ (ignored by git).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ago, event
from tests.processes import Server, daphne, free_port, post_events
from tests.test_pages_browser import Visit, _web_env, browser, operator, sign_in  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PRICES = """
demo: false
usage:
  currency: USD
  prices:
    gpt-4o: {input: 2.5, output: 10}
    claude-sonnet-*: {input: 3, output: 15}
"""


@pytest.fixture(scope="module")
def web(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_dir = tmp_path_factory.mktemp("usage-web")
    config = log_dir / "mission_control.yml"
    config.write_text(PRICES)
    env = {**_web_env(log_dir, None), "MC_CONFIG": str(config)}
    server = daphne(free_port(), env, log_dir / "daphne.log")
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@pytest.fixture
def visit(web: Server, browser: Any, operator: Any) -> Iterator[Visit]:  # noqa: F811 - the imported fixtures
    context = browser.new_context(viewport={"width": 1366, "height": 900}, color_scheme="dark")
    tab = Visit(web, context.new_page())
    sign_in(tab)
    yield tab
    context.close()
    assert tab.errors == [], tab.errors


def llm(
    thread_id: str, sequence: int, seconds_ago: float, model: str, tokens: tuple[int, int], user: str
) -> dict[str, Any]:
    usage = {"input_tokens": tokens[0], "output_tokens": tokens[1]}
    details = {"category": "llm", "model": model, "user": user, "usage": usage}
    return event(
        "thread.step",
        timestamp=ago(seconds_ago),
        thread_id=thread_id,
        sequence=sequence,
        step_type="script",
        description=f"chat {model}",
        details=details,
    )


def test_the_usage_page_reads_known_tokens_and_costs(visit: Visit, ingest_key: str) -> None:
    post_events(
        visit.web.url,
        ingest_key,
        [
            event(
                "thread.started", timestamp=ago(4000), thread_id="T-trip", user_input="plan a trip to Lisbon"
            ),
            event("thread.started", timestamp=ago(4000), thread_id="T-mail", user_input="answer the mail"),
            llm("T-trip", 1, 7200, "gpt-4o", (1_000_000, 100_000), "ann"),  # 2.50 + 1.00
            llm("T-trip", 2, 1800, "claude-sonnet-4-5", (200_000, 100_000), "ann"),  # 0.60 + 1.50
            llm("T-mail", 1, 600, "gpt-4o", (400_000, 0), "bo"),  # 1.00
            llm("T-mail", 2, 300, "llama-3", (5_000, 1_000), "bo"),  # no price
        ],
    )
    page = visit.open("/usage")
    assert page.inner_text("#total-cost") == "≥ 6.60 USD"
    assert page.inner_text("#total-input") == "1,605,000" and page.inner_text("#total-output") == "201,000"
    assert page.inner_text("#total-calls") == "4"
    assert "No price for llama-3" in page.inner_text("#unpriced")
    rows = page.locator("#top-threads tbody tr")
    assert rows.count() == 2
    first, second = rows.nth(0).inner_text(), rows.nth(1).inner_text()
    assert "plan a trip to Lisbon" in first and "5.60 USD" in first and "srv-alpha" in first
    assert "answer the mail" in second and "≥ 1.00 USD" in second
    by_model = page.locator("table.usage-by").nth(0).inner_text()
    assert (
        "llama-3" in by_model and "unknown" in by_model and "4.50 USD" in by_model and "2.10 USD" in by_model
    )
    # uPlot drew both charts from the series, the cost one with its buckets.
    page.wait_for_selector("#chart-tokens .uplot canvas")
    page.wait_for_selector("#chart-cost .uplot canvas")
    assert page.evaluate("() => JSON.parse(document.getElementById('usage-series').textContent).length") == 24
    shot: Path = visit.shot("usage")
    assert shot.exists()
    # The window selector reloads the page for the window chosen.
    with page.expect_navigation():
        page.select_option("#window", "1h")
    assert page.url.endswith("/usage?window=1h")
    assert page.inner_text("#total-calls") == "3"  # not the one of two hours ago
    assert page.inner_text("#total-cost") == "≥ 3.10 USD"
    visit.shot("usage-1h")
