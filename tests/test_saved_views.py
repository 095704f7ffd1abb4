"""/api/views and /api/preferences: each user's saved views and preferences."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import make_user

pytestmark = pytest.mark.django_db

ERRORS_TODAY = {
    "kind": "logs",
    "filters": {"levels": ["WARN", "ERROR"], "since": "24h"},
    "columns": ["timestamp", "message"],
}


def signed_in(name: str) -> APIClient:
    """A viewer: saved views are anyone's, the lists they name need the viewer's role."""
    client = APIClient()
    client.force_authenticate(make_user(name, "viewer"))
    return client


@pytest.fixture
def alice() -> APIClient:
    return signed_in("alice")


@pytest.fixture
def bob() -> APIClient:
    return signed_in("bob")


def test_it_round_trips_a_saved_view(alice: APIClient) -> None:
    created = alice.post("/api/views", {"name": "Errors today", "view_config": ERRORS_TODAY}, format="json")
    assert created.status_code == 201, created.content
    view = created.json()
    assert view["view_config"] == {
        "kind": "logs",
        "filters": {"levels": "WARN,ERROR", "since": "24h"},
        "columns": ["timestamp", "message"],
        "live": True,
    }
    assert alice.get(f"/api/views/{view['id']}").json() == view
    assert [v["name"] for v in alice.get("/api/views").json()] == ["Errors today"]

    changed = dict(ERRORS_TODAY, filters={"levels": "ERROR"})
    updated = alice.put(f"/api/views/{view['id']}", {"name": "Errors", "view_config": changed}, format="json")
    assert updated.status_code == 200 and updated.json()["view_config"]["filters"] == {"levels": "ERROR"}
    assert (
        alice.patch(f"/api/views/{view['id']}", {"description": "mine"}, format="json").json()["name"]
        == "Errors"
    )

    assert alice.delete(f"/api/views/{view['id']}").status_code == 204
    assert alice.get(f"/api/views/{view['id']}").status_code == 404


def test_it_applies_a_saved_views_filters_to_its_list(alice: APIClient) -> None:
    view = alice.post("/api/views", {"name": "Errors", "view_config": ERRORS_TODAY}, format="json").json()
    params = "&".join(f"{k}={v}" for k, v in view["view_config"]["filters"].items())
    assert alice.get(f"/api/logs?{params}").status_code == 200


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"filters": {}}, "kind"),
        ({"kind": "emails"}, "kind"),
        ({"kind": "logs", "filters": {"levels": "LOUD"}}, "filters.levels"),
        ({"kind": "logs", "filters": {"colour": "red"}}, "filters.colour"),
        ({"kind": "threads", "filters": {"root": "maybe"}}, "filters.root"),
        ({"kind": "permissions", "columns": ["password"]}, "columns"),
        ({"kind": "logs", "colour": "red"}, "colour"),
        ({"kind": "logs", "live": "yes"}, "live"),
        ("logs", "kind"),
    ],
)
def test_it_refuses_a_bad_view_config_naming_the_field(alice: APIClient, config: Any, field: str) -> None:
    response = alice.post("/api/views", {"name": "v", "view_config": config}, format="json")
    assert response.status_code == 400
    assert field in response.json()["view_config"]


def test_it_refuses_a_second_view_with_the_same_name(alice: APIClient, bob: APIClient) -> None:
    body = {"name": "Mine", "view_config": {"kind": "threads"}}
    assert alice.post("/api/views", body, format="json").status_code == 201
    assert "name" in alice.post("/api/views", body, format="json").json()
    assert bob.post("/api/views", body, format="json").status_code == 201


def test_it_keeps_each_users_views_to_themselves(alice: APIClient, bob: APIClient) -> None:
    view = alice.post(
        "/api/views", {"name": "Secret", "view_config": {"kind": "threads"}}, format="json"
    ).json()
    assert bob.get("/api/views").json() == []
    assert bob.get(f"/api/views/{view['id']}").status_code == 404
    assert bob.delete(f"/api/views/{view['id']}").status_code == 404


def test_it_requires_a_signed_in_user() -> None:
    anonymous = APIClient()
    assert anonymous.get("/api/views").status_code in (401, 403)
    assert anonymous.get("/api/preferences").status_code in (401, 403)


def test_it_keeps_preferences(alice: APIClient, bob: APIClient) -> None:
    assert alice.get("/api/preferences").json()["theme"] == "system"
    saved = alice.put(
        "/api/preferences", {"theme": "dark", "log_filters": {"levels": ["ERROR"]}}, format="json"
    )
    assert saved.status_code == 200, saved.content
    assert alice.get("/api/preferences").json()["log_filters"] == {"levels": "ERROR"}
    assert alice.patch("/api/preferences", {"theme": "light"}, format="json").json()["log_filters"] == {
        "levels": "ERROR"
    }
    assert bob.get("/api/preferences").json()["theme"] == "system"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"theme": "neon"}, "theme"),
        ({"log_filters": {"levels": "LOUD"}}, "log_filters"),
        ({"log_filters": []}, "log_filters"),
    ],
)
def test_it_refuses_bad_preferences(alice: APIClient, body: dict[str, Any], field: str) -> None:
    response = alice.patch("/api/preferences", body, format="json")
    assert response.status_code == 400 and field in response.json()
