"""A missing or broken page shows the product's own page, the API answers JSON, and
every page carries a Content-Security-Policy whose nonce its inline scripts hold."""

from __future__ import annotations

import re

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path

pytestmark = pytest.mark.django_db


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug with a secret local")


# This module is the URLconf of the 500 tests: the product's, plus views that fail.
urlpatterns = [
    path("broken-page", boom),
    path("api/broken", boom),
    path("", include("missioncontrol.urls")),
]
handler404 = "missioncontrol.errors.not_found"
handler500 = "missioncontrol.errors.server_error"


def test_a_missing_page_shows_the_products_not_found_page(client: Client) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404
    text = page.content.decode()
    assert "There is nothing at <code>/no/such/page</code>" in text
    assert 'class="site-nav"' in text  # the product's look, its navigation included
    assert "URLconf" not in text and "The current path" not in text  # no list of URL patterns


def test_a_missing_api_path_answers_json(client: Client, anonymous_client: Client) -> None:
    for who in (client, anonymous_client):
        answer = who.get("/api/no/such/thing")
        assert answer.status_code == 404
        assert answer.json() == {"detail": "Not found."}


def test_a_server_error_shows_a_plain_page_or_json_without_a_traceback(
    settings: object, superuser: object
) -> None:
    settings.ROOT_URLCONF = __name__  # type: ignore[attr-defined]
    client = Client(raise_request_exception=False)
    client.force_login(superuser)  # type: ignore[arg-type]
    page = client.get("/broken-page")
    assert page.status_code == 500
    text = page.content.decode()
    assert "Something went wrong" in text and "mc.css" in text
    assert "secret local" not in text and "Traceback" not in text
    answer = client.get("/api/broken")
    assert answer.status_code == 500
    assert answer.json()["detail"].startswith("Server error")
    assert "secret local" not in answer.content.decode()


def test_pages_carry_a_content_security_policy_whose_nonce_their_scripts_hold(client: Client) -> None:
    from mcps.models import MCPServer

    MCPServer.objects.create(id="srv-a", name="a")
    server_page = client.get("/servers/srv-a").content.decode()
    assert not re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", server_page)  # none inline
    page = client.get("/settings/tokens")
    policy = page["Content-Security-Policy"]
    assert (
        "default-src 'self'" in policy
        and "object-src 'none'" in policy
        and "frame-ancestors 'none'" in policy
    )
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)([^>]*)>", page.content.decode())
    assert inline and all(f'nonce="{nonce.group(1)}"' in attributes for attributes in inline)
    assert client.get("/settings/tokens")["Content-Security-Policy"] != policy  # a nonce per answer
    assert "Content-Security-Policy" not in client.get("/api/threads")  # JSON needs none


def test_no_page_holds_an_inline_event_handler() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    handlers = re.compile(r"\son[a-z]+=\"")
    offenders = [
        str(template.relative_to(root))
        for template in root.glob("**/templates/**/*.html")
        if ".venv" not in template.parts and handlers.search(template.read_text())
    ]
    assert offenders == []
