"""Usage and cost of what real clients send to a served app: the OpenTelemetry SDK's
OTLP/HTTP exporter (protobuf) with GenAI `gen_ai.usage.*` attributes, and the Python
SDK's `thread.llm()` run as an agent program would run it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from missioncontrol.config import ModelPrice, UsageConfig
from tests import served as serving
from tests.processes import ROOT
from usage.models import LLMUsage

pytestmark = pytest.mark.django_db(transaction=True)
served = serving.served  # the fixture

PRICES = {"gpt-4o": ModelPrice(2.5, 10.0), "claude-sonnet-*": ModelPrice(3.0, 15.0)}


@pytest.fixture(autouse=True)
def price_table(settings: Any) -> None:
    # The served app runs in this process: it reads these settings.
    settings.MC = dataclasses.replace(settings.MC, usage=UsageConfig(currency="USD", prices=PRICES))


def test_otlp_spans_with_gen_ai_usage_are_counted_and_priced(served: str, open_key: str, client: Any) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "trip-agent", "enduser.id": "ann"}))
    exporter = OTLPSpanExporter(
        endpoint=f"{served}/v1/traces", headers={"Authorization": f"Bearer {open_key}"}
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("trip")
    try:
        with tracer.start_as_current_span(
            "invoke_agent trip", attributes={"gen_ai.operation.name": "invoke_agent"}
        ):
            with tracer.start_as_current_span(
                "chat gpt-4o",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 1_200_000,
                    "gen_ai.usage.output_tokens": 30_000,
                },
            ):
                pass
            with tracer.start_as_current_span(
                "chat claude",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "claude-sonnet-4-5",
                    "gen_ai.usage.input_tokens": 100_000,
                    "gen_ai.usage.output_tokens": 20_000,
                    "user.id": "bo",  # the span's own user wins over the resource's
                },
            ):
                pass
            # OpenLLMetry's older names, a model with no price.
            with tracer.start_as_current_span(
                "llama.chat",
                attributes={
                    "gen_ai.request.model": "llama-3",
                    "gen_ai.usage.prompt_tokens": 700,
                    "gen_ai.usage.completion_tokens": 50,
                },
            ):
                pass
    finally:
        provider.shutdown()

    assert LLMUsage.objects.count() == 3
    body = client.get("/api/usage?window=1h&group_by=model").json()
    by = {g["key"]: g for g in body["groups"]}
    assert (by["gpt-4o"]["input_tokens"], by["gpt-4o"]["output_tokens"]) == (1_200_000, 30_000)
    assert by["gpt-4o"]["cost"] == pytest.approx(3.0 + 0.3)
    assert by["claude-sonnet-4-5"]["cost"] == pytest.approx(0.3 + 0.3)
    assert by["llama-3"]["cost"] is None and by["llama-3"]["input_tokens"] == 700
    assert body["totals"]["cost"] == pytest.approx(3.9) and body["totals"]["cost_complete"] is False
    users = {g["key"]: g["calls"] for g in client.get("/api/usage?window=1h&group_by=user").json()["groups"]}
    assert users == {"ann": 2, "bo": 1}
    servers = client.get("/api/usage?window=1h&group_by=server").json()["groups"]
    assert [(g["key"], g["calls"]) for g in servers] == [("trip-agent", 3)]
    (thread,) = client.get("/api/usage?window=1h&group_by=thread").json()["groups"]
    assert thread["label"] == "invoke_agent trip" and thread["thread_id"].startswith("otel-")


AGENT = """
from missioncontrol_sdk import MissionControl

mc = MissionControl({url!r}, {key!r}, mcp_id="writer", close_at_exit=False)
with mc.thread(user_input="draft the release notes", execution_context={{"user": "cy"}}) as t:
    t.llm("gpt-4o", input_tokens=400_000, output_tokens=100_000)
    with t.llm("claude-sonnet-4-5", user="dee") as call:
        call.usage(input_tokens=200_000, output_tokens=0)
    t.step("tool_call", "git log", status="complete")
assert mc.close(timeout=30)
print(t.id)
"""


def test_the_sdks_llm_calls_are_counted_per_model_and_user(served: str, open_key: str, client: Any) -> None:
    # The SDK of this checkout (sdk/), as an agent program that installed it would run it.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "sdk")}
    script = textwrap.dedent(AGENT.format(url=served, key=open_key))
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    thread_id = out.stdout.strip()
    rows = LLMUsage.objects.filter(thread_id=thread_id).order_by("sequence")
    assert list(rows.values_list("model", "user", "input_tokens", "output_tokens")) == [
        ("gpt-4o", "cy", 400_000, 100_000),
        ("claude-sonnet-4-5", "dee", 200_000, 0),
    ]
    body = client.get("/api/usage?window=1h&group_by=user").json()
    assert [(g["key"], g["cost"]) for g in body["groups"]] == [
        ("cy", pytest.approx(2.0)),
        ("dee", pytest.approx(0.6)),
    ]
    (top,) = client.get("/api/usage?window=1h&group_by=thread").json()["groups"]
    assert (top["thread_id"], top["label"], top["mcp_id"], top["cost"]) == (
        thread_id,
        "draft the release notes",
        "writer",
        pytest.approx(2.6),
    )
