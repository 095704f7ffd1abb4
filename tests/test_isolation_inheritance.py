"""A call inherits only from its own team's threads: naming another team's thread as its
parent (`parent_thread_id`, `_meta["mc/parent_thread_id"]`) reads nothing of that thread.

Such a parent counts as a thread never seen (the anonymous subject), as an unknown id
does: the caller learns neither its subject nor what the policies say of it, from the
call's answer or from the permission check recorded with it.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from audit.inheritance import ancestors
from audit.models import PolicyRule
from audit.policy import ANONYMOUS, Link, Subject
from mcps.models import MCPServer
from tests.conftest import api_token, make_user, team
from tests.mcp_servers import api
from tests.teams import push_two_teams

pytestmark = pytest.mark.django_db(transaction=True)


def setting() -> dict[str, str]:
    push_two_teams()
    MCPServer.objects.update_or_create(id="srv-alpha", defaults={"name": "alpha"})
    # Alpha's agent (T-a's subject) may not call srv-alpha; anyone else may.
    PolicyRule.objects.create(
        effect="deny",
        subject_kind="user",
        subject_value="apple agent",
        server="srv-alpha",
        description="apple",
    )
    return {
        "bea": api_token(make_user("bea", "operator", "beta"), "beta"),
        "olga": api_token(make_user("olga", "operator", "alpha"), "alpha"),
    }


async def test_naming_another_teams_thread_as_parent_reads_nothing_of_it() -> None:
    tokens = await sync_to_async(setting)()
    body = {"arguments": {}, "parent_thread_id": "T-a"}
    answer = await api("POST", "/api/mcps/srv-alpha/tools/anything/call", body, token=tokens["bea"])
    text = json.dumps(answer.json())
    assert "apple" not in text, text
    assert answer.status_code != 403, text  # alpha's deny of its own agent is not beta's


async def test_another_teams_thread_is_an_unknown_ancestor() -> None:
    await sync_to_async(setting)()
    alpha, beta = await sync_to_async(lambda: (team("alpha").pk, team("beta").pk))()
    assert await ancestors("T-a", team=beta) == [Link("T-a", ANONYMOUS)]
    assert await ancestors("T-a", team=None) == [Link("T-a", ANONYMOUS)]
    assert await ancestors("T-a", team=alpha) == [Link("T-a", Subject(user="apple agent"))]


async def test_a_teams_own_parent_is_inherited_from() -> None:
    tokens = await sync_to_async(setting)()
    body = {"arguments": {}, "parent_thread_id": "T-a"}
    answer = await api("POST", "/api/mcps/srv-alpha/tools/anything/call", body, token=tokens["olga"])
    assert answer.status_code == 403
    assert "inherited from thread T-a (apple agent)" in answer.json()["error"]["reason"]
