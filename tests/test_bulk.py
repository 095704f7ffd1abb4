"""missioncontrol.bulk: rows written without model instances read back as the ORM wrote them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.db.models import QuerySet

from audit import access
from audit.models import AccessEvent
from missioncontrol.bulk import insert_new, insert_rows, upsert
from threads.models import STEP_FIELDS, ExecutionStep, Thread, ThreadEvent

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 11, 22, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))


@pytest.fixture
def no_orm_bulk_create(monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite the rows must not go through model instances and bulk_create."""
    if connection.vendor == "postgresql":
        return

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("bulk_create was used")

    monkeypatch.setattr(QuerySet, "bulk_create", refused)


def _step(thread: str, sequence: int, description: str, **details: object) -> tuple[object, ...]:
    return (thread, sequence, WHEN, 1.5, "tool_call", description, details, "complete")


def test_upsert_inserts_new_rows_and_updates_the_stored_ones(no_orm_bulk_create: None) -> None:
    Thread.objects.create(id="t1")
    upsert(
        ExecutionStep,
        STEP_FIELDS,
        [_step("t1", 0, "first"), _step("t1", 1, "second")],
        ["thread", "sequence"],
        STEP_FIELDS[2:],
    )
    upsert(
        ExecutionStep,
        STEP_FIELDS,
        [_step("t1", 1, "second, again", n=2), _step("t1", 2, "third")],
        ["thread", "sequence"],
        STEP_FIELDS[2:],
    )

    steps = list(ExecutionStep.objects.filter(thread_id="t1").order_by("sequence"))
    assert [(s.sequence, s.description) for s in steps] == [(0, "first"), (1, "second, again"), (2, "third")]
    assert steps[1].details == {"n": 2}
    assert steps[0].timestamp == WHEN  # the same instant, read back in UTC
    assert steps[0].timestamp.tzinfo is not None
    assert steps[0].duration_ms == 1.5


def test_values_read_back_as_the_orm_stores_them(no_orm_bulk_create: None) -> None:
    Thread.objects.create(id="t2")
    details = {"nested": {"list": [1, 2.5, None, True], "text": "é ☃"}}
    # An integer for a float column, a string for a datetime column: prepared as Django would.
    upsert(
        ExecutionStep,
        STEP_FIELDS,
        [("t2", 0, "2026-11-22T01:04:05.678901+00:00", 3, "tool_result", "", details, "error")],
        ["thread", "sequence"],
        STEP_FIELDS[2:],
    )
    step = ExecutionStep.objects.get(thread_id="t2")
    assert step.timestamp == WHEN
    assert step.duration_ms == 3.0 and isinstance(step.duration_ms, float)
    assert step.details == details
    assert ExecutionStep.objects.filter(details__nested__text="é ☃").count() == 1  # JSON lookups work


def test_insert_new_says_which_ids_were_new(no_orm_bulk_create: None) -> None:
    first = insert_new(
        ThreadEvent, ("id", "type", "thread_id"), [("e1", "thread.step", "t"), ("e2", "thread.step", "t")]
    )
    second = insert_new(
        ThreadEvent, ("id", "type", "thread_id"), [("e2", "thread.step", "t"), ("e3", "thread.step", "t")]
    )
    assert (first, second) == ({"e1", "e2"}, {"e3"})


def test_insert_rows_fills_the_fields_not_given_from_the_database(no_orm_bulk_create: None) -> None:
    rows = [access.row("olga", access.TOOL_CALL, "time/get_current_time", details={"via": "/mcp"})]
    access.store_rows(rows)
    stored = AccessEvent.objects.get()
    assert stored.id is not None and stored.ip is None and stored.actor_id is None
    assert (stored.actor_name, stored.action, stored.outcome) == ("olga", "tool.call", "success")
    assert stored.details == {"via": "/mcp"}
    assert stored.timestamp == datetime.fromisoformat(rows[0]["timestamp"])


def test_a_row_is_the_record_build_makes() -> None:
    made = access.row("olga", access.TOOL_CALL, "x" * 600, outcome=access.DENIED, actor_id=None)
    built = access.build("olga", access.TOOL_CALL, "x" * 600, outcome=access.DENIED)
    for field in ("actor_id", "actor_name", "action", "target", "outcome", "details", "ip"):
        assert made[field] == getattr(built, field), field
    assert abs(datetime.fromisoformat(made["timestamp"]) - built.timestamp) < timedelta(seconds=5)
    assert datetime.fromisoformat(made["timestamp"]).tzinfo == UTC


def test_a_row_refuses_an_unknown_outcome() -> None:
    with pytest.raises(ValueError, match="outcome"):
        access.row("olga", access.TOOL_CALL, "t", outcome="maybe")


def test_a_field_the_database_cannot_fill_must_be_given() -> None:
    if connection.vendor == "postgresql":
        pytest.skip("on PostgreSQL insert_rows is bulk_create, which fills Python defaults too")
    # ExecutionStep.step_type is neither nullable nor defaulted by the database.
    fields = tuple(f for f in STEP_FIELDS if f != "step_type")
    row = ("t3", 0, WHEN, None, "", {}, "complete")
    with pytest.raises(ValueError, match="step_type"):
        insert_rows(ExecutionStep, fields, [row])
