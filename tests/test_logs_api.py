"""GET /api/logs: the seed's LogFilter, keyset pages that hold still, and the export."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from logs.models import LogEntry
from tests.conftest import at, event, store
from tests.conftest import result_ids as ids
from tests.mcp_servers import api

pytestmark = pytest.mark.django_db


def log(id_: str, seconds: float, **fields: Any) -> dict[str, Any]:
    fields.setdefault("mcp_id", "srv-alpha")
    return event("log", seconds, id=id_, **fields)


@pytest.fixture
def mixed_logs() -> None:
    store(
        log("a", 1, level="DEBUG", service="parser", thread_id="T-1", message="parsing started"),
        log("b", 2, level="INFO", service="executor", thread_id="T-1", message="disk quota fine"),
        log("c", 3, level="WARN", service="executor", thread_id="T-2", message="disk almost full"),
        log("d", 4, level="ERROR", service="auth", thread_id="T-2", message="token expired for alice"),
        log("e", 5, level="ERROR", service="executor", mcp_id="srv-beta", message="disk full, write failed"),
    )


def test_it_lists_logs_newest_first(client: APIClient, mixed_logs: None) -> None:
    assert ids(client.get("/api/logs")) == ["e", "d", "c", "b", "a"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("threads=T-1", ["b", "a"]),
        ("threads=T-1,T-2", ["d", "c", "b", "a"]),
        ("mcps=srv-beta", ["e"]),
        ("levels=WARN,ERROR", ["e", "d", "c"]),
        ("services=executor", ["e", "c", "b"]),
        ("services=auth,parser", ["d", "a"]),
        ("search=disk", ["e", "c", "b"]),
        ("search=disk -full", ["b"]),
        ('search="write failed"', ["e"]),
        ("search=token or parsing", ["d", "a"]),
        (f"from={at(2)}&to={at(4)}", ["d", "c", "b"]),
        (f"from_timestamp={at(4)}", ["e", "d"]),
        ("levels=ERROR&services=executor&search=disk", ["e"]),
        ("threads=T-2&levels=WARN,ERROR&mcps=srv-alpha", ["d", "c"]),
    ],
)
def test_it_filters_logs_like_the_seeds_log_filter(
    client: APIClient, mixed_logs: None, query: str, expected: list[str]
) -> None:
    assert ids(client.get(f"/api/logs?{query.replace('+', '%2B')}")) == expected


def test_it_filters_the_last_hour_with_since(client: APIClient) -> None:
    from django.utils import timezone

    now = timezone.now()
    store(
        log("old", 0, timestamp=(now - timezone.timedelta(hours=2)).isoformat()),
        log("new", 0, timestamp=(now - timezone.timedelta(minutes=5)).isoformat()),
    )
    assert ids(client.get("/api/logs?since=1h")) == ["new"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("levels=LOUD", "levels"),
        ("from=yesterday", "from"),
        ("since=a while", "since"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("levle=ERROR", "levle"),
    ],
)
def test_it_answers_400_naming_a_bad_parameter(client: APIClient, query: str, field: str) -> None:
    response = client.get(f"/api/logs?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_it_reads_one_log_and_404s_an_unknown_one(client: APIClient, mixed_logs: None) -> None:
    assert client.get("/api/logs/d").json()["message"] == "token expired for alice"
    assert client.get("/api/logs/nope").status_code == 404


def test_it_pages_by_cursor_without_gaps_or_repeats_while_logs_arrive(client: APIClient) -> None:
    # Ten logs share one timestamp, so only the id breaks the tie: offsets would slip.
    store(*[log(f"old-{i:02}", 100 if i < 10 else i) for i in range(30)])
    seen: list[str] = []
    url: str | None = "/api/logs?limit=7"
    arrivals = iter(range(1000, 1010))
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
        n = next(arrivals)
        store(log(f"new-{n}", n), log(f"tie-{n}", 100))  # newer, and one inside the page's tie
    olds = [s for s in seen if s.startswith("old-")]
    assert len(olds) == len(set(olds)) == 30
    expected = [r.id for r in LogEntry.objects.filter(id__startswith="old-").order_by("-timestamp", "-id")]
    assert olds == expected


def test_it_fetches_what_arrived_since_the_first_page_through_previous(client: APIClient) -> None:
    store(*[log(f"l{i}", i) for i in range(5)])
    first = client.get("/api/logs?limit=2").json()
    store(log("late-1", 10), log("late-2", 11))
    newer = client.get(first["previous"]).json()
    assert [row["id"] for row in newer["results"]] == ["late-2", "late-1"]


def test_it_pages_backwards_to_the_same_rows(client: APIClient) -> None:
    store(*[log(f"l{i:02}", i) for i in range(9)])
    first = client.get("/api/logs?limit=3").json()
    second = client.get(first["next"]).json()
    back = client.get(second["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]


@pytest.fixture
def many_logs() -> int:
    n = 10_000
    levels = ["DEBUG", "INFO", "WARN", "ERROR"]
    for start in range(0, n, 2500):
        store(
            *[
                log(
                    f"x{i:05}",
                    i,
                    level=levels[i % 4],
                    message=f'line {i}, with "quotes", commas\nand a newline',
                    context={"i": i, "nested": {"ok": True}},
                )
                for i in range(start, min(n, start + 2500))
            ]
        )
    return n


@pytest.mark.django_db(transaction=True)
async def test_it_exports_10k_logs_as_json_lines_that_parse_back(many_logs: int) -> None:
    response = await api("GET", "/api/logs/export?format=jsonl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert "attachment" in response.headers["content-disposition"]
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert len(rows) == many_logs
    assert [r["id"] for r in rows] == [f"x{i:05}" for i in reversed(range(many_logs))]
    assert rows[0]["context"] == {"i": many_logs - 1, "nested": {"ok": True}}


@pytest.mark.django_db(transaction=True)
async def test_it_exports_10k_logs_as_one_json_array_that_parses_back(many_logs: int) -> None:
    response = await api("GET", "/api/logs/export?format=json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].endswith('.json"')
    rows = json.loads(response.text)
    assert [r["id"] for r in rows] == [f"x{i:05}" for i in reversed(range(many_logs))]
    assert rows[-1]["message"] == 'line 0, with "quotes", commas\nand a newline'


@pytest.mark.django_db(transaction=True)
async def test_an_export_matching_nothing_is_an_empty_json_array() -> None:
    response = await api("GET", "/api/logs/export?format=json&levels=ERROR")
    assert response.status_code == 200 and json.loads(response.text) == []


@pytest.mark.django_db(transaction=True)
async def test_it_exports_10k_logs_as_csv_that_parses_back(many_logs: int) -> None:
    response = await api("GET", "/api/logs/export?format=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == many_logs
    assert rows[-1]["id"] == "x00000"
    assert rows[-1]["message"] == 'line 0, with "quotes", commas\nand a newline'
    assert json.loads(rows[-1]["context"]) == {"i": 0, "nested": {"ok": True}}
    assert rows[-1]["thread_id"] == ""


@pytest.mark.django_db(transaction=True)
async def test_it_exports_with_the_list_filters(many_logs: int) -> None:
    response = await api("GET", "/api/logs/export?format=jsonl&levels=ERROR&search=line")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert len(rows) == many_logs // 4
    assert {r["level"] for r in rows} == {"ERROR"}


@pytest.mark.django_db(transaction=True)
async def test_it_refuses_an_unknown_export_format_or_filter() -> None:
    assert (await api("GET", "/api/logs/export?format=xml")).json() == {
        "format": ["Give one of: jsonl, json, csv."]
    }
    response = await api("GET", "/api/logs/export?format=csv&levels=LOUD")
    assert response.status_code == 400 and "levels" in response.json()


@pytest.mark.django_db(transaction=True)
async def test_it_exports_in_constant_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Peak memory while streaming does not grow with the number of rows exported."""
    import tracemalloc

    from asgiref.sync import sync_to_async

    from logs import export as exporting

    monkeypatch.setattr(exporting, "CHUNK", 250)

    def fill(prefix: str, n: int) -> None:
        for start in range(0, n, 3000):
            store(*[log(f"{prefix}{i:06}", i, message="m" * 200) for i in range(start, min(n, start + 3000))])

    async def peak(prefix: str) -> tuple[int, int]:
        tracemalloc.start()
        sent = 0
        async for piece in exporting.stream(LogEntry.objects.filter(id__startswith=prefix), "csv"):
            sent += len(piece)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top, sent

    await sync_to_async(fill)("s", 500)
    await sync_to_async(fill)("b", 2_500)
    small, small_bytes = await peak("s")
    big, big_bytes = await peak("b")
    assert big_bytes > 4.5 * small_bytes
    assert big < 1.5 * small, (small, big)
