"""An agent that calls tools through Mission Control's /mcp and reports its work through the SDK.

It asks for the time in a few cities (mcp-server-time, registered as the managed server
`time`, e.g. by `manage.py seed_demo`): one parent thread with its transcript, one child
thread per city, a tool_call/tool_result step per call, its permission checks and logs.

    pip install ./sdk
    export MC_URL=http://127.0.0.1:8000
    export MC_INGEST_KEY=$(python manage.py create_ingest_key example-agent --mcp example-agent | tail -1)
    python examples/agent.py Tokyo=Asia/Tokyo Paris=Europe/Paris

Set MC_TOKEN to send `Authorization: Bearer <token>` to /mcp when it requires one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from missioncontrol_sdk import MissionControl, MissionControlHandler

log = logging.getLogger("example-agent")


async def ask(mc: MissionControl, url: str, cities: dict[str, str]) -> None:
    question = "What time is it in " + ", ".join(cities) + "?"
    headers = {"Authorization": f"Bearer {os.environ['MC_TOKEN']}"} if os.environ.get("MC_TOKEN") else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        with mc.thread(user_input=question, execution_context={"agent": "example"}) as thread:
            thread.message("user", question)
            answers = []
            for city, zone in cities.items():
                with thread.child(user_input=f"time in {city}") as child:
                    child.permission(
                        "time/get_current_time", "execute", granted=True, reason="read-only tool"
                    )
                    with child.step(
                        "tool_call", "time__get_current_time", {"arguments": {"timezone": zone}}
                    ) as step:
                        result = await client.call_tool("time__get_current_time", {"timezone": zone})
                        step.details["result"] = result.structured_content
                        if result.is_error:
                            step.finish("error")
                            log.warning("no time for %s", city)
                            continue
                    now = str((result.structured_content or {}).get("datetime", ""))[11:16]
                    child.message("agent", f"{now} in {city}")
                    log.info("%s: %s", city, now)
                    answers.append(f"{now} in {city}")
            thread.message("agent", "It is " + ", ".join(answers) + ".")


def main() -> None:
    url = os.environ.get("MC_URL", "http://127.0.0.1:8000").rstrip("/")
    cities = dict(arg.split("=", 1) for arg in sys.argv[1:]) or {
        "Tokyo": "Asia/Tokyo",
        "Paris": "Europe/Paris",
    }
    with MissionControl(url, os.environ["MC_INGEST_KEY"], mcp_id="example-agent") as mc:
        log.addHandler(MissionControlHandler(mc, service="example-agent"))
        log.setLevel(logging.INFO)
        asyncio.run(ask(mc, url, cities))
    print(f"sent {mc.stats.accepted} events ({mc.stats.rejected} rejected, {mc.stats.dropped} dropped)")


if __name__ == "__main__":
    main()
