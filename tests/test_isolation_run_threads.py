"""A directive run's thread cannot be claimed, guessed or opened by another team.

Run ids count up (1, 2, 3...), so a thread id made of the run id alone was known before
the run started: a team could start that thread with its own ingest key first, and the
run's steps were then refused as another team's (the run's page pointing at the
squatter's thread). A run's thread id carries a random part; every surface still asks
whether the user may see the run (REST, the pages, the admin, the live channels).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from automations import runs
from automations.models import Directive, DirectiveExecution
from tests.conftest import event, signed_in, team
from tests.teams import LEARN, push
from threads.models import ExecutionStep, Thread

pytestmark = pytest.mark.django_db


def test_a_run_thread_cannot_be_started_ahead_of_the_run(operator: User, outsider: User) -> None:
    learn = Directive.objects.upsert_from_yaml(LEARN)
    # Beta starts the threads the next runs would have had, with its own ingest key.
    push(
        "beta",
        *(event("thread.started", thread_id=f"directive-run-{n}", user_input="mine") for n in range(1, 4)),
    )
    execution = runs.start(operator, learn, {})
    execution.refresh_from_db()
    assert execution.thread_id and re.fullmatch(
        rf"directive-run-{execution.pk}-[0-9a-f]{{16}}", execution.thread_id
    )
    thread = Thread.objects.get(id=execution.thread_id)
    assert thread.team == team("alpha")
    assert ExecutionStep.objects.filter(thread_id=execution.thread_id).exists()
    # Beta's viewer opens none of it, whichever id it tries.
    bob = signed_in(outsider)
    assert bob.get(f"/api/threads/{execution.thread_id}").status_code == 404
    assert bob.get(f"/api/internal/executions/{execution.pk}").status_code == 404
    assert bob.get(f"/automations/executions/{execution.pk}").status_code == 404


def test_two_runs_of_one_directive_get_different_unguessable_threads(operator: User) -> None:
    learn = Directive.objects.upsert_from_yaml(LEARN)
    first, second = runs.start(operator, learn, {}), runs.start(operator, learn, {})
    ids = list(
        DirectiveExecution.objects.filter(pk__in=[first.pk, second.pk]).values_list("thread_id", flat=True)
    )
    assert len(set(ids)) == 2
    assert all(Thread.objects.filter(id=i, team=team("alpha")).exists() for i in ids)
