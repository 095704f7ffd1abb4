"""LLM usage and cost: token counts stored from the steps that report them, summed per
model, server, user and thread over a window, priced by the configuration's table, and
read through the page, REST and GraphQL by each team for its own threads only."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from missioncontrol.config import ConfigError, ModelPrice, UsageConfig, parse_config
from tests.conftest import ago, event, signed_in, store
from tests.teams import push
from usage.models import LLMUsage, usage_of
from usage.pricing import PriceTable
from usage.report import WINDOWS, report

pytestmark = pytest.mark.django_db

PRICES = {
    "gpt-4o": ModelPrice(2.5, 10.0),
    "claude-*": ModelPrice(3.0, 15.0),
    "claude-haiku*": ModelPrice(1.0, 5.0),
}


@pytest.fixture(autouse=True)
def price_table(settings: Any) -> None:
    settings.MC = dataclasses.replace(settings.MC, usage=UsageConfig(currency="USD", prices=PRICES))


def llm(
    thread_id: str, sequence: int, model: str | None, tokens_in: int, tokens_out: int, **fields: Any
) -> dict[str, Any]:
    """A step reporting an LLM call's usage, as the SDK's thread.llm() sends it."""
    details: dict[str, Any] = {
        "category": "llm",
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }
    if model is not None:
        details["model"] = model
    details.update(fields.pop("details", {}))
    defaults = {"timestamp": ago(600), "step_type": "script", "description": f"chat {model}"}
    return event(
        "thread.step", thread_id=thread_id, sequence=sequence, details=details, **{**defaults, **fields}
    )


def started(thread_id: str, mcp_id: str, text: str) -> dict[str, Any]:
    return event("thread.started", timestamp=ago(700), thread_id=thread_id, mcp_id=mcp_id, user_input=text)


# --- pricing ---------------------------------------------------------------------------


def test_a_model_is_priced_by_its_name_else_by_its_longest_pattern() -> None:
    prices = PriceTable.of(UsageConfig(prices=PRICES))
    assert prices.price_of("gpt-4o") == ModelPrice(2.5, 10.0)
    assert prices.price_of("gpt-4o-mini") is None  # a name is exact; only `*` matches more
    assert prices.price_of("claude-sonnet-4-5") == ModelPrice(3.0, 15.0)
    assert prices.price_of("claude-haiku-4-5") == ModelPrice(1.0, 5.0)
    assert prices.cost("gpt-4o", 1_000_000, 500_000) == pytest.approx(7.5)


def test_a_model_with_no_price_has_an_unknown_cost_never_zero() -> None:
    prices = PriceTable.of(UsageConfig(prices=PRICES))
    assert prices.cost("llama-3", 1000, 1000) is None
    assert prices.cost("", 1000, 1000) is None


def test_the_configuration_reads_prices_per_million_tokens() -> None:
    config = parse_config({"usage": {"currency": "EUR", "prices": {"gpt-4o": {"input": 2.5, "output": 10}}}})
    assert config.usage == UsageConfig(currency="EUR", prices={"gpt-4o": ModelPrice(2.5, 10.0)})
    assert parse_config({}).usage.prices == {}


@pytest.mark.parametrize(
    ("usage", "names"),
    [
        ({"prices": {"gpt-4o": {"input": 2.5}}}, "usage.prices.gpt-4o"),
        ({"prices": {"gpt-4o": {"input": "cheap", "output": 1}}}, "usage.prices.gpt-4o.input"),
        ({"prices": {"gpt-4o": {"input": -1, "output": 1}}}, "usage.prices.gpt-4o.input"),
        ({"prices": ["gpt-4o"]}, "usage.prices"),
        ({"price": {}}, "usage.price"),
    ],
)
def test_the_configuration_refuses_a_price_table_it_cannot_use(usage: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{names}"):
        parse_config({"usage": usage})


# --- what is stored --------------------------------------------------------------------


def test_it_reads_usage_in_the_conventions_agents_report_it() -> None:
    assert usage_of({"model": "gpt-4o", "usage": {"input_tokens": 3, "output_tokens": 4}}) == (
        "gpt-4o",
        "",
        3,
        4,
    )
    assert usage_of({"usage": {"prompt_tokens": 5, "completion_tokens": 6.0}, "user": "ann"}) == (
        "",
        "ann",
        5,
        6,
    )
    assert usage_of({"usage": {"input_tokens": 7}}) == ("", "", 7, 0)
    assert usage_of({"usage": {"input_tokens": True, "output_tokens": -1}}) is None
    assert usage_of({"usage": "lots"}) is None
    assert usage_of({"arguments": {}}) is None


def test_a_step_reporting_usage_is_stored_once_and_a_later_report_updates_it() -> None:
    store(started("T-1", "agent", "plan a trip"), llm("T-1", 1, "gpt-4o", 100, 0), mcp_id="agent")
    store(llm("T-1", 1, "gpt-4o", 100, 40, status="complete"), mcp_id="agent")
    store(event("thread.step", thread_id="T-1", sequence=2, description="no llm here"), mcp_id="agent")
    rows = list(
        LLMUsage.objects.values_list("thread_id", "sequence", "model", "input_tokens", "output_tokens")
    )
    assert rows == [("T-1", 1, "gpt-4o", 100, 40)]


# --- the report ------------------------------------------------------------------------


def fleet() -> None:
    """Two servers, three models (one with no price), two users; known numbers."""
    store(
        started("T-trip", "planner", "plan a trip to Lisbon"),
        started("T-mail", "mailer", "answer the mail"),
        llm("T-trip", 1, "gpt-4o", 1_000_000, 100_000, details={"user": "ann"}),  # 2.5 + 1.0
        llm("T-trip", 2, "claude-sonnet-4-5", 200_000, 100_000, details={"user": "ann"}),  # 0.6 + 1.5
        llm("T-mail", 1, "claude-haiku-4-5", 1_000_000, 0, details={"user": "bo"}),  # 1.0
        llm("T-mail", 2, "llama-3", 5_000, 1_000, details={"user": "bo"}),  # no price
        mcp_id=None,
    )


def test_it_sums_tokens_and_cost_per_model_costliest_first() -> None:
    fleet()
    got = report(LLMUsage.objects.all(), WINDOWS["24h"], "model")
    by = {g["key"]: g for g in got["groups"]}
    assert [g["key"] for g in got["groups"]] == ["gpt-4o", "claude-sonnet-4-5", "claude-haiku-4-5", "llama-3"]
    assert by["gpt-4o"]["cost"] == pytest.approx(3.5) and by["gpt-4o"]["cost_complete"]
    assert by["llama-3"]["cost"] is None and by["llama-3"]["unpriced_tokens"] == 6_000
    assert (by["llama-3"]["input_tokens"], by["llama-3"]["output_tokens"]) == (5_000, 1_000)
    totals = got["totals"]
    assert (totals["calls"], totals["input_tokens"], totals["output_tokens"]) == (4, 2_205_000, 201_000)
    assert totals["cost"] == pytest.approx(6.6)  # what is priced, and it says it is not all
    assert totals["cost_complete"] is False and got["unpriced_models"] == ["llama-3"]


def test_it_sums_per_server_user_and_thread() -> None:
    fleet()
    rows = LLMUsage.objects.all()
    servers = {g["key"]: g["cost"] for g in report(rows, WINDOWS["24h"], "server")["groups"]}
    assert servers == pytest.approx({"planner": 5.6, "mailer": 1.0})
    users = report(rows, WINDOWS["24h"], "user")["groups"]
    assert [(g["key"], g["calls"], g["cost_complete"]) for g in users] == [("ann", 2, True), ("bo", 2, False)]
    threads = report(rows, WINDOWS["24h"], "thread")["groups"]
    assert [(g["thread_id"], g["label"], g["mcp_id"]) for g in threads] == [
        ("T-trip", "plan a trip to Lisbon", "planner"),
        ("T-mail", "answer the mail", "mailer"),
    ]


def test_a_group_of_unpriced_models_alone_has_an_unknown_cost() -> None:
    store(
        started("T-x", "agent", "x"), llm("T-x", 1, "llama-3", 10, 10), llm("T-x", 2, None, 5, 5), mcp_id=None
    )
    got = report(LLMUsage.objects.all(), WINDOWS["1h"], "thread")
    assert got["totals"]["cost"] is None and got["groups"][0]["cost"] is None
    assert got["unpriced_models"] == ["(model not reported)", "llama-3"]
    assert (
        report(LLMUsage.objects.none(), WINDOWS["1h"])["totals"]["cost"] == 0.0
    )  # nothing used: nothing owed


def test_with_no_price_table_every_cost_is_unknown(settings: Any) -> None:
    settings.MC = dataclasses.replace(settings.MC, usage=UsageConfig())
    store(started("T-x", "agent", "x"), llm("T-x", 1, "gpt-4o", 10, 10), mcp_id=None)
    for group_by in ("model", "thread"):
        got = report(LLMUsage.objects.all(), WINDOWS["1h"], group_by)
        assert got["totals"]["cost"] is None and got["groups"][0]["cost"] is None
        assert [p["cost"] for p in got["series"] if p["input_tokens"]] == [None]
    assert got["totals"]["unpriced_tokens"] == 20 and got["unpriced_models"] == ["gpt-4o"]


def test_the_window_leaves_out_older_calls_and_the_series_has_every_bucket() -> None:
    now = datetime(2026, 11, 21, 12, 30, 10, tzinfo=UTC)

    def at(delta: timedelta) -> str:
        return (now - delta).isoformat()

    store(
        started("T-s", "agent", "s"),
        llm("T-s", 1, "gpt-4o", 1_000_000, 0, timestamp=at(timedelta(minutes=5))),  # 2.5, this hour
        llm("T-s", 2, "gpt-4o", 0, 100_000, timestamp=at(timedelta(hours=3))),  # 1.0, at 9:30
        llm("T-s", 3, "llama-3", 10, 10, timestamp=at(timedelta(hours=2))),  # no price, at 10:30
        llm("T-s", 4, "gpt-4o", 10**9, 0, timestamp=at(timedelta(hours=30))),  # outside 24h
        mcp_id=None,
    )
    got = report(LLMUsage.objects.all(), WINDOWS["24h"], now=now)
    assert (got["since"], got["until"]) == ("2026-11-20T13:00:00+00:00", "2026-11-21T13:00:00+00:00")
    assert got["totals"]["input_tokens"] == 1_000_010 and got["totals"]["cost"] == pytest.approx(3.5)
    series = {datetime.fromtimestamp(p["t"], UTC).hour: p for p in got["series"]}
    assert len(got["series"]) == 24 and got["bucket_seconds"] == 3600
    assert series[12]["cost"] == pytest.approx(2.5) and series[12]["input_tokens"] == 1_000_000
    assert series[9]["cost"] == pytest.approx(1.0) and series[9]["output_tokens"] == 100_000
    assert series[10]["cost"] is None  # tokens of no price: unknown, not 0
    assert series[11] == {"t": series[11]["t"], "input_tokens": 0, "output_tokens": 0, "cost": 0.0}


# --- REST, GraphQL, the page -----------------------------------------------------------


def test_rest_answers_the_report_of_the_window_and_grouping_asked_for(client: Any) -> None:
    fleet()
    body = client.get("/api/usage?window=7d&group_by=user").json()
    assert (body["window"], body["group_by"], body["currency"], body["bucket_seconds"]) == (
        "7d",
        "user",
        "USD",
        3600,
    )
    assert [g["key"] for g in body["groups"]] == ["ann", "bo"]
    assert body["totals"]["cost"] == pytest.approx(6.6) and len(body["series"]) == 7 * 24


def test_rest_refuses_a_window_or_grouping_it_does_not_know(client: Any) -> None:
    response = client.get("/api/usage?window=2y&group_by=team&colour=red")
    assert response.status_code == 400
    assert set(response.json()) == {"window", "group_by", "colour"}


def test_graphql_answers_the_same_figures(client: Any) -> None:
    fleet()
    query = (
        '{ usage(window: "24h", groupBy: THREAD, limit: 1) '
        "{ currency totals { cost costComplete } groups { threadId label cost } } }"
    )
    body = client.post("/graphql", {"query": query}, "application/json").json()
    assert "errors" not in body, body
    usage = body["data"]["usage"]
    assert usage["currency"] == "USD" and usage["totals"]["costComplete"] is False
    assert usage["groups"] == [
        {"threadId": "T-trip", "label": "plan a trip to Lisbon", "cost": pytest.approx(5.6)}
    ]
    bad = client.post(
        "/graphql", {"query": '{ usage(window: "2y") { currency } }'}, "application/json"
    ).json()
    assert "window: expected one of 1h, 24h, 7d, 30d" in bad["errors"][0]["message"]


def test_the_page_shows_totals_top_threads_and_unknown_costs(client: Any) -> None:
    fleet()
    html = client.get("/usage?window=24h").content.decode()
    assert "≥ 6.60 USD" in html  # llama-3's tokens are not priced
    assert "No price for llama-3" in html
    assert 'href="/threads/T-trip"' in html and "plan a trip to Lisbon" in html
    assert "5.60 USD" in html and "unknown" in html
    assert 'id="usage-series"' in html


# --- teams ---------------------------------------------------------------------------


def two_teams_spending() -> None:
    push(
        "alpha",
        started("T-alpha", "srv-alpha", "apple plan"),
        llm("T-alpha", 1, "gpt-4o", 4_000_000, 0, details={"user": "apple-user"}),
    )
    push(
        "beta",
        started("T-beta", "srv-alpha", "banana plan"),
        llm("T-beta", 1, "gpt-4o", 1_000_000, 0, details={"user": "banana-user"}),
    )


def test_a_team_never_sees_another_teams_tokens_or_cost(viewer: User, outsider: User) -> None:
    two_teams_spending()
    beta = signed_in(outsider)
    for group_by in ("model", "server", "user", "thread"):
        body = beta.get(f"/api/usage?window=24h&group_by={group_by}").json()
        assert body["totals"]["input_tokens"] == 1_000_000 and body["totals"]["cost"] == pytest.approx(2.5)
        assert sum(g["input_tokens"] for g in body["groups"]) == 1_000_000
        assert sum(p["input_tokens"] for p in body["series"]) == 1_000_000
        assert "apple" not in str(body)
    query = "{ usage(groupBy: THREAD) { totals { inputTokens cost } groups { label } } }"
    graph = beta.post("/graphql", {"query": query}, "application/json").json()["data"]["usage"]
    assert graph == {"totals": {"inputTokens": 1_000_000, "cost": 2.5}, "groups": [{"label": "banana plan"}]}
    page = beta.get("/usage").content.decode()
    assert "banana plan" in page and "apple" not in page and "4,000,000" not in page and "2.50 USD" in page
    alpha = signed_in(viewer).get("/api/usage?group_by=user").json()
    assert [g["key"] for g in alpha["groups"]] == ["apple-user"] and alpha["totals"]["cost"] == pytest.approx(
        10.0
    )
